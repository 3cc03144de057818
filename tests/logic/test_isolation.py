"""One bad uplink never holds up the others; an outage pauses the pipeline and says so; a stop is bounded.

Logic runs over the real SQLite store (a file in a temp dir) and the in-memory bus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from im import metrics
from im.backends.base import BatchItem, Outcome, Send
from im.backends.bus.memory import MemoryBus
from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.contracts.envelopes import Uplink
from im.contracts.records import Caller
from im.logic.service import Logic, LogicSettings
from im.protocol.errors import BadRequest, Unavailable
from im.protocol.frames import encode_sync
from im.protocol.tokens import TokenCodec
from tests.support.buses import RecordingBus


class ChosenFailures(SqliteStore):
    """Fails any batch that holds the message with cid `poison` (as a value the database cannot
    take would); while `down` is set, fails every write as an outage."""

    poison: str | None = None
    down: bool = False
    commit_calls: int = 0

    async def commit(self, batch: Sequence[BatchItem], *, edit_window_ms: int | None,
                     recall_window_ms: int | None) -> list[Outcome]:
        self.commit_calls += 1
        if self.down:
            raise Unavailable("SQLite /data/im.sqlite3: database is locked")
        if any(isinstance(m, Send) and m.cid == self.poison for m in batch):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return await super().commit(batch, edit_window_ms=edit_window_ms, recall_window_ms=recall_window_ms)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ChosenFailures]:
    store = ChosenFailures(tmp_path / "im.sqlite3")
    await store.open()
    yield store
    await store.close()


async def users(store: SqliteStore, count: int) -> list[int]:
    return [(await store.create_user(f"u{i}@example.test", "x", f"u{i}")).id for i in range(count)]


def uplink(sender: int, cid: str, *, to: int | None = None, group: int | None = None) -> Uplink:
    return Uplink(sender, cid, to, group, f"content of {cid}", "g1", 7, time.time())


async def running(store: SqliteStore, bus: MemoryBus, **settings: Any) -> Logic:
    logic = Logic(store, bus, MemorySessions(), TokenCodec("k" * 32),
                  LogicSettings(**{"batch_max_size": 100, "batch_max_delay_ms": 20, **settings}))
    await logic.start()
    return logic


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_message_the_store_cannot_take_is_refused_and_its_batch_commits(
    store: ChosenFailures, caplog: pytest.LogCaptureFixture,
) -> None:
    alice, bob = await users(store, 2)
    store.poison = "m17"
    bus = RecordingBus()
    logic = await running(store, bus)
    cids = [f"m{i}" for i in range(40)]
    with caplog.at_level(logging.ERROR):
        await bus.publish([uplink(alice, cid, to=bob) for cid in cids])
        await until(lambda: len(bus.acks()) + len(bus.refusals()) == 40)
    assert bus.acks() == [cid for cid in cids if cid != "m17"]
    code, request_id = bus.refusals()["m17"]
    assert code == "internal" and request_id
    [logged] = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged.exc_info is not None and logged.exc_info[0] is OverflowError
    stored = (await store.inbox(bob, 0, 100)).entries
    assert [m.cid for _, m in stored] == [cid for cid in cids if cid != "m17"]
    assert [seq for seq, _ in stored] == list(range(1, 40)), "seqs stay gapless"
    await logic.ping()
    await logic.close()
    await bus.close()


async def test_ids_out_of_range_on_the_bus_are_refused_before_the_store_is_asked(store: ChosenFailures) -> None:
    [alice] = await users(store, 1)
    bus = RecordingBus()
    logic = await running(store, bus)
    await bus.publish([uplink(alice, "big", to=2**63), uplink(alice, "zero", group=0),
                       uplink(alice, "both", to=alice, group=1), uplink(2**64, "sender", to=alice),
                       uplink(alice, "fine", to=alice)])
    await until(lambda: len(bus.acks()) + len(bus.refusals()) == 5)
    assert bus.acks() == ["fine"]
    assert {cid: code for cid, (code, _) in bus.refusals().items()} == {
        "big": "bad_frame", "zero": "bad_frame", "both": "bad_frame", "sender": "bad_frame"}
    await logic.close()
    await bus.close()


async def test_an_outage_pauses_the_pipeline_fails_ping_and_shows_in_the_metric(store: ChosenFailures) -> None:
    alice, bob = await users(store, 2)
    bus = RecordingBus()
    logic = await running(store, bus)
    store.down = True
    await bus.publish([uplink(alice, "waits", to=bob)])
    await until(lambda: store.commit_calls >= 2)
    with pytest.raises(Unavailable):
        await logic.ping()
    await asyncio.sleep(0.2)
    assert metrics.PIPELINE_STALLED.collect()[0].samples[0].value >= 0.2
    assert bus.acks() == [] and bus.refusals() == {}, "an outage refuses nothing"
    store.down = False
    await until(lambda: bus.acks() == ["waits"])
    await logic.ping()
    assert metrics.PIPELINE_STALLED.collect()[0].samples[0].value == 0
    await logic.close()
    await bus.close()


async def test_stopping_during_an_outage_is_bounded_and_refuses_what_is_unwritten(store: ChosenFailures) -> None:
    alice, bob = await users(store, 2)
    bus = RecordingBus()
    logic = await running(store, bus, flush_timeout_seconds=0.3, refuse_unwritten_on_close=True)
    store.down = True
    await bus.publish([uplink(alice, "a", to=bob), uplink(alice, "b", to=bob)])
    await until(lambda: store.commit_calls >= 1)
    started = time.monotonic()
    await asyncio.wait_for(logic.close(), 5)
    assert time.monotonic() - started < 2
    await until(lambda: set(bus.refusals()) == {"a", "b"})
    assert {code for code, _ in bus.refusals().values()} == {"unavailable"}
    await bus.close()


async def test_stopping_during_an_outage_leaves_what_is_unwritten_for_redelivery(store: ChosenFailures) -> None:
    alice, bob = await users(store, 2)
    bus = RecordingBus()
    logic = await running(store, bus, flush_timeout_seconds=0.3)
    store.down = True
    await bus.publish([uplink(alice, "a", to=bob)])
    await until(lambda: store.commit_calls >= 1)
    await asyncio.wait_for(logic.close(), 5)
    await bus.close()
    assert bus.refusals() == {} and bus.acks() == [], "neither acked nor refused: the bus still holds it"


async def test_logic_api_calls_refuse_ids_out_of_range(store: ChosenFailures) -> None:
    [alice] = await users(store, 1)
    bus = RecordingBus()
    logic = await running(store, bus)
    caller = Caller(alice, "token")
    group = await logic.create_group(caller, "g")
    for call in (logic.add_member(caller, 2**63, alice), logic.add_member(caller, group.id, 0),
                 logic.add_member(caller, group.id, 2**70), logic.list_members(caller, -1),
                 logic.sync(caller, 2**63, 10), logic.sync(caller, -1, 10), logic.sync(caller, 0, 0)):
        with pytest.raises(BadRequest):
            await call
    await logic.close()
    await bus.close()


async def test_a_sync_answer_is_cut_to_its_byte_budget(store: ChosenFailures) -> None:
    alice, bob = await users(store, 2)
    bus = RecordingBus()
    logic = await running(store, bus, max_sync_bytes=64 * 1024)
    await bus.publish([uplink(alice, f"n{i}", to=bob) for i in range(50)])
    await until(lambda: len(bus.acks()) == 50)
    await store.commit([Send(alice, f"big{i}", "\x00" * 4000, 1, to=bob) for i in range(30)],
                       edit_window_ms=None, recall_window_ms=None)
    caller = Caller(bob, "token")
    pages = [await logic.sync(caller, 0, 500)]
    while pages[-1].more:
        pages.append(await logic.sync(caller, pages[-1].entries[-1][0], 500))
    assert 50 < len(pages[0].entries) < 80
    assert all(len(encode_sync(page)) <= 64 * 1024 for page in pages)
    assert [seq for page in pages for seq, _ in page.entries] == list(range(1, 81))
    await logic.close()
    await bus.close()
