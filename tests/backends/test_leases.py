"""`ShardLeases` against the real Redis, driving recording consumers instead of RabbitMQ: replicas share
the shards fairly, hand them over cleanly, take over from a replica that is gone (and end its store
sessions), and a replica that wakes up from a pause stops what it lost before taking any delivery.

Short TTLs keep it fast: a lease lapses after 1.5 s, rounds run every 0.25 s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from im.backends.leases import ShardLeases, ShardRoutes
from tests.support.servers import REDIS_URL

from .conftest import eventually

SHARDS = 6
TTL = 1.5
RENEW = 0.25


@dataclass
class Consumers:
    """What `RabbitMqBus` does for the leases, recorded."""

    running: set[int] = field(default_factory=set)
    events: list[tuple[str, int]] = field(default_factory=list)
    stalled: set[int] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    """Replicas whose RabbitMQ connection is gone, as the presence probe would say."""

    async def start_shard(self, shard: int) -> None:
        self.running.add(shard)
        self.events.append(("start", shard))

    async def stop_shard(self, shard: int, *, drain: bool) -> None:
        self.running.discard(shard)
        self.events.append(("drain" if drain else "abandon", shard))

    def shard_progressing(self, shard: int) -> bool:
        return shard not in self.stalled

    async def replica_present(self, replica: str) -> bool | None:
        return replica not in self.gone


@dataclass
class Store:
    ids: list[int]
    killed: list[int] = field(default_factory=list)

    def session_ids(self) -> list[int]:
        return self.ids

    async def kill_sessions(self, ids: list[int]) -> None:
        self.killed.extend(ids)


Replica = tuple[ShardLeases, Consumers, Store]


@pytest.fixture
async def replicas(redis_prefix: str) -> AsyncIterator[Callable[..., asyncio.Future[Replica]]]:
    made: list[ShardLeases] = []

    async def start(name: str, store_ids: list[int] | None = None) -> Replica:
        store = Store(store_ids or [])
        leases = ShardLeases(REDIS_URL, shards=SHARDS, key_prefix=redis_prefix, replica_id=name,
                             ttl_seconds=TTL, renew_seconds=RENEW, fencing=store)
        consumers = Consumers()
        await leases.start(consumers)
        made.append(leases)
        return leases, consumers, store

    yield start  # type: ignore[misc]
    for leases in made:
        await leases.close()


def shares(*found: Replica) -> list[int]:
    return [len(consumers.running) for _, consumers, _ in found]


def disjoint(*found: Replica) -> bool:
    running = [shard for _, consumers, _ in found for shard in consumers.running]
    return len(running) == len(set(running))


async def test_one_replica_takes_every_shard_at_start(replicas: Callable[..., asyncio.Future[Replica]]) -> None:
    leases, consumers, _ = await replicas("solo")
    assert consumers.running == set(range(SHARDS)), "claimed before start() returns"
    assert leases.owned == frozenset(range(SHARDS)) and all(leases.holds(s) for s in range(SHARDS))


async def test_replicas_joining_get_a_fair_share_handed_over_drained(
    replicas: Callable[..., asyncio.Future[Replica]],
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    assert disjoint(a, b)
    assert Counter(kind for kind, _ in a[1].events) == {"start": 6, "drain": 3}, "given back drained, never abandoned"
    c = await replicas("c")
    await eventually(lambda: shares(a, b, c) == [2, 2, 2], timeout=10)
    assert disjoint(a, b, c)


async def test_shards_given_back_are_left_to_a_slow_replica_short_of_them(
    replicas: Callable[..., asyncio.Future[Replica]],
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    assert b[0]._task is not None
    b[0]._task.cancel()  # b is registered but runs no more rounds: it is slow to take what a gives back
    await eventually(lambda: shares(a) == [3], timeout=10)
    while "b" in a[0]._live:  # until b's registration lapses
        assert Counter(kind for kind, _ in a[1].events)["start"] == 6, "took back what it gave b"
        await asyncio.sleep(RENEW / 2)
    await eventually(lambda: shares(a) == [6], timeout=10)  # b is gone: its share comes back


async def test_a_replica_that_leaves_hands_its_shards_over(replicas: Callable[..., asyncio.Future[Replica]]) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    await b[0].close()  # gives its leases back at once
    started = time.monotonic()
    await eventually(lambda: shares(a) == [6], timeout=10)
    assert time.monotonic() - started < TTL, "taken over without waiting for the leases to lapse"


async def test_a_gone_replica_is_taken_over_and_its_store_sessions_ended(
    replicas: Callable[..., asyncio.Future[Replica]],
) -> None:
    a = await replicas("a", [11])
    b = await replicas("b", [21, 22])
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    assert b[0]._task is not None
    b[0]._task.cancel()  # b hangs: no more rounds
    await eventually(lambda: shares(a) == [6], timeout=10)
    assert a[2].killed == [21, 22], "a ended b's sessions: a transaction b hung in cannot hold locks"


async def test_a_replica_whose_rabbitmq_connection_vanished_is_taken_over_before_its_leases_lapse(
    replicas: Callable[..., asyncio.Future[Replica]],
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    a[1].gone.add("b")  # killed: the broker dropped b's presence queue, its leases still run
    started = time.monotonic()
    await eventually(lambda: shares(a) == [6], timeout=10)
    assert time.monotonic() - started < TTL


async def test_a_stalled_shard_is_not_renewed_and_goes_to_another_replica(
    replicas: Callable[..., asyncio.Future[Replica]],
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    stuck = min(b[1].running)
    b[1].stalled.add(stuck)
    await eventually(lambda: stuck in a[1].running, timeout=10)
    # The stalled consumer is dropped on b's next round, so its messages come again to a.
    await eventually(lambda: ("abandon", stuck) in b[1].events, timeout=10)
    assert disjoint(a, b)


async def test_waking_from_a_pause_it_stops_what_it_lost_before_taking_a_delivery(
    replicas: Callable[..., asyncio.Future[Replica]],
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    b_shards = set(b[1].running)
    assert b[0]._task is not None
    b[0]._task.cancel()
    await eventually(lambda: shares(a) == [6], timeout=10)  # meanwhile a took b's shards over
    # b wakes up: its last round is older than the TTL, so it may not trust what it holds.
    shard = min(b_shards)
    assert not b[0].holds(shard)
    b[0]._task = asyncio.create_task(b[0]._run())
    assert not await b[0].confirm(shard), "asked Redis: the lease is a's now"
    assert b[1].running == set() and all(("abandon", s) in b[1].events for s in b_shards)


async def test_redis_losing_its_data_does_not_stop_anything(
    replicas: Callable[..., asyncio.Future[Replica]], redis_prefix: str,
) -> None:
    a = await replicas("a")
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=redis_prefix + "*")]
        await client.delete(*keys)  # as if Redis restarted empty
        await asyncio.sleep(4 * RENEW)
        assert await client.exists(f"{redis_prefix}lease:0"), "the leases were taken back"
    finally:
        await client.aclose()
    assert a[1].running == set(range(SHARDS)) and [kind for kind, _ in a[1].events] == ["start"] * SHARDS


async def test_gateways_read_each_shards_queue_from_the_table(
    replicas: Callable[..., asyncio.Future[Replica]], redis_prefix: str,
) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await eventually(lambda: shares(a, b) == [3, 3], timeout=10)
    await asyncio.sleep(2 * RENEW)  # the leads are written with the next renewal
    routes = ShardRoutes(REDIS_URL, shards=SHARDS, key_prefix=redis_prefix, refresh_seconds=RENEW)
    await routes.start()
    try:
        for leases, consumers, _ in (a, b):
            assert leases.lead in consumers.running
            assert {routes.wanted(s) for s in consumers.running} == {leases.lead}, "one queue per replica"
    finally:
        await routes.close()
