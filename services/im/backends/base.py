"""The three interfaces gateway and logic are written against.

`Store` keeps users, groups and messages; `Bus` carries uplinks to logic and downlinks to gateways;
`Sessions` knows which gateways each user is connected to. Standalone mode uses SQLite and in-memory
implementations, distributed mode MySQL, RabbitMQ and Redis; callers never know which they have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from im.contracts.envelopes import Downlink, Uplink
from im.contracts.records import (
    ConversationCursor,
    ConversationPage,
    EventPage,
    Group,
    InboxEvent,
    InboxPage,
    Profile,
    User,
)
from im.protocol.errors import ImError, Unavailable

__all__ = ["Applied", "BatchItem", "Bus", "DownlinkHandler", "Edit", "Outcome", "Read", "Recall", "Refused", "Send",
           "Sessions", "Store", "UplinkHandler", "UserCredentials",
           "bus_reported_down"]


@dataclass(frozen=True, slots=True)
class UserCredentials:
    user: User
    password_hash: str


# -- the batch transaction (Store.commit) -------------------------------------------------------------
# Send and Applied are built once per message: plain slotted dataclasses, never mutated (see SendFrame).

@dataclass(slots=True)
class Send:
    """A message to store: private (`to`, which may be the sender) or to a `group`, exactly one set.
    `ts` is when logic accepted it (unix ms)."""

    sender: int
    cid: str
    content: str
    ts: int
    to: int | None = None
    group: int | None = None


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the content of my message `message_id`; `ts` (unix ms) is checked against the edit window."""

    sender: int
    cid: str
    message_id: int
    content: str
    ts: int


@dataclass(frozen=True, slots=True)
class Recall:
    """Erase my message `message_id` for everyone; `ts` (unix ms) is checked against the recall window."""

    sender: int
    cid: str
    message_id: int
    ts: int


@dataclass(frozen=True, slots=True)
class Read:
    """Move `reader`'s read pointer in the conversation with `peer` or in `group` (one set) to `up_to`."""

    reader: int
    up_to: int
    ts: int
    peer: int | None = None
    group: int | None = None


BatchItem = Send | Edit | Recall | Read


@dataclass(slots=True)
class Applied:
    """An item or group change that took effect, or had already (`duplicate`).

    `event` is what it put in the inboxes, rendered for its actor (the sender, reader, or whoever
    changed the group; `ReadEvent.seen_by` renders a read for its other receiver); `seqs` holds every
    receiver's seq of it, the actor's included. A duplicate carries the original event and only the
    actor's original seq; a read that moved nothing carries the pointer as it is and no seqs.
    """

    event: InboxEvent
    seqs: dict[int, int]
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """An item that was not stored, and why, in words fit for the client: `Forbidden`, `NotFound`, or
    `BadRequest` for an item naming no conversation or two."""

    error: ImError


Outcome = Applied | Refused


