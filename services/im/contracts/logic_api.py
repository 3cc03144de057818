"""What the gateway asks of logic: in-process in standalone mode, over gRPC in distributed mode."""

from __future__ import annotations

from typing import Protocol

from im.contracts.records import (
    Caller,
    ConversationCursor,
    ConversationPage,
    EventPage,
    Group,
    GroupInfo,
    InboxPage,
    Presence,
    Profile,
    Session,
    User,
)

__all__ = ["LogicApi"]


class LogicApi(Protocol):
    """Errors are raised as `im.protocol.errors.ImError` subclasses.

    Every call made for a user takes the `Caller` (user id and the token that proves it); only
    `register` and `login` are public. Ids in the arguments are checked with `im.protocol.ids` by
    logic itself: an id out of range is `BadRequest`, never a store error.
    """

    async def register(self, email: str, password: str, nickname: str) -> User: ...

    async def login(self, email: str, password: str, client_address: str) -> Session:
        """`client_address` is the client's IP address as the gateway sees it (failed logins are
        throttled per account and per address); `RateLimited` with `retry_after` once throttled."""

    async def create_group(self, caller: Caller, name: str) -> Group: ...

    async def add_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        """Owner only; adding a member twice is not an error."""

    async def list_members(self, caller: Caller, group_id: int) -> list[int]:
        """The current members, for members only."""

    async def my_groups(self, caller: Caller) -> list[Group]: ...

    async def sync(self, caller: Caller, after: int, limit: int) -> EventPage:
        """At most `limit` inbox events (of every kind, messages in their current state) after `after`,
        and fewer when their encoded size passes logic's byte budget per answer (`more` is then true)."""

    # -- groups: members only see them; the owner changes them ------------------------------------

    async def group_info(self, caller: Caller, group_id: int) -> GroupInfo: ...

    async def rename_group(self, caller: Caller, group_id: int, name: str) -> GroupInfo:
        """Owner only."""

    async def remove_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        """The owner removes `user_id`, or a member removes itself (leaves); `Conflict` for the owner
        leaving while others remain."""

    async def hand_over(self, caller: Caller, group_id: int, user_id: int) -> GroupInfo:
        """Owner only, to a current member."""

    async def group_reads(self, caller: Caller, group_id: int) -> dict[int, int | None]:
        """Every current member's read pointer (a message id, None before any read)."""

    # -- accounts, profiles and blocks --------------------------------------------------------------

    async def me(self, caller: Caller) -> User: ...

    async def set_nickname(self, caller: Caller, nickname: str) -> User: ...

    async def profiles(self, caller: Caller, user_ids: list[int]) -> list[Profile]:
        """The existing users among `user_ids` (at most 200 ids), ascending by id."""

    async def find_user(self, caller: Caller, email: str) -> Profile:
        """The user with exactly this email address (normalised as registration does); `NotFound`."""

    async def block(self, caller: Caller, user_id: int) -> None: ...

    async def unblock(self, caller: Caller, user_id: int) -> None: ...

    async def blocked(self, caller: Caller) -> list[int]: ...

    async def presence(self, caller: Caller, user_ids: list[int]) -> list[Presence]:
        """Each of `user_ids` (at most 500, duplicates once, in the order asked), whether it exists
        or not; one who blocked the caller shows offline with `last_seen` None."""

    # -- conversations ------------------------------------------------------------------------------

    async def conversations(self, caller: Caller, limit: int | None, cursor: ConversationCursor | None,
                            ) -> ConversationPage:
        """Most recent activity first; `limit` None is logic's default, past its largest is its largest."""

    async def history(self, caller: Caller, *, peer: int | None = None, group: int | None = None,
                      before: int | None = None, limit: int | None = None) -> InboxPage:
        """My messages of one conversation (`peer` or `group`), newest first, ids below `before`."""
