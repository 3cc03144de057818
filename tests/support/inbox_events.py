"""Edit, recall and read frames end to end, the same checks against `im serve` and a distributed cluster."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from im.client import ChatConnection, HttpClient, Login

__all__ = ["check_edit_recall_read_and_sync", "frames_until_pong", "signup"]

_emails = itertools.count()


async def signup(http: HttpClient, name: str = "user") -> Login:
    return await http.signup(f"{name}{next(_emails)}-{time.time_ns()}@example.test")


async def frames_until_pong(connection: ChatConnection) -> list[dict[str, Any]]:
    """Every frame the server sends before it answers a ping sent now: what it had to say so far
    (a frame answered in order on one connection comes before the pong)."""
    await connection.send_frame({"type": "ping"})
    frames = []
    while (frame := await connection.next()).get("type") != "pong":
        frames.append(frame)
    return frames


async def check_edit_recall_read_and_sync(http: HttpClient) -> None:
    """Alice (two devices) and Bob: a message, its edit, a read, a recall; each receiver sees each
    event once with its own seq, named from its side, and sync returns all of it in seq order."""
    alice, bob = await signup(http, "alice"), await signup(http, "bob")
    phone = await ChatConnection.open(http.ws_url, alice.token)
    laptop = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await asyncio.sleep(0.2)  # sessions recorded (distributed: in Redis)

    await phone.send("m1", "hello", to=bob.user_id)
    ack = await phone.expect("ack")
    message_id = ack["id"]
    assert (await b.expect("msg"))["seq"] == 1
    assert (await laptop.expect("msg"))["id"] == message_id

    await phone.send_frame({"type": "edit", "cid": "e1", "id": message_id, "content": "hello, edited"})
    edit_ack = await phone.expect("ack")
    assert (edit_ack["cid"], edit_ack["id"], edit_ack["seq"]) == ("e1", message_id, 2)
    edit = await b.expect("edit")
    assert edit == {"type": "edit", "seq": 2, "id": message_id, "from": alice.user_id, "to": bob.user_id,
                    "content": "hello, edited", "ts": edit_ack["ts"]}
    assert (await laptop.expect("edit"))["seq"] == 2

    await b.send_frame({"type": "read", "peer": alice.user_id, "up_to": message_id})
    read_for_bob = await b.expect("read")
    assert read_for_bob == {"type": "read", "seq": 3, "by": bob.user_id, "peer": alice.user_id,
                            "up_to": message_id, "ts": read_for_bob["ts"]}
    for device in (phone, laptop):
        seen = await device.expect("read")
        assert seen == {**read_for_bob, "seq": 3, "peer": bob.user_id}, "named from alice's side"
    await b.send_frame({"type": "read", "peer": alice.user_id, "up_to": message_id})
    assert await frames_until_pong(b) == [], "a read that moves nothing: no event, no error"

    await phone.send_frame({"type": "recall", "cid": "r1", "id": message_id})
    recall_ack = await phone.expect("ack")
    assert (recall_ack["cid"], recall_ack["id"], recall_ack["seq"]) == ("r1", message_id, 4)
    recall = await b.expect("recall")
    assert recall == {"type": "recall", "seq": 4, "id": message_id, "from": alice.user_id, "to": bob.user_id,
                      "ts": recall_ack["ts"]}
    assert (await laptop.expect("recall"))["seq"] == 4

    bob_inbox = await b.sync_all()
    assert [(e["type"], e["seq"]) for e in bob_inbox] == [("msg", 1), ("edit", 2), ("read", 3), ("recall", 4)]
    assert bob_inbox[0]["content"] == "" and bob_inbox[0]["recalled"] is True
    assert bob_inbox[0]["edited_ts"] == edit_ack["ts"]
    assert bob_inbox[1]["content"] == "", "an edit later recalled shows the current content"
    over_http, more = await http.messages(bob.token)
    assert (over_http, more) == (bob_inbox, False), "GET /api/v1/messages: the same entries as sync"
    alice_inbox = await laptop.sync_all()
    assert [e["type"] for e in alice_inbox] == ["msg", "edit", "read", "recall"]
    assert alice_inbox[2]["peer"] == bob.user_id
    for connection in (phone, laptop, b):
        await connection.close()
