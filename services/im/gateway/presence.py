"""Presence on one gateway: what each connection watches, and telling it when that changes.

A `presence` frame replaces the connection's watch set and is answered at once with a snapshot
from logic (`LogicApi.presence`: online from the session map, `last_seen` from the store, a user
who blocked the watcher shown offline and left out of its watch set). From then on the hub keeps,
for every user watched here, whether it was last known online, and tells the watchers when that
flips.

What makes it look: announcements (`Sessions.announce`, heard by every gateway) that a user bound
or unbound somewhere, and a re-check of everything watched here every `recheck_seconds` (a dead
gateway announces nothing: its users' sessions lapse after the session TTL; and announcements made
while Redis was away are lost). Either way the users to look at are collected for
`coalesce_seconds` and looked up in one `locate`: a user who disconnects and reconnects within the
window (a gateway drained, its clients moving) flips nothing, and one lookup serves a storm.

Cost: an announcement costs a set lookup per user named in it and nothing for users nobody here
watches; a flip costs one frame per connection watching that user. Nothing scans all users.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import orjson

from im.backends.base import Sessions
from im.contracts.logic_api import LogicApi
from im.contracts.records import Caller, Presence
from im.protocol.errors import ImError, internal_error

__all__ = ["PresenceHub", "Watcher", "encode_presence", "presence_fields"]

log = logging.getLogger(__name__)


class Watcher(Protocol):
    """A connection that watches users: a WebSocket session."""

    @property
    def caller(self) -> Caller: ...

    @property
    def is_open(self) -> bool: ...

    def send(self, data: bytes) -> None: ...

    def send_error(self, error: ImError) -> None: ...


def presence_fields(presence: Presence) -> dict[str, Any]:
    return {"user_id": presence.user_id, "online": presence.online, "last_seen": presence.last_seen}


def encode_presence(users: Iterable[Presence]) -> bytes:
    return orjson.dumps({"type": "presence", "users": [presence_fields(p) for p in users]})


class PresenceHub:
    def __init__(self, api: LogicApi, sessions: Sessions, *, coalesce_seconds: float, recheck_seconds: float,
                 spawn: Callable[[Any], None], on_lapsed: Callable[[list[int]], None]) -> None:
        """`on_lapsed`: users seen offline by a re-check (not announced: their gateway may be dead)."""
        self._api = api
        self._sessions = sessions
        self._coalesce = coalesce_seconds
        self._recheck = recheck_seconds
        self._spawn = spawn
        self._on_lapsed = on_lapsed
        self._watchers: dict[int, set[Watcher]] = {}
        self._watching: dict[Watcher, tuple[int, ...]] = {}
        self._known: dict[int, Presence] = {}
        self._pending: set[int] = set()
        self._rechecking = False
        self._flush_planned = False
        self._announcing: set[int] = set()

    # -- watch sets --------------------------------------------------------------------------------

    async def watch(self, watcher: Watcher, user_ids: list[int]) -> None:
        try:
            snapshot = await self._api.presence(watcher.caller, user_ids)
        except ImError as error:
            watcher.send_error(error)
            return
        except Exception:
            watcher.send_error(internal_error("a presence snapshot failed", log))
            return
        if not watcher.is_open:
            return
        self.unwatch(watcher)
        visible = tuple(p.user_id for p in snapshot if not p.blocked_me)
        if visible:
            self._watching[watcher] = visible
        for presence in snapshot:
            if presence.blocked_me:
                continue
            self._watchers.setdefault(presence.user_id, set()).add(watcher)
            self._known.setdefault(presence.user_id, presence)
        watcher.send(encode_presence(snapshot))

    def unwatch(self, watcher: Watcher) -> None:
        for user in self._watching.pop(watcher, ()):
            watchers = self._watchers.get(user)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[user]
                    self._known.pop(user, None)

    # -- changes -----------------------------------------------------------------------------------

    def changed_here(self, user_id: int) -> None:
        """A user bound or unbound on this gateway (the session map already says so): announce it,
        with the others of the next moment."""
        if not self._announcing:
            asyncio.get_running_loop().call_later(0.05, lambda: self._spawn(self._announce()))
        self._announcing.add(user_id)

    async def _announce(self) -> None:
        users, self._announcing = list(self._announcing), set()
        try:
            await self._sessions.announce(users)
        except Exception as exc:  # noqa: BLE001 - the watchers' re-check finds the change later
            log.warning("announcing the presence of %d users failed: %r", len(users), exc)

    def announced(self, user_ids: list[int]) -> None:
        """From `Sessions.on_announce`: look at those watched here, after the coalescing window."""
        watchers = self._watchers
        wanted = [user for user in user_ids if user in watchers]
        if wanted:
            self._pending.update(wanted)
            self._plan_flush()

    def recheck_soon(self) -> None:
        """Look at every user watched here (after Redis lost its data and the gateways re-bound)."""
        self._rechecking = True
        self._pending.update(self._watchers)
        self._plan_flush()

    def _plan_flush(self) -> None:
        if not self._flush_planned:
            self._flush_planned = True
            asyncio.get_running_loop().call_later(self._coalesce, lambda: self._spawn(self._flush()))

    async def run_rechecks(self) -> None:
        while True:
            await asyncio.sleep(self._recheck)
            if self._watchers:
                self.recheck_soon()

    async def _flush(self) -> None:
        self._flush_planned = False
        users, self._pending = [u for u in self._pending if u in self._watchers], set()
        lapsing, self._rechecking = self._rechecking, False
        if not users:
            return
        try:
            online = await self._sessions.locate(users)
        except Exception as exc:  # noqa: BLE001 - tried again at the next announcement or re-check
            log.warning("presence look-up of %d users failed: %r", len(users), exc)
            return
        now_ms = int(time.time() * 1000)
        changed: list[Presence] = []
        lapsed: list[int] = []
        for user in users:
            known = self._known.get(user)
            if known is None or known.online == (user in online):
                continue
            if user in online:
                presence = Presence(user, True, known.last_seen)
            else:
                presence = Presence(user, False, now_ms)
                lapsed.append(user)
            self._known[user] = presence
            changed.append(presence)
        if not changed:
            return
        if lapsing and lapsed:
            self._on_lapsed(lapsed)
        by_watcher: dict[Watcher, list[Presence]] = {}
        for presence in changed:
            for watcher in self._watchers.get(presence.user_id, ()):
                by_watcher.setdefault(watcher, []).append(presence)
        for watcher, presences in by_watcher.items():
            watcher.send(encode_presence(presences))
