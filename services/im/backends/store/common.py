"""The part of `Store` both stores implement the same way, on top of two primitives each provides:
`_query` (one read with a query of rows.py) and `_change_group` (one group-change transaction)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from im.backends.base import Applied, BatchItem, Outcome
from im.backends.store import plan as decide
from im.backends.store.plan import GroupChange
from im.backends.store.rows import (
    CONVERSATIONS_SQL,
    EVENTS_SQL,
    GROUP,
    GROUP_READS_SQL,
    HISTORY_SQL,
    NO_CURSOR,
    PRIVATE,
    conversation_from_row,
    fits,
    inbox_entry,
    message_from_row,
)
from im.contracts.records import ConversationCursor, ConversationPage, EventPage, Group, InboxPage, Message
from im.protocol.ids import MAX_ID

__all__ = ["GroupDecision", "MAX_PAGE", "SharedStore", "marks", "valid_ids"]

MAX_PAGE = 10_000
"""Rows one read returns at most, whatever the caller asks (logic's own limits are far lower)."""

GroupDecision = Callable[[Group, list[int]], GroupChange | None]
"""Given the group (locked) and its current members: the change to make, None for none, or raise."""


def valid_ids(values: Iterable[int]) -> list[int]:
    """The distinct ids among `values` that can name a row, ascending."""
    return sorted({v for v in values if fits(v)})


class SharedStore(ABC):
    @abstractmethod
    async def _query(self, sql: str, args: Sequence[int]) -> list[Sequence[Any]]:
        """Run one read query of rows.py (`?` placeholders) and return its rows."""

    @abstractmethod
    async def _change_group(self, group_id: int, decision: GroupDecision) -> Applied | None:
        """One transaction: lock the group (`NotFound` if none), decide, write the change and its event."""

    @abstractmethod
    async def commit(self, batch: Sequence[BatchItem], *, edit_window_ms: int | None, recall_window_ms: int | None,
                     ) -> list[Outcome]: ...

    async def inbox(self, user_id: int, after: int, limit: int) -> InboxPage:
        page = await self.events(user_id, after, limit)
        return InboxPage([(seq, e) for seq, e in page.entries if isinstance(e, Message)], page.more)

    # -- group changes ------------------------------------------------------------------------------

    async def join_group(self, group_id: int, user_id: int, *, by: int) -> Applied | None:
        return await self._change_group(group_id, lambda g, members: decide.join(g, members, user_id, by))

    async def remove_member(self, group_id: int, user_id: int, *, by: int) -> Applied:
        applied = await self._change_group(group_id, lambda g, members: decide.removal(g, members, user_id, by))
        assert applied is not None
        return applied

    async def rename_group(self, group_id: int, name: str, *, by: int) -> Applied | None:
        return await self._change_group(group_id, lambda g, members: decide.rename(g, members, name, by))

    async def hand_over(self, group_id: int, user_id: int, *, by: int) -> Applied | None:
        return await self._change_group(group_id, lambda g, members: decide.hand_over(g, members, user_id, by))

    # -- reads --------------------------------------------------------------------------------------

    async def events(self, user_id: int, after: int, limit: int) -> EventPage:
        if limit <= 0 or not (fits(user_id) and fits(after)):
            return EventPage([], False)
        limit = min(limit, MAX_PAGE)
        rows = await self._query(EVENTS_SQL, (user_id, after, limit + 1))
        return EventPage([inbox_entry(row, user_id) for row in rows[:limit]], more=len(rows) > limit)

    async def conversations(self, user_id: int, limit: int, cursor: ConversationCursor | None = None,
                            ) -> ConversationPage:
        after = cursor or NO_CURSOR
        if limit <= 0 or not all(fits(v) for v in (user_id, after.updated_at, after.kind, after.id)):
            return ConversationPage([], None)
        limit = min(limit, MAX_PAGE)
        rows = await self._query(CONVERSATIONS_SQL, (
            user_id, after.updated_at, after.updated_at, after.kind, after.kind, after.id, limit + 1))
        entries = [conversation_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return ConversationPage([c for c, _ in entries], entries[-1][1] if more else None)

    async def history(self, user_id: int, *, peer: int | None = None, group: int | None = None,
                      before: int | None = None, limit: int) -> InboxPage:
        conv_type, conv_id = (PRIVATE, peer) if peer is not None else (GROUP, group)
        below = MAX_ID if before is None else before
        if conv_id is None or limit <= 0 or not all(fits(v) for v in (user_id, conv_id, below)):
            return InboxPage([], False)
        limit = min(limit, MAX_PAGE)
        rows = await self._query(HISTORY_SQL, (user_id, conv_type, conv_id, below, limit + 1))
        return InboxPage([(int(row[0]), message_from_row(row[1:])) for row in rows[:limit]], more=len(rows) > limit)

    async def recent_seqs(self, message_ids: Iterable[int], users: Iterable[int], window: int,
                          ) -> dict[int, dict[int, int]]:
        ids, wanted = valid_ids(message_ids), valid_ids(users)
        if not ids or not wanted or window < 1:
            return {}
        # A range of the inbox primary key (user_id, seq) per user, bounded by the window whatever
        # the inbox size.
        sql = ("SELECT i.message_id, i.user_id, i.seq FROM inbox i JOIN inbox_counters c ON c.user_id = i.user_id "
               f"WHERE i.user_id IN ({marks(wanted)}) AND i.seq > c.last_seq - ? AND i.message_id IN ({marks(ids)})")
        found: dict[int, dict[int, int]] = {}
        for message_id, user_id, seq in await self._query(sql, (*wanted, window, *ids)):
            found.setdefault(int(message_id), {})[int(user_id)] = int(seq)
        return found

    async def last_seen(self, user_ids: Iterable[int]) -> dict[int, int]:
        ids = valid_ids(user_ids)
        if not ids:
            return {}
        rows = await self._query(f"SELECT user_id, seen_at FROM last_seen WHERE user_id IN ({marks(ids)})", ids)
        return {int(user): int(seen_at) for user, seen_at in rows}

    async def blockers(self, user_id: int, among: Iterable[int]) -> set[int]:
        ids = valid_ids(among)
        if not ids or not fits(user_id):
            return set()
        rows = await self._query(
            f"SELECT user_id FROM blocks WHERE blocked_id = ? AND user_id IN ({marks(ids)})", (user_id, *ids))
        return {int(row[0]) for row in rows}

    async def group_reads(self, group_id: int) -> dict[int, int | None]:
        if not fits(group_id):
            return {}
        rows = await self._query(GROUP_READS_SQL, (group_id,))
        return {int(user): None if up_to is None else int(up_to) for user, up_to in rows}


def marks(values: Sequence[object]) -> str:
    """`?` placeholders for an IN list of these values."""
    return ",".join("?" * len(values))
