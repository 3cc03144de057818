"""Which uplink queue a gateway publishes each shard to, and when a shard may move (no I/O here).

Uplinks are sharded by conversation (`shard_of`), and every shard queue has one consumer at a time.
To send fewer, fuller AMQP messages, a gateway publishes the uplinks of every shard one logic replica
owns to a single queue, that replica's *lead* queue (one of its own shard queues): one AMQP message per
replica per publish round, whatever the shard count (docs/architecture.md, "Uplink routing").

A shard's route changes when its owner or the owner's lead changes. Moving it while uplinks this
gateway published on the old route are unanswered could let the new queue's consumer store a later
message of a conversation before the old one stores an earlier one. So a route moves only once every
uplink of that shard published on the old route has been answered (acked or refused: logic answers
after it committed). Until then the shard stays on its old route, which is always safe: the old queue
keeps being consumed (by its owner, or by whoever took its lease over). A shard that never drains
(a sender that always has messages in flight) is held back for at most `hold_seconds` once it has
waited `switch_after_seconds`, which is enough for a consumer that is alive to answer.

Answers that never come (a downlink lost with a gateway's queue) are forgotten after
`answer_timeout_seconds`, so a lost answer can delay a move, never block it for good.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from im.contracts.envelopes import Uplink

__all__ = ["UplinkRouter", "WantedRoute", "shard_of"]


def shard_of(conversation: str, shards: int) -> int:
    """Stable across processes and Python versions (unlike `hash`)."""
    return zlib.crc32(conversation.encode()) % shards


WantedRoute = Callable[[int], "int | None"]
"""The queue a shard should use now (its owner's lead queue), or None when nobody is known to own it."""


@dataclass(slots=True)
class _Shard:
    route: int
    unanswered: int = 0
    waiting_since: float | None = None
    """When a move to another route was first wanted and could not happen yet."""
    drained: asyncio.Event = field(default_factory=asyncio.Event)


class UplinkRouter:
    def __init__(
        self, shards: int, wanted: WantedRoute, *, switch_after_seconds: float = 2.0,
        hold_seconds: float = 0.5, answer_timeout_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        :param shards: uplink shards, the same in every process.
        :param wanted: the route each shard should move to (see `WantedRoute`).
        :param switch_after_seconds: how long a shard keeps its old route while it has unanswered
            uplinks before new ones are held back until it drains.
        :param hold_seconds: the longest a publish round waits for a shard to drain.
        :param answer_timeout_seconds: an uplink unanswered for this long no longer holds its shard.
        """
        self.shards = shards
        self._wanted = wanted
        self._switch_after = switch_after_seconds
        self._hold = hold_seconds
        self._answer_timeout = answer_timeout_seconds
        self._clock = clock
        self._shards = [_Shard(route=s) for s in range(shards)]
        self._unanswered: dict[tuple[int, str], tuple[int, float]] = {}
        """(connection, cid) of every uplink published and not answered yet -> (shard, when)."""
        self._next_sweep = clock() + answer_timeout_seconds
        self.moves = 0
        """Routes moved so far (for tests and metrics)."""

    def route(self, shard: int) -> int:
        return self._shards[shard].route

    def unanswered(self, shard: int) -> int:
        return self._shards[shard].unanswered

    # -- publishing ---------------------------------------------------------------------------------

    def held_back(self, uplinks: Iterable[Uplink]) -> list[int]:
        """Shards of these uplinks that waited `switch_after_seconds` to move and still have not drained."""
        if not any(state.waiting_since is not None for state in self._shards):
            return []  # the usual case, checked without hashing a conversation
        now = self._clock()
        found: list[int] = []
        for shard in {shard_of(u.conversation, self.shards) for u in uplinks}:
            state = self._shards[shard]
            if (state.unanswered and state.waiting_since is not None
                    and now - state.waiting_since >= self._switch_after and self._move_wanted(shard)):
                found.append(shard)
        return found

    async def hold(self, shards: list[int]) -> None:
        """Wait up to `hold_seconds` for these shards to drain; the ones that did not wait again later."""
        waits = [self._shards[s].drained.wait() for s in shards if self._shards[s].unanswered]
        if waits:
            try:
                async with asyncio.timeout(self._hold):
                    await asyncio.gather(*waits)
            except TimeoutError:
                pass
        now = self._clock()
        for shard in shards:
            if self._shards[shard].unanswered:
                self._shards[shard].waiting_since = now

    def assign(self, uplinks: Iterable[Uplink]) -> dict[int, list[Uplink]]:
        """Group uplinks by the queue each goes to, moving drained shards, and count them unanswered."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        by_queue: dict[int, list[Uplink]] = {}
        for uplink in uplinks:
            shard = shard_of(uplink.conversation, self.shards)
            state = self._shards[shard]
            wanted = self._wanted(shard)
            if wanted is not None and wanted != state.route:
                if state.unanswered == 0:
                    state.route = wanted
                    state.waiting_since = None
                    self.moves += 1
                elif state.waiting_since is None:
                    state.waiting_since = now
            else:
                state.waiting_since = None
            by_queue.setdefault(state.route, []).append(uplink)
            key = (uplink.conn, uplink.cid)
            if key not in self._unanswered:
                state.unanswered += 1
                state.drained.clear()
            self._unanswered[key] = (shard, now)
        return by_queue

    # -- answers ------------------------------------------------------------------------------------

    def answered(self, conn: int, cid: str) -> None:
        """An ack or a refusal for this uplink came back: it no longer holds its shard's route."""
        found = self._unanswered.pop((conn, cid), None)
        if found is not None:
            self._release(found[0])

    def _release(self, shard: int) -> None:
        state = self._shards[shard]
        state.unanswered -= 1
        if state.unanswered == 0:
            state.drained.set()

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._answer_timeout / 2
        expired = [key for key, (_, since) in self._unanswered.items() if now - since > self._answer_timeout]
        for key in expired:
            shard, _ = self._unanswered.pop(key)
            self._release(shard)

    def _move_wanted(self, shard: int) -> bool:
        wanted = self._wanted(shard)
        return wanted is not None and wanted != self._shards[shard].route
