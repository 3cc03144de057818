"""The `Bus` contract of `backends/base.py`, run against the in-memory bus and RabbitMQ alike.

- uplinks count as consumed only once the handler returns: a handler that raises (even after a while)
  gets them again, and uplinks whose handler returned are not delivered again;
- uplinks of one conversation reach handlers in publish order (first handlings, when a failure made
  some come again).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest

from im.backends.base import Bus
from im.backends.bus.memory import MemoryBus
from im.backends.bus.rabbitmq import RabbitMqBus
from im.contracts.envelopes import Uplink

from .conftest import eventually

SHARDS = 4


class Buses:
    """The gateway's side and logic's side of one bus; `restart_logic()` is a new consumer process."""

    def __init__(self, make: Callable[[], Awaitable[Bus]], shared: bool) -> None:
        self._make = make
        self._shared = shared
        self.made: list[Bus] = []

    async def _new(self) -> Bus:
        bus = await self._make()
        self.made.append(bus)
        return bus

    async def start(self) -> tuple[Bus, Bus]:
        gateway = await self._new()
        return gateway, gateway if self._shared else await self._new()

    async def restart_logic(self, logic: Bus) -> Bus:
        """For RabbitMQ, a fresh consumer after the old one closed; in one process there is only one."""
        if self._shared:
            return logic
        await logic.close()
        return await self._new()


@pytest.fixture(params=["memory", "rabbitmq"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[Buses]:
    if request.param == "memory":
        made = Buses(lambda: _started(MemoryBus(redeliver_delay=0.05)), shared=True)
    else:
        amqp_url: str = request.getfixturevalue("amqp_url")
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            for shard in range(SHARDS):
                await channel.queue_delete(f"im.uplink.{shard}")
        made = Buses(lambda: _started(RabbitMqBus(amqp_url, shards=SHARDS, retry_delay=0.05, close_timeout=2)),
                     shared=False)
    yield made
    for bus in made.made:
        await bus.close()


async def _started(bus: Bus) -> Bus:
    await bus.start()
    return bus


def uplink(sender: int, to: int, cid: str) -> Uplink:
    return Uplink(sender=sender, cid=cid, to=to, group=None, content=f"m {cid}", gateway="gw", conn=1,
                  accepted_at=1.0)


async def test_uplinks_whose_handler_failed_are_delivered_again(buses: Buses) -> None:
    gateway, logic = await buses.start()
    started: list[str] = []
    handled: list[str] = []
    failures = {"3": 2, "7": 1}

    async def handler(uplinks: list[Uplink]) -> None:
        started.extend(u.cid for u in uplinks)
        await asyncio.sleep(0.01)
        for u in uplinks:
            if failures.get(u.cid, 0) > 0:
                failures[u.cid] -= 1
                raise RuntimeError("the store is down")
        handled.extend(u.cid for u in uplinks)

    await logic.consume(handler)
    for i in range(10):
        await gateway.publish([uplink(1, 2, str(i))])
    await eventually(lambda: set(handled) == {str(i) for i in range(10)}, timeout=20)
    assert failures == {"3": 0, "7": 0}
    assert started.count("3") >= 3 and started.count("7") >= 2
    assert list(dict.fromkeys(started)) == [str(i) for i in range(10)]


async def test_a_handler_that_fails_after_a_while_still_gets_its_uplinks_again(buses: Buses) -> None:
    gateway, logic = await buses.start()
    attempts: list[list[str]] = []

    async def handler(uplinks: list[Uplink]) -> None:
        attempts.append([u.cid for u in uplinks])
        if len(attempts) == 1:
            await asyncio.sleep(0.5)  # taken, not yet committed
            raise RuntimeError("commit failed")

    await logic.consume(handler)
    await gateway.publish([uplink(1, 2, "a"), uplink(1, 2, "b")])
    await eventually(lambda: len(attempts) >= 2, timeout=20)
    assert attempts[0] == attempts[1] == ["a", "b"]


async def test_uplinks_whose_handler_returned_are_not_delivered_again(buses: Buses) -> None:
    gateway, logic = await buses.start()
    handled: list[str] = []

    async def handler(uplinks: list[Uplink]) -> None:
        handled.extend(u.cid for u in uplinks)

    await logic.consume(handler)
    await gateway.publish([uplink(1, 2, f"c{i}") for i in range(20)])
    await eventually(lambda: len(handled) == 20, timeout=20)
    restarted = await buses.restart_logic(logic)
    if restarted is not logic:
        await restarted.consume(handler)
    await asyncio.sleep(1.0)
    assert handled == [f"c{i}" for i in range(20)]


async def test_uplinks_of_a_conversation_reach_handlers_in_publish_order(buses: Buses) -> None:
    gateway, logic = await buses.start()
    calls: list[Uplink] = []
    rng = random.Random(7)

    async def handler(uplinks: list[Uplink]) -> None:
        calls.extend(uplinks)
        await asyncio.sleep(rng.random() * 0.01)  # several calls in flight, finishing out of order

    await logic.consume(handler)
    published: list[Uplink] = []
    for i in range(100):
        batch = [uplink(rng.randrange(1, 6), rng.randrange(6, 9), f"{i}.{j}") for j in range(rng.randrange(1, 4))]
        published.extend(batch)
        await gateway.publish(batch)
    await eventually(lambda: len(calls) >= len(published), timeout=20)
    for conversation in {u.conversation for u in published}:
        assert [u.cid for u in calls if u.conversation == conversation] == \
            [u.cid for u in published if u.conversation == conversation]
