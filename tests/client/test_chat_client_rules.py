"""`ChatClient` against a scripted WebSocket server: the cases a real server rarely produces on cue
(a seq gap, frame types from a newer server, a drain, an oversized frame, a refused token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from im.client import (
    ChatClient,
    ClientOptions,
    Connected,
    Disconnected,
    Event,
    InboxEvent,
    Login,
    MemoryStore,
    Presence,
    PresenceUpdate,
    Received,
    ReconnectPolicy,
    ReconnectRequested,
    SendFailed,
    SendRefused,
    SessionEnded,
    Synced,
    TypingNotice,
    UnknownFrame,
)

ME, PEER = 1, 2
FAST = ClientOptions(reconnect=ReconnectPolicy(first_delay_seconds=0.05, max_delay_seconds=0.2),
                     gap_grace_seconds=0.1, retry_temporary_seconds=0.1)
Script = Callable[["Peer"], Awaitable[None]]


def msg(seq: int, content: str = "x", sender: int = PEER, cid: str | None = None) -> dict[str, Any]:
    return {"type": "msg", "id": 100 + seq, "seq": seq, "from": sender, "to": ME if sender == PEER else PEER,
            "group": None, "content": content, "cid": cid or f"c{seq}", "ts": 1700000000000 + seq}


class Peer:
    """The server side of one connection, driven by a test's script."""

    def __init__(self, ws: ServerConnection, number: int) -> None:
        self.ws = ws
        self.number = number

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        return dict(orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout)))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def expect_sync(self, after: int) -> None:
        frame = await self.recv()
        assert frame["type"] == "sync" and frame["after"] == after, frame


class FakeServer:
    def __init__(self, scripts: list[Script], refuse_tokens: frozenset[str] = frozenset()) -> None:
        self.scripts = scripts
        self.refuse_tokens = refuse_tokens
        self.connected_at: list[float] = []
        self.failures: list[BaseException] = []
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        token = request.path.partition("token=")[2]
        if token in self.refuse_tokens:
            return connection.respond(401, '{"error":{"code":"unauthorized","message":"bad token"}}')
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        number = len(self.connected_at)
        self.connected_at.append(time.monotonic())
        script = self.scripts[min(number, len(self.scripts) - 1)]
        try:
            await script(Peer(ws, number))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(exc)
            raise
        await ws.wait_closed()


@pytest.fixture
async def fake() -> AsyncIterator[Callable[..., Awaitable[FakeServer]]]:
    started: list[FakeServer] = []

    async def start(scripts: list[Script], refuse_tokens: frozenset[str] = frozenset()) -> FakeServer:
        fake = FakeServer(scripts, refuse_tokens)
        fake.server = await serve(fake._handler, "127.0.0.1", 0, process_request=fake._check_token)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        assert fake.server is not None
        fake.server.close()
        assert not fake.failures, fake.failures


async def collect(client: ChatClient, until: Callable[[list[Event]], bool], timeout: float = 10) -> list[Event]:
    seen: list[Event] = []

    async def read() -> None:
        async for event in client.events():
            seen.append(event)
            if until(seen):
                return

    await asyncio.wait_for(read(), timeout)
    return seen


def received_seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events if isinstance(e, (Received, InboxEvent))]


async def test_a_gap_in_the_seqs_is_filled_by_a_sync_and_nothing_is_handed_over_twice(fake: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [msg(1)], "more": False})
        await peer.send(msg(3))  # 2 went missing
        await peer.expect_sync(1)
        await peer.send({"type": "sync", "messages": [msg(2), msg(3)], "more": False})

    server = await fake([script])
    async with ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=FAST) as client:
        events = await collect(client, lambda seen: len(received_seqs(seen)) == 3 and isinstance(seen[-1], Synced))
        assert received_seqs(events) == [1, 3, 2]
        assert client.position == 3


