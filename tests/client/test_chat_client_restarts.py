"""`ChatClient` against a real `im serve` that is killed (SIGKILL) and drained (SIGTERM) mid-stream:
nothing acked is lost, nothing is handed over twice, every inbox stays gapless."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from im.client import (
    ChatClient,
    ClientOptions,
    Event,
    FileStore,
    HttpClient,
    Outgoing,
    Received,
    ReconnectPolicy,
    ReconnectRequested,
)

pytestmark = pytest.mark.integration

OPTIONS = ClientOptions(reconnect=ReconnectPolicy(first_delay_seconds=0.2, max_delay_seconds=2.0))
COUNT = 300
SEND_EVERY = 1 / 40  # under the server's default rate of 50 sends per second


class Recorder:
    """Reads a client's events in the background, the way an application would."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.events: list[Event] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.client.events():
            self.events.append(event)

    @property
    def received(self) -> list[Received]:
        return [e for e in self.events if isinstance(e, Received)]

    async def wait_for(self, count: int, timeout: float = 60) -> None:
        async def enough() -> None:
            while len(self.received) < count:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(enough(), timeout)


def assert_handed_once_and_gapless(recorder: Recorder, count: int) -> None:
    seqs = [e.seq for e in recorder.received]
    doubled = [seq for seq, n in Counter(seqs).items() if n > 1]
    assert not doubled, f"handed over twice: {doubled[:10]}"
    assert sorted(seqs) == list(range(1, count + 1)), "gapless, nothing missing"


async def test_a_killed_and_a_drained_server_lose_nothing_and_double_nothing(
    server_factory: Any, tmp_path: Path,
) -> None:
    server = server_factory("--drain-seconds", "1")
    http = HttpClient(server.url)
    alice_login, bob_login = await http.signup("alice@example.com"), await http.signup("bob@example.com")
    alice = ChatClient(server.url, alice_login, store=FileStore(tmp_path / "alice.json"), options=OPTIONS)
    bob_store = FileStore(tmp_path / "bob.json")
    bob = ChatClient(server.url, bob_login, store=bob_store, options=OPTIONS)
    await alice.start()
    await bob.start()
    alice_events, bob_events = Recorder(alice), Recorder(bob)

    async def interrupt() -> None:
        await bob_events.wait_for(COUNT // 3)
        await asyncio.to_thread(server.kill)  # SIGKILL: acks in flight are lost with the process
        await asyncio.to_thread(server.start)
        await bob_events.wait_for(2 * COUNT // 3)
        await asyncio.to_thread(server.stop, signal.SIGTERM)  # a drain: `reconnect` frames, then close
        await asyncio.to_thread(server.start)

    interruptions = asyncio.create_task(interrupt())
    sent: list[Outgoing] = []
    for i in range(COUNT):
        sent.append(await alice.send(f"m{i}", to=bob_login.user_id))
        await asyncio.sleep(SEND_EVERY)
    await asyncio.wait_for(interruptions, 120)
    acked = await asyncio.wait_for(asyncio.gather(*sent), 60)
    await bob_events.wait_for(COUNT)
    await alice_events.wait_for(COUNT)

    assert [m.content for m in acked] == [f"m{i}" for i in range(COUNT)]
    assert alice.outbox() == []
    assert_handed_once_and_gapless(alice_events, COUNT)
    assert_handed_once_and_gapless(bob_events, COUNT)
    assert sorted(e.message.content for e in bob_events.received) == sorted(f"m{i}" for i in range(COUNT))
    assert {e.source for e in bob_events.received} <= {"push", "sync"}
    assert any(isinstance(e, ReconnectRequested) for e in alice_events.events + bob_events.events), \
        "the drain told the clients when to come back"
    stored = await http.history(bob_login.token)
    assert Counter(m["cid"] for m in stored).most_common(1)[0][1] == 1, "each cid stored once"
    assert [m["seq"] for m in stored] == list(range(1, COUNT + 1))

    # Bob's client restarts from its file: only what came meanwhile is handed over.
    await bob.close()
    for i in range(5):
        await asyncio.wait_for(await alice.send(f"later {i}", to=bob_login.user_id), 30)
    bob = ChatClient(server.url, bob_login, store=bob_store, options=OPTIONS)
    await bob.start()
    again = Recorder(bob)
    await again.wait_for(5)
    assert [(e.seq, e.message.content) for e in again.received] == [(COUNT + i + 1, f"later {i}") for i in range(5)]
    await alice.close()
    await bob.close()
    await asyncio.wait_for(asyncio.gather(alice_events.task, bob_events.task, again.task), 10)


async def test_reconnect_now_skips_the_rest_of_the_backoff(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory()
    login = await HttpClient(server.url).signup("carol@example.com")
    patient = ClientOptions(reconnect=ReconnectPolicy(first_delay_seconds=60, max_delay_seconds=60))
    client = ChatClient(server.url, login, store=FileStore(tmp_path / "carol.json"), options=patient)
    await client.start()
    events = Recorder(client)

    async def until(condition: Any, timeout: float) -> None:
        async def wait() -> None:
            while not condition():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(wait(), timeout)

    await until(lambda: client.connected, 10)
    await asyncio.to_thread(server.kill)
    await until(lambda: not client.connected, 10)  # now waiting 30-60 s before the next attempt
    await asyncio.to_thread(server.start)
    client.reconnect_now()
    await until(lambda: client.connected, 10)
    await client.close()
    await asyncio.wait_for(events.task, 10)
