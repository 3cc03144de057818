"""My conversations, most recent activity first, and the messages of one of them, newest first.

Both read the caller's own inbox only, so they show what reached the caller and nothing else. A group's
history is for those who were ever in it: a current member, or a former one, who keeps what arrived
while a member (nothing after leaving or removal reaches the inbox). Anyone else is `Forbidden`,
found as "not a member now, and no message of the group in my inbox".
"""

from __future__ import annotations

from im.backends.base import Store
from im.contracts.records import Caller, ConversationCursor, ConversationPage, InboxPage
from im.protocol.errors import BadRequest, Forbidden, NotFound
from im.protocol.ids import MAX_ID, is_id, require_ids

__all__ = ["Conversations"]

CONVERSATION_KINDS = (1, 2)
"""`ConversationCursor.kind`: private, group (the store's `conv_type`)."""


class Conversations:
    """Page sizes: `limit` None is the default; past the largest a page is the largest (never an error).

    default_page / max_page: conversations per page.
    default_history / max_history: messages per history page.
    """

    def __init__(self, store: Store, *, default_page: int = 50, max_page: int = 100,
                 default_history: int = 50, max_history: int = 500) -> None:
        self._store = store
        self._default_page = default_page
        self._max_page = max_page
        self._default_history = default_history
        self._max_history = max_history

    async def page(self, caller: Caller, limit: int | None, cursor: ConversationCursor | None) -> ConversationPage:
        if cursor is not None and not _is_cursor(cursor):
            raise BadRequest("'cursor' is not one this server gave out")
        size = _page_size(limit, self._default_page, self._max_page)
        return await self._store.conversations(caller.user_id, size, cursor)

    async def history(self, caller: Caller, *, peer: int | None = None, group: int | None = None,
                      before: int | None = None, limit: int | None = None) -> InboxPage:
        """Exactly one of `peer` and `group`; messages with ids below `before`, newest first."""
        if (peer is None) == (group is None):
            raise BadRequest("name one conversation: 'peer' or 'group'")
        require_ids(**({"peer": peer} if peer is not None else {"group": group}))
        if before is not None:
            require_ids(before=before)
        size = _page_size(limit, self._default_history, self._max_history)
        if peer is not None and not await self._store.existing_users([peer]):
            raise NotFound(f"no user {peer}")
        page = await self._store.history(caller.user_id, peer=peer, group=group, before=before, limit=size)
        if group is not None and not page.entries:
            await self._check_ever_a_member(caller, group)
        return page

    async def _check_ever_a_member(self, caller: Caller, group_id: int) -> None:
        """An empty page: fine for a member (or a former one paging past the oldest), else refused."""
        if await self._store.group(group_id) is None:
            raise NotFound(f"no group {group_id}")
        if caller.user_id in (await self._store.members([group_id])).get(group_id, []):
            return
        if not (await self._store.history(caller.user_id, group=group_id, limit=1)).entries:
            raise Forbidden(f"you were never in group {group_id}")


def _page_size(limit: int | None, default: int, largest: int) -> int:
    if limit is None:
        return default
    if type(limit) is not int or limit < 1:
        raise BadRequest("'limit' must be a positive integer")
    return min(limit, largest)


def _is_cursor(cursor: ConversationCursor) -> bool:
    return 0 <= cursor.updated_at <= MAX_ID and cursor.kind in CONVERSATION_KINDS and is_id(cursor.id)