async def test_types_from_a_newer_server_are_passed_through_and_take_their_seq(fake: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.expect_sync(0)
        poll = {"type": "poll", "seq": 2, "id": 101, "from": PEER, "to": ME, "question": "y?", "ts": 1}
        await peer.send({"type": "sync", "messages": [msg(1), poll], "more": False})
        await peer.send({"type": "sticker", "seq": 3, "from": PEER, "to": ME, "ts": 2})  # pushed, with a seq
        await peer.send({"type": "poll_closed", "poll": 2})
        await peer.send({"type": "typing", "from": "someone", "to": ME})  # a known type, malformed

    server = await fake([script])
    async with ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=FAST) as client:
        events = await collect(client, lambda seen: sum(isinstance(e, UnknownFrame) for e in seen) == 2)
    inbox = [e for e in events if isinstance(e, InboxEvent)]
    assert [(e.type, e.seq) for e in inbox] == [("poll", 2), ("sticker", 3)]
    assert [e.frame["type"] for e in events if isinstance(e, UnknownFrame)] == ["poll_closed", "typing"]
    assert client.position == 3


async def test_a_reconnect_frame_sets_when_the_client_comes_back_and_unacked_sends_go_again(fake: Any) -> None:
    async def draining(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [], "more": False})
        first = await peer.recv()
        assert first["type"] == "send"
        await peer.send({"type": "reconnect", "after_ms": 400})
        await asyncio.sleep(0.05)
        await peer.ws.close(1001, "gateway draining")

    async def after(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [], "more": False})
        again = await peer.recv()
        assert again["type"] == "send" and again["content"] == "hello", again
        await peer.send({"type": "ack", "cid": again["cid"], "id": 500, "seq": 1, "ts": 1})

    server = await fake([draining, after])
    async with ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=FAST) as client:
        await collect(client, lambda seen: isinstance(seen[-1], Synced))
        outgoing = await client.send("hello", to=PEER)
        message = await asyncio.wait_for(outgoing, 10)
        events = await collect(client, lambda seen: isinstance(seen[-1], Received))
    assert message.seq == 1 and message.cid == outgoing.cid
    requested = next(e for e in events if isinstance(e, ReconnectRequested))
    disconnected = next(e for e in events if isinstance(e, Disconnected))
    assert requested.after_ms == 400 and disconnected.retry_in == pytest.approx(0.4)
    assert server.connected_at[1] - server.connected_at[0] >= 0.4


async def test_a_send_the_server_closed_on_as_too_big_fails_once_and_the_rest_go_through(fake: Any) -> None:
    async def closes_on_big(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [], "more": False})
        while True:
            frame = await peer.recv()
            if len(frame["content"]) > 1000:
                await peer.ws.close(1009, "frame too big")
                return
            await peer.send({"type": "ack", "cid": frame["cid"], "id": 1, "seq": 1, "ts": 1})

    async def normal(peer: Peer) -> None:
        await peer.expect_sync(1)
        await peer.send({"type": "sync", "messages": [], "more": False})
        frame = await peer.recv()
        assert frame["content"] == "small again", frame
        await peer.send({"type": "ack", "cid": frame["cid"], "id": 2, "seq": 2, "ts": 1})

    server = await fake([closes_on_big, normal])
    async with ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=FAST) as client:
        await collect(client, lambda seen: isinstance(seen[-1], Synced))
        await asyncio.wait_for(await client.send("small", to=PEER), 10)
        big = await client.send("x" * 5000, to=PEER)
        with pytest.raises(SendRefused) as refused:
            await asyncio.wait_for(big, 10)
        assert refused.value.code == "too_large"
        assert [(p.cid, p.status) for p in client.outbox()] == [(big.cid, "failed")]
        await asyncio.wait_for(await client.send("small again", to=PEER), 10)
        client.discard(big.cid)
        assert client.outbox() == []


async def test_temporary_errors_are_retried_with_the_same_cid_and_permanent_ones_fail(fake: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [], "more": False})
        first = await peer.recv()
        await peer.send({"type": "error", "code": "rate_limited", "message": "slow down", "cid": first["cid"]})
        second = await peer.recv()
        assert second == first, "resent unchanged, same cid"
        await peer.send({"type": "ack", "cid": first["cid"], "id": 9, "seq": 1, "ts": 1})
        refused = await peer.recv()
        await peer.send({"type": "error", "code": "forbidden", "message": "not a member", "cid": refused["cid"]})

    server = await fake([script])
    async with ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=FAST) as client:
        await collect(client, lambda seen: isinstance(seen[-1], Synced))
        assert (await asyncio.wait_for(await client.send("one", to=PEER), 10)).id == 9
        with pytest.raises(SendRefused):
            await asyncio.wait_for(await client.send("two", group=5), 10)
        events = await collect(client, lambda seen: isinstance(seen[-1], SendFailed))
    assert [e.code for e in events if isinstance(e, SendFailed)] == ["forbidden"]


