"""A real `im serve` process and real WebSocket clients: chat, groups, sync, dedup, restarts."""

import asyncio
import itertools
import signal
from typing import Any

import pytest

from im.client import ChatConnection, HttpClient, Login

pytestmark = pytest.mark.integration

_emails = itertools.count()


async def signup(http: HttpClient, name: str = "user") -> Login:
    return await http.signup(f"{name}{next(_emails)}@example.test")


async def test_two_users_chat_both_ways(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice, bob = await signup(http, "alice"), await signup(http, "bob")
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)

    await a.send("a1", "hello bob", to=bob.user_id)
    ack = await a.expect("ack")
    msg = await b.expect("msg")
    assert ack["cid"] == "a1" and ack["seq"] == 1
    assert msg == {"type": "msg", "id": ack["id"], "seq": 1, "from": alice.user_id, "to": bob.user_id,
                   "group": None, "content": "hello bob", "cid": "a1", "ts": ack["ts"]}

    await b.send("b1", "hi alice", to=alice.user_id)
    assert (await b.expect("ack"))["seq"] == 2
    reply = await a.expect("msg")
    assert (reply["from"], reply["content"], reply["seq"]) == (bob.user_id, "hi alice", 2)
    await a.close()
    await b.close()


async def test_every_member_of_a_group_of_twenty_gets_each_message_once(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    users = [await signup(http, "member") for _ in range(20)]
    owner = users[0]
    group = await http.create_group(owner.token, "twenty")
    for user in users[1:]:
        await http.add_member(owner.token, group, user.user_id)
    assert sorted(await http.members(owner.token, group)) == sorted(u.user_id for u in users)
    connections = [await ChatConnection.open(http.ws_url, u.token) for u in users]
    senders = [0, 7, 19]
    for index in senders:
        await connections[index].send(f"g{index}", f"from {index}", group=group)
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    for index, connection in enumerate(connections):
        received = []
        while not connection.frames.empty():
            received.append(connection.frames.get_nowait())
        messages = [f for f in received if f["type"] == "msg"]
        acks = [f for f in received if f["type"] == "ack"]
        assert [f["content"] for f in messages] == [f"from {s}" for s in senders if s != index]
        assert all(f["group"] == group for f in messages)
        assert [f["cid"] for f in acks] == ([f"g{index}"] if index in senders else [])
        assert len(received) == len(messages) + len(acks)
    for connection in connections:
        await connection.close()


async def test_an_offline_user_gets_exactly_the_missed_messages_in_order(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice, bob = await signup(http), await signup(http)
    b = await ChatConnection.open(http.ws_url, bob.token)
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send("before", "seen live", to=bob.user_id)
    await a.expect("ack")
    last_seen = (await b.expect("msg"))["seq"]
    await b.close()

    for i in range(25):
        await a.send(f"m{i}", f"missed {i}", to=bob.user_id)
        await a.expect("ack")

    b = await ChatConnection.open(http.ws_url, bob.token)
    missed = await b.sync_all(after=last_seen, limit=10)
    assert [m["content"] for m in missed] == [f"missed {i}" for i in range(25)]
    assert [m["seq"] for m in missed] == list(range(last_seen + 1, last_seen + 26))
    history = await http.call("GET", f"/api/v1/messages?after={last_seen}&limit=5", token=bob.token)
    assert [m["content"] for m in history["messages"]] == [f"missed {i}" for i in range(5)]
    assert history["more"] is True
    await a.close()
    await b.close()


async def test_a_resent_cid_is_stored_once_and_acked_with_the_same_id(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await a.send("same", "once", to=bob.user_id)
    first = await a.expect("ack")
    await b.expect("msg")
    await a.close()
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send("same", "once", to=bob.user_id)
    again = await a.expect("ack")
    assert (again["id"], again["seq"]) == (first["id"], first["seq"])
    assert [m["cid"] for m in await b.sync_all()] == ["same"]
    with pytest.raises(TimeoutError):
        await b.next(timeout=0.3)
    await a.close()
    await b.close()


async def test_a_user_on_two_devices_gets_messages_on_both_and_sees_its_own_sends(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice, bob = await signup(http), await signup(http)
    phone = await ChatConnection.open(http.ws_url, alice.token)
    laptop = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await b.send("x", "to both", to=alice.user_id)
    assert (await phone.expect("msg"))["content"] == "to both"
    assert (await laptop.expect("msg"))["content"] == "to both"
    await phone.send("y", "from phone", to=bob.user_id)
    await phone.expect("ack")
    echoed = await laptop.expect("msg")
    assert (echoed["from"], echoed["content"]) == (alice.user_id, "from phone")
    for connection in (phone, laptop, b):
        await connection.close()


async def test_every_acked_message_survives_kill_9(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "0")
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    acked = []
    for i in range(200):
        await a.send(f"k{i}", f"durable {i}", to=bob.user_id)
    for _ in range(200):
        acked.append(await a.expect("ack"))
    server.kill()
    server.start()
    b = await ChatConnection.open(http.ws_url, bob.token)
    stored = await b.sync_all()
    assert {m["id"] for m in stored} == {ack["id"] for ack in acked}
    assert [m["content"] for m in stored] == [f"durable {i}" for i in range(200)]
    await b.close()


async def test_sigterm_sends_reconnect_then_closes_and_keeps_acked_messages(server_factory: Any) -> None:
    server = server_factory("--drain-seconds", "0.5")
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send("d1", "before drain", to=bob.user_id)
    await a.expect("ack")
    server.send_signal(signal.SIGTERM)
    reconnect = await a.expect("reconnect")
    assert 0 <= reconnect["after_ms"] <= 500
    closed = await a.expect("_closed")
    assert closed["code"] == 1001
    assert server.stop() == 0
    server.start()
    b = await ChatConnection.open(http.ws_url, bob.token)
    assert [m["content"] for m in await b.sync_all()] == ["before drain"]
    await b.close()
