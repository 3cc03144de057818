"""Logic and a gateway in one process over the real SQLite store, with real WebSocket clients: a
group change pushed with `Logic.push` reaches connected members with their seqs, and a read towards
a user who blocked the reader stays the reader's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from im.backends.bus.memory import MemoryBus
from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.client import ChatConnection
from im.gateway.server import Gateway, GatewaySettings
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import TokenCodec
from tests.support.inbox_events import frames_until_pong


@dataclass
class Running:
    store: SqliteStore
    logic: Logic
    tokens: TokenCodec
    ws_url: str

    async def connect(self, user_id: int) -> ChatConnection:
        token, _ = self.tokens.issue(user_id, int(time.time()))
        return await ChatConnection.open(self.ws_url, token)


@pytest.fixture
async def running(store: SqliteStore) -> AsyncIterator[Running]:
    bus, sessions, tokens = MemoryBus(), MemorySessions(), TokenCodec("k" * 32)
    logic = Logic(store, bus, sessions, tokens, LogicSettings(batch_max_delay_ms=1))
    await logic.start()
    gateway = Gateway(logic, tokens, bus, sessions, settings=GatewaySettings(serve_web=False))
    await gateway.start("127.0.0.1", 0)
    yield Running(store, logic, tokens, f"ws://127.0.0.1:{gateway.ports[0]}/ws")
    await gateway.close()
    await logic.close()
    await bus.close()


async def test_a_pushed_group_change_reaches_every_connected_member_with_their_seq(running: Running) -> None:
    store = running.store
    owner = (await store.create_user("o@example.test", "x", "o")).id
    member = (await store.create_user("m@example.test", "x", "m")).id
    group = (await store.create_group("before", owner)).id
    joined = await store.join_group(group, member, by=owner)
    assert joined is not None
    o, m = await running.connect(owner), await running.connect(member)
    await o.send("g1", "hello", group=group)
    await o.expect("ack")
    assert (await m.expect("msg"))["seq"] == 2

    renamed = await store.rename_group(group, "after", by=owner)
    assert renamed is not None
    await running.logic.push(renamed)
    for connection, user in ((o, owner), (m, member)):
        event = await connection.expect("group")
        assert event == {"type": "group", "seq": renamed.seqs[user], "group": group, "name": "after",
                         "owner": owner, "by": owner, "ts": event["ts"]}
    assert renamed.seqs == {owner: 3, member: 3}
    removed = await store.remove_member(group, member, by=owner)
    await running.logic.push(removed)
    for connection in (o, m):
        event = await connection.expect("member")
        assert (event["user"], event["action"], event["by"], event["seq"]) == (member, "removed", owner, 4)
    for connection in (o, m):
        await connection.close()


async def test_a_read_towards_a_user_who_blocked_the_reader_reaches_the_reader_only(running: Running) -> None:
    store = running.store
    alice = (await store.create_user("a@example.test", "x", "a")).id
    bob = (await store.create_user("b@example.test", "x", "b")).id
    a, b = await running.connect(alice), await running.connect(bob)
    await b.send("hi", "hi alice", to=alice)
    message_id = (await b.expect("ack"))["id"]
    await a.expect("msg")
    assert await store.block(bob, alice)
    await a.send_frame({"type": "read", "peer": bob, "up_to": message_id})
    read = await a.expect("read")
    assert (read["by"], read["peer"], read["up_to"]) == (alice, bob, message_id)
    await a.send("back", "can you see me?", to=bob)
    refused = await a.expect("error")
    assert (refused["code"], refused["cid"]) == ("forbidden", "back")
    assert await frames_until_pong(b) == [], "bob, who blocked alice, gets neither her read nor her message"
    assert [e["type"] for e in await b.sync_all()] == ["msg"]
    for connection in (a, b):
        await connection.close()