class Store(Protocol):
    """Users, groups, blocks and every user's inbox. Ids passed in were checked by the caller
    (`im.protocol.ids`); an id that names nothing is `None` / absent / `NotFound`, never an exception of
    the driver. docs/storage.md has the schema and the transaction rules."""

    async def open(self) -> None:
        """Connect and bring the schema to the latest migration."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot answer now."""

    async def create_user(self, email: str, password_hash: str, nickname: str) -> User:
        """Raise `Conflict` if the email is taken."""

    async def credentials(self, email: str) -> UserCredentials | None: ...

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]: ...

    async def create_group(self, name: str, owner: int) -> Group:
        """The owner becomes the first member."""

    async def group(self, group_id: int) -> Group | None: ...

    async def add_member(self, group_id: int, user_id: int) -> bool:
        """False if the user already was a member. Writes no `joined` event (today's logic; `join_group`
        is the form with events)."""

    async def members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        """Current members of each existing group, ascending; groups that do not exist are absent."""

    async def groups_of(self, user_id: int) -> list[Group]:
        """The groups the user is a member of now."""

    async def inbox(self, user_id: int, after: int, limit: int) -> InboxPage:
        """The messages of `events`, for today's sync (other kinds are skipped; `more` is as for `events`)."""

    # -- the batch transaction ----------------------------------------------------------------------

    async def commit(
        self, batch: Sequence[BatchItem], *, edit_window_ms: int | None, recall_window_ms: int | None,
    ) -> list[Outcome]:
        """Apply a batch in one transaction: one outcome per item, in order; refused items change nothing.

        - `Send`: stored with the next seq of every receiver (sender and peer, or the group's members
          at commit time), the conversation rows of each updated. Refused `not_found` (no such user or
          group), `forbidden` (not a member; the peer blocked the sender).
        - `Edit`, `Recall`: only the sender, within `edit_window_ms` / `recall_window_ms` of the
          message's `ts` (`None`: no limit), else `forbidden`; `not_found` for no such message. The
          event goes to everyone whose inbox has the message. A recall empties the content for good;
          recalling a recalled message answers the original recall; editing one is `forbidden`.
        - `Read`: moves the reader's pointer forward, to at most the conversation's last message,
          and recomputes its unread count; the event goes to the reader and, in a private conversation,
          to the peer unless the peer blocked the reader. A read that moves nothing stores nothing.
        - A `(sender, cid)` already stored (or earlier in the batch) is answered with the original:
          sends among sends, edits and recalls among edits and recalls.
        """

    async def events(self, user_id: int, after: int, limit: int) -> EventPage:
        """Everything in the user's inbox after seq `after` in seq order, messages in their current state."""

    # -- group lifecycle: one transaction each, the change and its events ---------------------------

    async def join_group(self, group_id: int, user_id: int, *, by: int) -> Applied | None:
        """`by` (the owner) adds `user_id`: a `joined` event for every member, the new one included.
        None if already a member; `NotFound` (group, user), `Forbidden` (not the owner)."""

    async def remove_member(self, group_id: int, user_id: int, *, by: int) -> Applied:
        """The owner removes a member (`removed`), or a member removes itself (`left`); the event goes to
        every member and the user who left. `NotFound` (group, not a member), `Forbidden` (not the
        owner), `Conflict` (the owner leaving while others remain)."""

    async def rename_group(self, group_id: int, name: str, *, by: int) -> Applied | None:
        """The owner renames the group: a `group` event for every member. None if the name is unchanged."""

    async def hand_over(self, group_id: int, user_id: int, *, by: int) -> Applied | None:
        """The owner makes member `user_id` the owner: a `group` event for every member. None if
        `user_id` is the owner already; `NotFound` if not a member."""

    async def group_reads(self, group_id: int) -> dict[int, int | None]:
        """Every current member's read pointer in the group (None: nothing read); {} for no group."""

    # -- blocks ---------------------------------------------------------------------------------------

    async def block(self, user_id: int, blocked_id: int) -> bool:
        """False if already blocked; `NotFound` (no such user), `BadRequest` (oneself)."""

    async def unblock(self, user_id: int, blocked_id: int) -> bool:
        """False if it was not blocked."""

    async def blocked(self, user_id: int) -> list[int]:
        """The users `user_id` blocked, ascending."""

    async def blockers(self, user_id: int, among: Iterable[int]) -> set[int]:
        """Those of `among` (at most a few hundred) who blocked `user_id`."""

    # -- presence -------------------------------------------------------------------------------------

    async def record_last_seen(self, seen: Mapping[int, int]) -> None:
        """Each user's last moment online (unix ms); an earlier moment never replaces a later one."""

    async def last_seen(self, user_ids: Iterable[int]) -> dict[int, int]:
        """The users among `user_ids` ever recorded, with their last moment online."""

    # -- profiles -------------------------------------------------------------------------------------

    async def user(self, user_id: int) -> User | None:
        """A user with the email: for that user only."""

    async def profiles(self, user_ids: Iterable[int]) -> list[Profile]:
        """The existing ones among `user_ids`, ascending by id, without email."""

    async def find_user(self, email: str) -> Profile | None:
        """The user with exactly this (stored, lowercased by logic) email."""

    async def set_nickname(self, user_id: int, nickname: str) -> User:
        """`NotFound` if no such user."""

    # -- conversations --------------------------------------------------------------------------------

    async def conversations(self, user_id: int, limit: int, cursor: ConversationCursor | None = None,
                            ) -> ConversationPage:
        """Most recent activity first; `next` continues after this page (None on the last)."""

    async def history(self, user_id: int, *, peer: int | None = None, group: int | None = None,
                      before: int | None = None, limit: int) -> InboxPage:
        """The user's messages of one conversation (`peer` or `group`), newest first, ids below
        `before`, as `(seq, message)`; `more` says whether older ones follow."""

    async def recent_seqs(self, message_ids: Iterable[int], users: Iterable[int], window: int,
                          ) -> dict[int, dict[int, int]]:
        """Each message's seq in the inboxes of `users`, looking only at each user's last `window`
        entries (so it costs a bounded read): message id -> {user: seq}. Used to push a redelivered
        batch's messages once more, moments after they were stored."""


UplinkHandler = Callable[[list[Uplink]], Awaitable[None]]
DownlinkHandler = Callable[[Downlink], Awaitable[None]]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the bus cannot carry messages now."""

    async def publish(self, uplinks: list[Uplink]) -> None:
        """Gateway side: returns once the bus holds the uplinks (publisher confirm where there is one)."""

    async def consume(self, handler: UplinkHandler) -> None:
        """Logic side: call `handler` with uplinks; they count as consumed only once it returns.

        A handler that raises leaves them to be delivered again. Uplinks of one conversation reach
        handlers in publish order.
        """

    async def deliver(self, downlink: Downlink) -> None:
        """Logic side: send a downlink to its gateway (dropped if that gateway is gone)."""

    async def subscribe(self, gateway: str, handler: DownlinkHandler) -> None:
        """Gateway side: receive the downlinks addressed to `gateway`."""


async def bus_reported_down(bus: Bus) -> bool:
    """Whether the bus itself knows it is disconnected: it has logged the outage once already, so a
    publish or delivery failing meanwhile is part of that outage, not news."""
    try:
        await bus.ping()
    except Unavailable:
        return True
    return False


class Sessions(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    def on_reset(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Have `callback` called as soon as entries may have been lost (the server restarted empty,
        or came back after an outage): a gateway re-registers its users there."""

    async def bind(self, user_id: int, gateway: str) -> None: ...

    async def unbind(self, user_id: int, gateway: str) -> None: ...

    async def refresh(self, user_ids: Iterable[int], gateway: str) -> None:
        """Extend the TTL of these users' entries for `gateway` (called periodically by the gateway)."""

    async def locate(self, user_ids: Iterable[int]) -> dict[int, set[str]]:
        """The gateways of each online user, in one round trip; offline users are absent."""

    async def announce(self, user_ids: Iterable[int]) -> None:
        """Tell every gateway (their `on_announce` callbacks) that these users may have come online
        or gone offline: best effort, a gateway also re-checks what it watches now and then."""

    def on_announce(self, callback: Callable[[list[int]], None]) -> None:
        """Call `callback` with the users of every announcement, this process's own included."""