async def test_a_refused_token_is_replaced_by_a_new_login_or_ends_the_session(fake: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [], "more": False})

    server = await fake([script], refuse_tokens=frozenset({"old"}))
    logins = iter([Login("old", ME, 0), Login("new", ME, 0)])

    async def credentials() -> Login:
        return next(logins)

    async with ChatClient(server.url, credentials, store=MemoryStore(), options=FAST) as client:
        await collect(client, lambda seen: isinstance(seen[-1], Connected))
        assert client.login == Login("new", ME, 0)

    async with ChatClient(server.url, Login("old", ME, 0), store=MemoryStore(), options=FAST) as client:
        events = await collect(client, lambda seen: isinstance(seen[-1], SessionEnded))
    assert events[-1] == SessionEnded("unauthorized")
    assert len(server.connected_at) == 1, "a refused handshake is no connection"


async def test_presence_is_watched_again_on_every_connection_and_after_a_refusal(fake: Any) -> None:
    watch = {"type": "presence", "watch": [PEER, 3]}
    cleared = asyncio.Event()

    async def first(peer: Peer) -> None:
        await peer.expect_sync(0)
        assert await peer.recv() == watch  # asked for before start()
        await peer.send({"type": "sync", "messages": [], "more": False})
        await peer.send({"type": "error", "code": "rate_limited", "message": "watching too fast", "cid": None})
        assert await peer.recv() == watch
        await peer.send({"type": "presence", "users": [
            {"user_id": PEER, "online": True, "last_seen": None}, {"user_id": 3, "online": False, "last_seen": 5},
            {"user_id": "x", "online": 1}]})
        await peer.send({"type": "typing", "from": PEER, "to": ME})
        await peer.send({"type": "typing", "from": 3, "group": 7})
        await peer.ws.close(1011, "gone")

    async def second(peer: Peer) -> None:
        await peer.expect_sync(0)
        assert await peer.recv() == watch  # not asked again: remembered
        await peer.send({"type": "sync", "messages": [], "more": False})
        assert await peer.recv() == {"type": "presence", "watch": []}
        cleared.set()

    server = await fake([first, second])
    client = ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=FAST)
    await client.watch_presence([PEER, 3, PEER])
    assert client.watching == (PEER, 3)
    with pytest.raises(ValueError):
        await client.watch_presence(range(1, 502))
    with pytest.raises(ValueError):
        await client.watch_presence([0])
    async with client:
        events = await collect(client, lambda seen: sum(isinstance(e, Connected) for e in seen) == 2
                               and isinstance(seen[-1], Synced))
        assert [e.users for e in events if isinstance(e, PresenceUpdate)] == [
            (Presence(PEER, True, None), Presence(3, False, 5))]
        assert [e for e in events if isinstance(e, TypingNotice)] == [
            TypingNotice(PEER, PEER, None), TypingNotice(3, None, 7)]
        await client.watch_presence([])
        await asyncio.wait_for(cleared.wait(), 10)


async def test_typing_goes_out_once_per_conversation_and_interval(fake: Any) -> None:
    frames: list[dict[str, Any]] = []

    async def script(peer: Peer) -> None:
        await peer.expect_sync(0)
        await peer.send({"type": "sync", "messages": [], "more": False})
        for _ in range(3):
            frames.append(await peer.recv())

    server = await fake([script])
    options = ClientOptions(reconnect=FAST.reconnect, typing_interval_seconds=0.3)
    async with ChatClient(server.url, Login("t", ME, 0), store=MemoryStore(), options=options) as client:
        assert not await client.typing(to=PEER), "not connected: nothing to send"
        await collect(client, lambda seen: isinstance(seen[-1], Synced))
        started = time.monotonic()
        assert await client.typing(to=PEER)
        assert not await client.typing(to=PEER), "the same conversation within the interval"
        assert await client.typing(group=7), "another conversation"
        while not await client.typing(to=PEER):
            await asyncio.sleep(0.02)
        assert time.monotonic() - started >= 0.3
        with pytest.raises(ValueError):
            await client.typing(to=PEER, group=7)
        while len(frames) < 3:
            await asyncio.sleep(0.02)
    assert frames == [{"type": "typing", "to": PEER}, {"type": "typing", "group": 7}, {"type": "typing", "to": PEER}]
