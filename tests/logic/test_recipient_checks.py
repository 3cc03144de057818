"""The store decides who may send where, inside its transaction: logic only refuses ids that are not ids."""

import asyncio
import time

from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.contracts.envelopes import Uplink
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import TokenCodec
from tests.support.buses import RecordingBus


async def test_unknown_recipients_and_strangers_to_a_group_are_refused_and_the_rest_commits(
    store: SqliteStore,
) -> None:
    alice = (await store.create_user("a@example.test", "x", "a")).id
    bob = (await store.create_user("b@example.test", "x", "b")).id
    group = (await store.create_group("g", alice)).id
    bus = RecordingBus()
    logic = Logic(store, bus, MemorySessions(), TokenCodec("k" * 32),
                  LogicSettings(batch_max_size=10, batch_max_delay_ms=20))
    await logic.start()
    await bus.publish([
        Uplink(alice, "1", bob, None, "hi", "g1", 1, time.time()),
        Uplink(alice, "2", 999, None, "hi", "g1", 1, time.time()),
        Uplink(bob, "3", None, group, "hi", "g1", 1, time.time()),
        Uplink(alice, "4", None, 998, "hi", "g1", 1, time.time()),
        Uplink(alice, "5", None, group, "hi", "g1", 1, time.time()),
    ])
    await asyncio.sleep(0.2)
    await logic.close()
    await bus.close()
    assert bus.acks() == ["1", "5"]
    assert {cid: code for cid, (code, _) in bus.refusals().items()} == {
        "2": "not_found", "3": "forbidden", "4": "not_found"}
    assert [seq for seq, _ in (await store.events(bob, 0, 10)).entries] == [1]
