"""Recipients are checked against the store, and a user seen once is not looked up again."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from im.backends.bus.memory import MemoryBus
from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.contracts.envelopes import Downlink, Uplink
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import TokenCodec


class CountingStore(SqliteStore):
    lookups: list[set[int]]

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]:
        ids = set(user_ids)
        self.lookups.append(ids)
        return await super().existing_users(ids)


class RecordingBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.downlinks: list[Downlink] = []

    async def deliver(self, downlink: Downlink) -> None:
        self.downlinks.append(downlink)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(tmp_path / "im.sqlite3")
    store.lookups = []
    await store.open()
    yield store
    await store.close()


async def send_batches(store: CountingStore, batches: list[list[tuple[int, int, str]]]) -> RecordingBus:
    bus = RecordingBus()
    logic = Logic(store, bus, MemorySessions(), TokenCodec("k" * 32),
                  LogicSettings(batch_max_size=10, batch_max_delay_ms=0))
    await logic.start()
    for batch in batches:
        await bus.publish([Uplink(s, cid, to, None, "hi", "g1", 1, time.time()) for s, to, cid in batch])
        await asyncio.sleep(0.05)
    await logic.close()
    await bus.close()
    return bus


async def test_a_known_recipient_is_not_looked_up_again_and_an_unknown_one_always_is(store: CountingStore) -> None:
    alice = (await store.create_user("a@example.test", "x", "a")).id
    bob = (await store.create_user("b@example.test", "x", "b")).id
    bus = await send_batches(store, [
        [(alice, bob, "1")], [(alice, bob, "2"), (bob, alice, "3")], [(alice, 999, "4")], [(alice, 999, "5")],
    ])
    assert store.lookups == [{bob}, {alice}, {999}, {999}]
    acks = [ack.cid for downlink in bus.downlinks for ack in downlink.acks]
    refused = [(r.cid, r.code) for downlink in bus.downlinks for r in downlink.rejections]
    assert acks == ["1", "2", "3"]
    assert refused == [("4", "not_found"), ("5", "not_found")]
