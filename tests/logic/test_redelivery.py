"""A batch stored by a replica that stopped before its downlinks went out comes again from the bus:
its messages are pushed once more (marked `again`), not only acked."""

import asyncio
import dataclasses
import logging
import time

import pytest

from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.contracts.envelopes import Downlink, Uplink
from im.logic.service import Logic, LogicSettings
from im.protocol.errors import Unavailable
from im.protocol.tokens import TokenCodec
from tests.logic.test_recipient_checks import RecordingBus


async def handled(logic: Logic, bus: RecordingBus, uplinks: list[Uplink]) -> list[Downlink]:
    seen = len(bus.downlinks)
    await bus.publish(uplinks)
    deadline = time.monotonic() + 5
    while not any(d.acks for d in bus.downlinks[seen:]):
        assert time.monotonic() < deadline, "no ack"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the deliveries follow the acks
    return bus.downlinks[seen:]


async def test_a_redelivered_duplicate_is_pushed_again_and_a_resent_one_only_acked(store: SqliteStore) -> None:
    alice = await store.create_user("a@example.test", "x", "a")
    bob = await store.create_user("b@example.test", "x", "b")
    bus, sessions = RecordingBus(), MemorySessions()
    await sessions.bind(bob.id, "g2")
    logic = Logic(store, bus, sessions, TokenCodec("k" * 32), LogicSettings(batch_max_delay_ms=0))
    await logic.start()
    original = Uplink(alice.id, "c1", bob.id, None, "hello", "g1", 7, time.time())

    first = await handled(logic, bus, [original])
    pushed = [d for downlink in first for d in downlink.deliveries]
    assert [(d.recipients, d.again) for d in pushed] == [([(bob.id, 1)], False)]

    resent = await handled(logic, bus, [original])  # the sender sent it again: only the ack
    assert [d.deliveries for d in resent] == [[]]
    assert resent[0].acks[0].seq == first[0].acks[0].seq

    redelivered = await handled(logic, bus, [dataclasses.replace(original, redelivered=True)])
    again = [d for downlink in redelivered for d in downlink.deliveries]
    assert [(d.recipients, d.again, d.event.id) for d in again] == [([(bob.id, 1)], True, pushed[0].event.id)]
    await logic.close()
    await bus.close()


async def test_a_redelivered_edit_is_pushed_again_to_its_senders_devices_and_a_redelivered_read_moves_nothing(
    store: SqliteStore,
) -> None:
    alice = await store.create_user("a@example.test", "x", "a")
    bob = await store.create_user("b@example.test", "x", "b")
    bus, sessions = RecordingBus(), MemorySessions()
    await sessions.bind(alice.id, "g1")
    await sessions.bind(bob.id, "g2")
    logic = Logic(store, bus, sessions, TokenCodec("k" * 32), LogicSettings(batch_max_delay_ms=0))
    await logic.start()
    sent = await handled(logic, bus, [Uplink(alice.id, "m1", bob.id, None, "hello", "g1", 7, time.time())])
    message_id = next(ack.id for downlink in sent for ack in downlink.acks)
    edit = Uplink(alice.id, "e1", None, None, "hello, edited", "g1", 7, time.time(), kind="edit", message_id=message_id)

    first = await handled(logic, bus, [edit])
    assert sorted((d.recipients, d.origin) for downlink in first for d in downlink.deliveries) == [
        ([(alice.id, 2)], 7), ([(bob.id, 2)], None)], "bob and alice's other devices (not connection 7)"
    redelivered = await handled(logic, bus, [dataclasses.replace(edit, redelivered=True)])
    assert [a.seq for d in redelivered for a in d.acks] == [a.seq for d in first for a in d.acks] == [2]
    again = [d for downlink in redelivered for d in downlink.deliveries]
    assert [(d.recipients, d.again) for d in again] == [([(alice.id, 2)], True)]

    read = Uplink(bob.id, "", alice.id, None, "", "g2", 8, time.time(), kind="read", message_id=message_id)
    await bus.publish([read])
    await asyncio.sleep(0.2)
    reads = [d for downlink in bus.downlinks for d in downlink.deliveries if d.event.__class__.__name__ == "ReadEvent"]
    assert sorted(r for d in reads for r in d.recipients) == [(alice.id, 3), (bob.id, 3)]
    seen = len(bus.downlinks)
    await bus.publish([dataclasses.replace(read, redelivered=True)])
    await asyncio.sleep(0.2)
    assert [(d.answered, d.deliveries) for d in bus.downlinks[seen:]] == [([8], [])], "answered, nothing pushed"
    await logic.close()
    await bus.close()


class UndeliverableBus(RecordingBus):
    """Every downlink fails, as in a broker outage; `ping` says so if the bus `knows_it_is_down`."""

    def __init__(self, *, knows_it_is_down: bool) -> None:
        super().__init__()
        self.knows_it_is_down = knows_it_is_down

    async def deliver(self, downlink: Downlink) -> None:
        raise Unavailable("RabbitMQ at test: downlink publish failed: channel closed")

    async def ping(self) -> None:
        if self.knows_it_is_down:
            raise Unavailable("RabbitMQ at test: not connected")


@pytest.mark.parametrize(("knows_it_is_down", "level"), [(True, logging.INFO), (False, logging.WARNING)])
async def test_downlinks_failing_in_an_outage_the_bus_reported_add_no_second_warning(
    store: SqliteStore, caplog: pytest.LogCaptureFixture, knows_it_is_down: bool, level: int,
) -> None:
    """The bus logs a broker outage once (WARNING); the downlinks failing meanwhile are part of it."""
    alice = await store.create_user("a@example.test", "x", "a")
    bob = await store.create_user("b@example.test", "x", "b")
    bus = UndeliverableBus(knows_it_is_down=knows_it_is_down)
    logic = Logic(store, bus, MemorySessions(), TokenCodec("k" * 32), LogicSettings(batch_max_delay_ms=0))
    await logic.start()
    with caplog.at_level(logging.INFO, logger="im.logic.service"):
        await bus.publish([Uplink(alice.id, "c1", bob.id, None, "hello", "g1", 7, time.time())])
        deadline = time.monotonic() + 5
        while not any("downlinks cannot be sent" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the failed downlink was not logged"
            await asyncio.sleep(0.01)
    await logic.close()
    await bus.close()
    assert [r.levelno for r in caplog.records if "downlinks cannot be sent" in r.getMessage()] == [level]
