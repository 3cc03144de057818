"""Presence: who is online (the session map) and when each user was last seen (the store).

Online means at least one connection on any gateway: `Sessions.locate`. `last_seen` is written by
the gateways, as `seen` uplinks, when a user's last connection on one of them closes (or when a
gateway sees a user's sessions lapse, its gateway gone); an earlier moment never replaces a later
one. A user who blocked the one asking is always shown offline with no `last_seen`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from im.backends.base import Sessions, Store
from im.contracts.envelopes import Uplink
from im.contracts.records import Caller, Presence
from im.protocol.errors import BadRequest
from im.protocol.ids import is_id, require_ids

__all__ = ["MAX_WATCHED", "PresenceBook"]

log = logging.getLogger(__name__)

MAX_WATCHED = 500
"""Users one presence question (or one watch set) may name."""


class PresenceBook:
    def __init__(self, store: Store, sessions: Sessions) -> None:
        self._store = store
        self._sessions = sessions

    async def look(self, caller: Caller, user_ids: list[int]) -> list[Presence]:
        if len(user_ids) > MAX_WATCHED:
            raise BadRequest(f"at most {MAX_WATCHED} users at once")
        for user_id in user_ids:
            require_ids(user_id=user_id)
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return []
        blockers = await self._store.blockers(caller.user_id, wanted)
        visible = [user for user in wanted if user not in blockers]
        online = await self._sessions.locate(visible) if visible else {}
        seen = await self._store.last_seen([user for user in visible if user not in online])
        return [Presence(user, False, None, blocked_me=True) if user in blockers
                else Presence(user, user in online, seen.get(user)) for user in wanted]

    async def record(self, uplinks: Iterable[Uplink]) -> None:
        """`seen` uplinks: the users' last moments online. Never raises: a lost one leaves an older
        `last_seen`."""
        seen: dict[int, int] = {}
        for uplink in uplinks:
            if is_id(uplink.sender):
                seen[uplink.sender] = max(seen.get(uplink.sender, 0), int(uplink.accepted_at * 1000))
        if not seen:
            return
        try:
            await self._store.record_last_seen(seen)
        except Exception as exc:  # noqa: BLE001 - best effort
            log.warning("recording when %d users were last seen failed: %r", len(seen), exc)
