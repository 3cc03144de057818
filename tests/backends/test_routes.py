"""`UplinkRouter`: one queue per owning replica, and a shard moves only once its uplinks are answered."""

from __future__ import annotations

import asyncio

from im.backends.bus.routes import UplinkRouter, shard_of
from im.contracts.envelopes import Uplink

SHARDS = 8


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def uplink(sender: int, to: int, cid: str, conn: int = 1) -> Uplink:
    return Uplink(sender, cid, to, None, "hi", "gw", conn, 0.0)


def on_shard(shard: int, cid: str, conn: int = 1) -> Uplink:
    """An uplink whose conversation hashes to `shard`."""
    for to in range(2, 10_000):
        if shard_of(f"p1:{to}", SHARDS) == shard:
            return uplink(1, to, cid, conn)
    raise AssertionError("no conversation on that shard")


def router(table: dict[int, int], clock: Clock | None = None, **options: float) -> UplinkRouter:
    return UplinkRouter(SHARDS, table.get, clock=clock or Clock(), **options)


def test_without_owners_known_every_shard_goes_to_its_own_queue() -> None:
    uplinks = [on_shard(s, f"c{s}") for s in range(SHARDS)]
    assert router({}).assign(uplinks) == {s: [u] for s, u in enumerate(uplinks)}


def test_every_shard_of_one_replica_goes_to_its_lead_queue() -> None:
    table = {s: 0 if s < 4 else 5 for s in range(SHARDS)}  # two replicas, leads 0 and 5
    uplinks = [on_shard(s, f"c{s}") for s in range(SHARDS)]
    grouped = router(table).assign(uplinks)
    assert sorted(grouped) == [0, 5]
    assert grouped[0] == uplinks[:4] and grouped[5] == uplinks[4:]


def test_a_shard_with_unanswered_uplinks_keeps_its_queue_until_they_are_answered() -> None:
    table = {3: 3}
    routes = router(table)
    first = on_shard(3, "a")
    assert routes.assign([first]) == {3: [first]}
    table[3] = 6  # the shard's owner changed
    second = on_shard(3, "b")
    assert routes.assign([second]) == {3: [second]}, "stays: 'a' is not answered yet"
    routes.answered(first.conn, first.cid)
    assert routes.unanswered(3) == 1
    routes.answered(second.conn, second.cid)
    third = on_shard(3, "c")
    assert routes.assign([third]) == {6: [third]}, "moves once everything before it is answered"
    assert routes.moves == 1


def test_a_shard_that_never_drains_is_held_back_briefly_then_moves() -> None:
    clock = Clock()
    table = {2: 2}
    routes = router(table, clock, switch_after_seconds=2.0, hold_seconds=0.2)
    pending = on_shard(2, "old")
    routes.assign([pending])
    table[2] = 7
    routes.assign([on_shard(2, "x1")])  # wanted to move at t=0, cannot
    assert routes.held_back([on_shard(2, "x2")]) == [], "not held before switch_after_seconds"
    clock.now = 2.5
    assert routes.held_back([on_shard(2, "x2")]) == [2]

    async def answers_come() -> None:
        await asyncio.sleep(0.05)
        routes.answered(1, "old")
        routes.answered(1, "x1")

    async def scenario() -> None:
        waiting = asyncio.create_task(answers_come())
        await routes.hold([2])
        await waiting

    asyncio.run(scenario())
    late = on_shard(2, "x2")
    assert routes.assign([late]) == {7: [late]}


def test_holding_gives_up_after_hold_seconds_and_the_shard_stays_put() -> None:
    clock = Clock()
    table = {4: 4}
    routes = router(table, clock, switch_after_seconds=1.0, hold_seconds=0.05)
    routes.assign([on_shard(4, "stuck")])
    table[4] = 0
    routes.assign([on_shard(4, "y")])
    clock.now = 1.5
    asyncio.run(routes.hold(routes.held_back([on_shard(4, "z")])))
    again = on_shard(4, "z")
    assert routes.assign([again]) == {4: [again]}, "never moves with uplinks unanswered on the old queue"
    assert routes.held_back([again]) == [], "waits switch_after_seconds again before the next hold"


def test_an_answer_that_never_comes_stops_holding_the_shard_after_the_timeout() -> None:
    clock = Clock()
    table = {1: 1}
    routes = router(table, clock, answer_timeout_seconds=60.0)
    routes.assign([on_shard(1, "lost")])  # its downlink will never arrive
    table[1] = 5
    clock.now = 61.0
    late = on_shard(1, "late")
    assert routes.assign([late]) == {5: [late]}


def test_the_same_uplink_sent_again_counts_once() -> None:
    routes = router({0: 0})
    resent = on_shard(0, "r")
    routes.assign([resent])
    routes.assign([resent])
    assert routes.unanswered(0) == 1
    routes.answered(resent.conn, resent.cid)
    routes.answered(resent.conn, resent.cid)  # its second ack
    assert routes.unanswered(0) == 0
