"""A real `im serve` process and real WebSocket clients: edits, recalls, reads and their refusals,
multi-device reads, sync of every kind, and a kill -9 in the middle of a mix of kinds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from im.client import ChatConnection, HttpClient
from tests.support.inbox_events import check_edit_recall_read_and_sync, frames_until_pong, signup

pytestmark = pytest.mark.integration


async def test_edit_recall_and_read_reach_every_device_and_sync_returns_every_kind(standalone_server: Any) -> None:
    await check_edit_recall_read_and_sync(HttpClient(standalone_server.url))


async def test_edits_and_recalls_are_refused_to_others_past_their_window_and_for_no_message(
    server_factory: Any,
) -> None:
    server = server_factory("--edit-window-seconds", "1", "--recall-window-seconds", "1")
    http = HttpClient(server.url)
    alice, bob, carol = await signup(http), await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    c = await ChatConnection.open(http.ws_url, carol.token)
    await a.send("m1", "mine", to=bob.user_id)
    message_id = (await a.expect("ack"))["id"]
    await b.expect("msg")

    await b.send_frame({"type": "edit", "cid": "not-mine", "id": message_id, "content": "bob's words"})
    await b.send_frame({"type": "recall", "cid": "not-mine-either", "id": message_id})
    await a.send_frame({"type": "edit", "cid": "nothing", "id": 10**15, "content": "x"})
    await c.send_frame({"type": "read", "peer": alice.user_id, "up_to": message_id})
    refused = [(f["type"], f.get("code"), f.get("cid")) for f in [await b.next(), await b.next(), await a.next()]]
    assert refused == [("error", "forbidden", "not-mine"), ("error", "forbidden", "not-mine-either"),
                       ("error", "not_found", "nothing")]
    assert await frames_until_pong(c) == [], "a read of a conversation one is not in moves nothing"

    await asyncio.sleep(1.2)
    await a.send_frame({"type": "edit", "cid": "late", "id": message_id, "content": "too late"})
    await a.send_frame({"type": "recall", "cid": "late-recall", "id": message_id})
    late = [await a.next(), await a.next()]
    assert [(f["type"], f["code"], f["cid"]) for f in late] == [
        ("error", "forbidden", "late"), ("error", "forbidden", "late-recall")]
    assert await frames_until_pong(b) == [], "nothing reached bob"
    [stored] = await b.sync_all()
    assert (stored["content"], "edited_ts" in stored, "recalled" in stored) == ("mine", False, False)
    for connection in (a, b, c):
        await connection.close()


@pytest.mark.parametrize(("frame", "code"), [
    ({"type": "edit", "cid": "e", "id": 2**63, "content": "x"}, "bad_frame"),
    ({"type": "edit", "cid": "e", "id": 0, "content": "x"}, "bad_frame"),
    ({"type": "edit", "cid": "e", "id": "1", "content": "x"}, "bad_frame"),
    ({"type": "edit", "cid": "e", "id": 1}, "bad_frame"),
    ({"type": "edit", "cid": "e", "id": 1, "content": ""}, "bad_frame"),
    ({"type": "edit", "cid": "e", "id": 1, "content": "x" * 4001}, "too_large"),
    ({"type": "edit", "id": 1, "content": "x"}, "bad_frame"),
    ({"type": "recall", "cid": "r", "id": -1}, "bad_frame"),
    ({"type": "recall", "cid": "r"}, "bad_frame"),
    ({"type": "recall", "cid": "r", "id": 1, "content": "x"}, "bad_frame"),
    ({"type": "read", "peer": 1}, "bad_frame"),
    ({"type": "read", "peer": 1, "group": 2, "up_to": 1}, "bad_frame"),
    ({"type": "read", "up_to": 1}, "bad_frame"),
    ('{"type": "read", "peer": 18446744073709551616, "up_to": 1}', "bad_frame"),
    ({"type": "read", "group": 1, "up_to": True}, "bad_frame"),
], ids=["id-too-big", "id-zero", "id-string", "no-content", "empty-content", "long-content", "no-cid",
        "recall-negative", "recall-no-id", "recall-content", "read-no-up-to", "read-two", "read-none",
        "read-peer-too-big", "read-bool"])
async def test_malformed_edit_recall_and_read_frames_get_a_clear_error_and_the_connection_stays(
    standalone_server: Any, frame: dict[str, Any] | str, code: str,
) -> None:
    http = HttpClient(standalone_server.url)
    alice = await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send_frame(frame)
    error = await a.expect("error")
    assert error["code"] == code and error["cid"] == (frame.get("cid") if isinstance(frame, dict) else None)
    assert "unknown frame type" not in error["message"], "the frame is known, its fields are wrong"
    await a.send("after", "still works", to=alice.user_id)
    assert (await a.expect("ack"))["cid"] == "after"
    await a.close()


async def test_edits_and_reads_count_against_the_send_rate(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "1", "--rate-burst", "2")
    http = HttpClient(server.url)
    alice = await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    for i in range(3):
        await a.send_frame({"type": "read", "peer": alice.user_id, "up_to": 1 + i})
    codes = [f.get("code") for f in await frames_until_pong(a)]
    assert "rate_limited" in codes
    await a.close()


async def test_a_group_read_reaches_the_readers_devices_only_and_recall_reaches_every_member(
    standalone_server: Any,
) -> None:
    http = HttpClient(standalone_server.url)
    owner, member = await signup(http), await signup(http)
    group = await http.create_group(owner.token, "g")
    await http.add_member(owner.token, group, member.user_id)
    o = await ChatConnection.open(http.ws_url, owner.token)
    phone = await ChatConnection.open(http.ws_url, member.token)
    laptop = await ChatConnection.open(http.ws_url, member.token)
    await o.send("g1", "to the group", group=group)
    message_id = (await o.expect("ack"))["id"]
    await phone.expect("msg")
    await laptop.expect("msg")
    await phone.send_frame({"type": "read", "group": group, "up_to": message_id})
    on_phone, on_laptop = await phone.expect("read"), await laptop.expect("read")
    assert on_phone == on_laptop and (on_phone["group"], on_phone["by"], on_phone["seq"]) == (
        group, member.user_id, 3), "after the member's join and the message"
    assert "peer" not in on_phone
    await o.send_frame({"type": "recall", "cid": "rg", "id": message_id})
    assert (await o.expect("ack"))["seq"] == 3, "after the member's join and the message"
    assert [f["type"] for f in await frames_until_pong(o)] == [], "the owner does not get the member's group read"
    for device in (phone, laptop):
        recall = await device.expect("recall")
        assert (recall["group"], recall["seq"]) == (group, 4)
    for connection in (o, phone, laptop):
        await connection.close()


async def test_a_recall_leaves_no_content_in_the_database(server_factory: Any, tmp_path: Any) -> None:
    server = server_factory()
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    secret = "the launch code is 0451-ZETA-" + "q" * 40
    await a.send("s1", secret, to=bob.user_id)
    message_id = (await a.expect("ack"))["id"]
    await a.send_frame({"type": "recall", "cid": "r1", "id": message_id})
    await a.expect("ack")
    await a.close()
    assert server.stop() == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "im.sqlite3" for p in files)
    assert not [p for p in files if secret.encode() in p.read_bytes()]


async def test_every_acked_send_edit_and_read_survives_kill_9_with_a_gapless_inbox(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "0")
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    for i in range(100):
        await a.send(f"k{i}", f"durable {i}", to=bob.user_id)
    acks = {}
    for _ in range(100):
        ack = await a.expect("ack")
        acks[ack["cid"]] = ack
    for i in range(0, 100, 2):
        await a.send_frame({"type": "edit", "cid": f"e{i}", "id": acks[f"k{i}"]["id"], "content": f"edited {i}"})
    for i in range(10, 101, 10):
        await b.send_frame({"type": "read", "peer": alice.user_id, "up_to": acks[f"k{i - 1}"]["id"]})
    while len(acks) < 150:  # bob's reads reach alice, the peer, among her acks
        frame = await a.next()
        if frame["type"] == "ack":
            acks[frame["cid"]] = frame
        else:
            assert frame["type"] == "read"
    # Bob's reads have no ack: each shows as its read event on bob's connection.
    reads = [f for f in await frames_until_pong(b) if f["type"] == "read"]
    assert len(reads) == 10
    server.kill()
    server.start()
    b = await ChatConnection.open(http.ws_url, bob.token)
    inbox = await b.sync_all()
    assert [e["seq"] for e in inbox] == list(range(1, len(inbox) + 1)), "gapless"
    messages = [e for e in inbox if e["type"] == "msg"]
    assert [m["content"] for m in messages] == [f"edited {i}" if i % 2 == 0 else f"durable {i}" for i in range(100)]
    assert sum(e["type"] == "edit" for e in inbox) == 50
    assert [e["up_to"] for e in inbox if e["type"] == "read"] == [acks[f"k{i - 1}"]["id"] for i in range(10, 101, 10)]
    a = await ChatConnection.open(http.ws_url, alice.token)
    alice_inbox = await a.sync_all()
    assert [e["seq"] for e in alice_inbox] == list(range(1, len(alice_inbox) + 1))
    assert {acks[f"e{i}"]["seq"] for i in range(0, 100, 2)} <= {e["seq"] for e in alice_inbox if e["type"] == "edit"}
    await a.close()
    await b.close()
