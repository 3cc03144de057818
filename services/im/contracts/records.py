"""The domain records that cross the gateway / logic / backend boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = ["Caller", "Conversation", "ConversationCursor", "ConversationPage", "EditEvent", "EventPage", "Group",
           "GroupEvent", "GroupInfo", "InboxEvent", "InboxPage", "MemberAction", "MemberEvent", "Message", "Presence",
           "Profile", "ReadEvent", "RecallEvent", "Session", "User"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a call is made for, as a verified token says: logic takes the acting user from here,
    never from a request field. `token` is that token, so a call to another process can prove it."""

    user_id: int
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    nickname: str


@dataclass(frozen=True, slots=True)
class Session:
    """A login: the bearer token and when it stops being accepted (unix seconds)."""

    token: str
    user_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    owner: int


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A group as its members see it: `Group` and how many members it has now."""

    id: int
    name: str
    owner: int
    member_count: int


@dataclass(slots=True)
class Message:
    """A stored message in its current state. Exactly one of `to` (private) and `group` is set; `ts`
    is unix ms. `edited_ts` is when it was last edited; a recalled message has `content` "" for good.
    Plain, not frozen: one is built per message (see `im.protocol.frames.SendFrame`); never mutated."""

    id: int
    sender: int
    to: int | None
    group: int | None
    content: str
    cid: str
    ts: int
    edited_ts: int | None = None
    recalled: bool = False


@dataclass(frozen=True, slots=True)
class InboxPage:
    """Part of one user's inbox: `(seq, message)` oldest first, and whether more follow."""

    entries: list[tuple[int, Message]]
    more: bool


# -- inbox events besides messages (docs/storage.md has how they are stored) ------------------------

@dataclass(frozen=True, slots=True)
class EditEvent:
    """Message `message_id` was edited at `ts`; `content` is the message's current content (so an
    edit later recalled shows "")."""

    message_id: int
    sender: int
    to: int | None
    group: int | None
    content: str
    ts: int


@dataclass(frozen=True, slots=True)
class RecallEvent:
    message_id: int
    sender: int
    to: int | None
    group: int | None
    ts: int


@dataclass(frozen=True, slots=True)
class ReadEvent:
    """`by` read up to message `up_to` in a conversation named from the receiving user's side:
    `peer` (private) or `group`. The store renders it for the reader; `seen_by` renders it for the
    other receiver of a private read."""

    by: int
    peer: int | None
    group: int | None
    up_to: int
    ts: int

    def seen_by(self, user: int) -> ReadEvent:
        if self.group is not None or user == self.by:
            return self
        return replace(self, peer=self.by)


MemberAction = Literal["joined", "left", "removed"]


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """`user` joined, left or was removed from `group`; `by` is who did it (the user itself for `left`)."""

    group: int
    user: int
    action: MemberAction
    by: int
    ts: int


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """The group was renamed or handed over: its `name` and `owner` after the change, made by `by`."""

    group: int
    name: str
    owner: int
    by: int
    ts: int


InboxEvent = Message | EditEvent | RecallEvent | ReadEvent | MemberEvent | GroupEvent


@dataclass(frozen=True, slots=True)
class EventPage:
    """Part of one user's inbox: `(seq, event)` in seq order, and whether more follow."""

    entries: list[tuple[int, InboxEvent]]
    more: bool


@dataclass(frozen=True, slots=True)
class Profile:
    """What any user may know of another: never the email."""

    id: int
    nickname: str


@dataclass(frozen=True, slots=True)
class Presence:
    """Whether a user is online (a connection on any gateway) and when it was last seen (unix ms,
    None if never recorded). `blocked_me`: the user blocked the one asking, who is shown it offline
    with no `last_seen`, and who must not be told its changes either."""

    user_id: int
    online: bool
    last_seen: int | None
    blocked_me: bool = False


@dataclass(frozen=True, slots=True)
class ConversationCursor:
    """Where a conversation list page ended (the store's sort key of its last row). Opaque to clients:
    whoever puts it on the wire encodes it."""

    updated_at: int
    kind: int
    id: int


@dataclass(frozen=True, slots=True)
class Conversation:
    """One user's view of a conversation: with `peer` (private) or in `group`.

    `last` is the latest message of it in that user's inbox as `(seq, message)`, `unread` the messages
    from others after `read_up_to`; `peer_read_up_to` is the peer's pointer (private only, None if the
    user blocked the peer); `updated_ts` is the last activity (unix ms).
    """

    peer: int | None
    group: int | None
    last: tuple[int, Message] | None
    unread: int
    read_up_to: int | None
    peer_read_up_to: int | None
    updated_ts: int


@dataclass(frozen=True, slots=True)
class ConversationPage:
    entries: list[Conversation]
    next: ConversationCursor | None
