"""Typing notices: relayed to the online recipients at once, never stored, best effort.

A typing uplink skips the batch writer and the store's transaction: logic checks it against group
membership and the recipient's blocks, looks up where the recipients are connected and sends each
of their gateways a `TypingNotice` in a downlink of its own. Membership and blocks are read through
a short-lived cache (`cache_seconds`), so a conversation someone types in costs the store one read
per period however often it is typed in; a block or a removal from a group takes effect on typing
within that period. The sender's own devices are never told (docs/protocol.md, "typing").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from im.backends.base import Store
from im.contracts.envelopes import Downlink, TypingNotice, Uplink
from im.protocol.ids import is_id

__all__ = ["TypingRelay"]

log = logging.getLogger(__name__)

Locate = Callable[[set[int]], Awaitable[dict[int, set[str]]]]
Deliver = Callable[[Downlink], Awaitable[None]]

K = TypeVar("K")
V = TypeVar("V")


class _Expiring(Generic[K, V]):
    """Values for `seconds` each; at most `max_entries` kept (all dropped when it is reached)."""

    def __init__(self, seconds: float, max_entries: int) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._values: dict[K, tuple[float, V]] = {}

    def get(self, key: K, now: float) -> V | None:
        found = self._values.get(key)
        if found is None or found[0] <= now:
            return None
        return found[1]

    def put(self, key: K, value: V, now: float) -> None:
        if len(self._values) >= self._max_entries:
            self._values.clear()
        self._values[key] = (now + self._seconds, value)


class TypingRelay:
    def __init__(self, store: Store, locate: Locate, deliver: Deliver, *, cache_seconds: float = 2.0,
                 max_cached: int = 100_000) -> None:
        self._store = store
        self._locate = locate
        self._deliver = deliver
        self._members: _Expiring[int, frozenset[int]] = _Expiring(cache_seconds, max_cached)
        self._blocks: _Expiring[int, frozenset[int]] = _Expiring(cache_seconds, max_cached)

    async def relay(self, uplinks: Iterable[Uplink]) -> None:
        """Never raises: a typing notice that cannot be relayed is dropped."""
        try:
            notices = [notice for uplink in uplinks if (notice := await self._notice(uplink)) is not None]
            if not notices:
                return
            locations = await self._locate({user for notice in notices for user in notice.recipients})
            downlinks: dict[str, Downlink] = {}
            for notice in notices:
                by_gateway: defaultdict[str, list[int]] = defaultdict(list)
                for user in notice.recipients:
                    for gateway in locations.get(user, ()):
                        by_gateway[gateway].append(user)
                for gateway, users in by_gateway.items():
                    downlinks.setdefault(gateway, Downlink(gateway)).typing.append(
                        TypingNotice(notice.sender, notice.to, notice.group, users))
            await asyncio.gather(*(self._deliver(downlink) for downlink in downlinks.values()))
        except Exception as exc:  # noqa: BLE001 - typing is best effort
            log.warning("typing notices dropped: %r", exc)

    async def _notice(self, uplink: Uplink) -> TypingNotice | None:
        """The notice with every recipient allowed to see it, or None when nobody is."""
        sender, to, group = uplink.sender, uplink.to, uplink.group
        if not is_id(sender):
            return None
        if group is None:
            if not is_id(to) or to == sender or sender in await self._blocked_by(to):
                return None
            return TypingNotice(sender, to, None, [to])
        if to is not None or not is_id(group):
            return None
        members = await self._members_of(group)
        if sender not in members:
            return None  # a non-member's typing is dropped, as a blocked one is
        recipients = sorted(members - {sender})
        return TypingNotice(sender, None, group, recipients) if recipients else None

    async def _blocked_by(self, user: int) -> frozenset[int]:
        now = time.monotonic()
        blocked = self._blocks.get(user, now)
        if blocked is None:
            blocked = frozenset(await self._store.blocked(user))
            self._blocks.put(user, blocked, now)
        return blocked

    async def _members_of(self, group: int) -> frozenset[int]:
        now = time.monotonic()
        members = self._members.get(group, now)
        if members is None:
            members = frozenset((await self._store.members([group])).get(group, ()))
            self._members.put(group, members, now)
        return members
