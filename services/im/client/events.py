"""What a `ChatClient` hands to the application: typed events, one per thing that happened.

Every entry of my inbox (a `seq`) reaches the application once: as `Received` (a message), as
`Changed` (an edit, a recall, a read, a member or group change: `Edited`, `Recalled`, `ReadMoved`,
`MemberChanged`, `GroupChanged`), or as `InboxEvent` (an entry of a kind this SDK does not know yet).
The ephemeral frames, without a seq, arrive as `TypingNotice` and `PresenceUpdate`; frame types the SDK
does not know arrive as `UnknownFrame`. Nothing unknown is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from im.protocol.ids import is_id

__all__ = [
    "Connected",
    "Disconnected",
    "Acked",
    "Change",
    "Changed",
    "Edited",
    "Event",
    "FrameTrace",
    "GroupChanged",
    "InboxEvent",
    "MemberChanged",
    "Message",
    "Presence",
    "PresenceUpdate",
    "ReadMoved",
    "Recalled",
    "Received",
    "ReconnectRequested",
    "SendFailed",
    "ServerError",
    "SessionEnded",
    "Synced",
    "TypingNotice",
    "UnknownFrame",
]

FrameTrace = Callable[[Literal["in", "out"], dict[str, Any]], None]
"""Called with every frame sent ("out") and received ("in"), parsed; for logging and tests."""


@dataclass(frozen=True, slots=True)
class Message:
    """A message in my inbox. Exactly one of `to` (private) and `group` is set; `ts` is unix ms."""

    id: int
    seq: int
    sender: int
    to: int | None
    group: int | None
    content: str
    cid: str | None
    ts: int
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The frame as received, with any fields newer than this SDK."""
    edited_ts: int | None = None
    """When it was last edited (unix ms), in a sync of a message edited since."""
    recalled: bool = False
    """Recalled by its sender: `content` is empty for good."""

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> Message | None:
        """The message of a `msg` frame or sync entry; None when a required field is missing or wrong."""
        fields = frame.get("id"), frame.get("seq"), frame.get("from"), frame.get("content"), frame.get("ts")
        message_id, seq, sender, content, ts = fields
        to, group, cid = frame.get("to"), frame.get("group"), frame.get("cid")
        edited_ts, recalled = frame.get("edited_ts"), frame.get("recalled", False)
        if not (is_id(message_id) and is_id(seq) and is_id(sender) and isinstance(content, str)
                and isinstance(ts, int) and (to is None or is_id(to)) and (group is None or is_id(group))
                and (cid is None or isinstance(cid, str))
                and (edited_ts is None or isinstance(edited_ts, int)) and isinstance(recalled, bool)):
            return None
        return cls(message_id, seq, sender, to, group, content, cid, ts, dict(frame), edited_ts, recalled)

    def peer(self, me: int) -> int | None:
        """The other user of a private conversation, from my side (None for a group message)."""
        if self.group is not None:
            return None
        return self.to if self.sender == me else self.sender


@dataclass(frozen=True, slots=True)
class Connected:
    """The WebSocket is open; a `sync` is on its way."""


@dataclass(frozen=True, slots=True)
class Synced:
    """Everything in my inbox up to `up_to` has been handed over."""

    up_to: int


@dataclass(frozen=True, slots=True)
class Received:
    """A message of my inbox, once per `seq`: pushed live, returned by a sync, or my own send acked."""

    message: Message
    source: Literal["push", "sync", "ack"]

    @property
    def seq(self) -> int:
        return self.message.seq


@dataclass(frozen=True, slots=True)
class Edited:
    """Message `id` has new `content`. In my own edit's ack (`Changed.source` "ack") `to` and `group`
    are None: the ack names only the message."""

    seq: int
    id: int
    sender: int
    to: int | None
    group: int | None
    content: str
    ts: int


@dataclass(frozen=True, slots=True)
class Recalled:
    """Message `id` was recalled by its sender; as for `Edited`, my own recall's ack names no conversation."""

    seq: int
    id: int
    sender: int
    to: int | None
    group: int | None
    ts: int


@dataclass(frozen=True, slots=True)
class ReadMoved:
    """`by` has read up to message `up_to` of the conversation with `peer` (from my side) or of `group`."""

    seq: int
    by: int
    peer: int | None
    group: int | None
    up_to: int
    ts: int


@dataclass(frozen=True, slots=True)
class MemberChanged:
    """`user` joined, left or was removed from `group` (`by` whom)."""

    seq: int
    group: int
    user: int
    action: Literal["joined", "left", "removed"]
    by: int
    ts: int


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """`group` was renamed or handed over: its `name` and `owner` now."""

    seq: int
    group: int
    name: str
    owner: int
    by: int
    ts: int


Change = Edited | Recalled | ReadMoved | MemberChanged | GroupChanged


def change_from_frame(frame: Mapping[str, Any]) -> Change | None:
    """The inbox event of a known kind other than `msg`; None when a field is missing or wrong."""
    kind, seq, ts = frame.get("type"), frame.get("seq"), frame.get("ts")
    if not (is_id(seq) and isinstance(ts, int)):
        return None
    get = frame.get
    if kind in ("edit", "recall"):
        message_id, sender, to, group = get("id"), get("from"), get("to"), get("group")
        if not (is_id(message_id) and is_id(sender) and _conversation(to, group)):
            return None
        if kind == "recall":
            return Recalled(seq, message_id, sender, to, group, ts)
        content = get("content")
        return Edited(seq, message_id, sender, to, group, content, ts) if isinstance(content, str) else None
    if kind == "read":
        by, peer, group, up_to = get("by"), get("peer"), get("group"), get("up_to")
        if not (is_id(by) and is_id(up_to) and _conversation(peer, group)):
            return None
        return ReadMoved(seq, by, peer, group, up_to, ts)
    if kind == "member":
        group, user, action, by = get("group"), get("user"), get("action"), get("by")
        if not (is_id(group) and is_id(user) and is_id(by) and action in ("joined", "left", "removed")):
            return None
        return MemberChanged(seq, group, user, action, by, ts)
    if kind == "group":
        group, name, owner, by = get("group"), get("name"), get("owner"), get("by")
        if not (is_id(group) and isinstance(name, str) and is_id(owner) and is_id(by)):
            return None
        return GroupChanged(seq, group, name, owner, by, ts)
    return None


def _conversation(peer: object, group: object) -> bool:
    """Exactly one of a private peer and a group, each an id."""
    return (peer is None) != (group is None) and (peer is None or is_id(peer)) and (group is None or is_id(group))


@dataclass(frozen=True, slots=True)
class Changed:
    """An edit, recall, read, member or group change of my inbox, once per `seq`."""

    change: Change
    source: Literal["push", "sync", "ack"]

    @property
    def seq(self) -> int:
        return self.change.seq


@dataclass(frozen=True, slots=True)
class Acked:
    """What an edit or recall of mine became: the message `id`, and the event's `seq` in my inbox."""

    cid: str
    id: int
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """An inbox entry of a type this SDK does not know (it still takes its `seq`)."""

    type: str
    seq: int
    frame: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TypingNotice:
    """`sender` is typing to me (`peer` is then `sender`, the conversation named from my side) or in
    `group`. No seq, best effort, at most one per typing interval while it lasts: show it for a few
    seconds, and no longer once a message from `sender` arrives there."""

    sender: int
    peer: int | None
    group: int | None

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> TypingNotice | None:
        sender, to, group = frame.get("from"), frame.get("to"), frame.get("group")
        if not is_id(sender) or not _conversation(to, group):
            return None
        return cls(sender, None, group) if group is not None else cls(sender, sender, None)


@dataclass(frozen=True, slots=True)
class Presence:
    """One watched user: online while it has a connection on any gateway; `last_seen` is when its
    connections last closed (unix ms), None if never recorded or if that user blocked me."""

    user_id: int
    online: bool
    last_seen: int | None

    @classmethod
    def from_json(cls, entry: object) -> Presence | None:
        if not isinstance(entry, dict):
            return None
        user_id, online, last_seen = entry.get("user_id"), entry.get("online"), entry.get("last_seen")
        if not (is_id(user_id) and isinstance(online, bool)
                and (last_seen is None or (type(last_seen) is int and last_seen >= 0))):
            return None
        return cls(user_id, online, last_seen)


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    """Presence of the users I watch: all of them after every `watch_presence` and every reconnect, then
    those whose `online` changed."""

    users: tuple[Presence, ...]


@dataclass(frozen=True, slots=True)
class SendFailed:
    """A send the server refused for good (`forbidden`, `not_found`, `too_large`, ...); it stays in the
    outbox as failed until `retry` or `discard`."""

    cid: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ServerError:
    """An `error` frame, whatever it refers to (a send's cid, or a sync when `cid` is None)."""

    code: str
    message: str
    cid: str | None


@dataclass(frozen=True, slots=True)
class ReconnectRequested:
    """The server is draining and closes this connection after `after_ms`; the client reconnects then."""

    after_ms: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection closed (`code` None when it never opened); the next attempt is in `retry_in` seconds."""

    code: int | None
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The client stopped for good: the token was refused and no new login could be had."""

    reason: str


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A server frame of a type this SDK does not know, passed through as received."""

    frame: Mapping[str, Any]


Event = (Connected | Synced | Received | Changed | InboxEvent | TypingNotice | PresenceUpdate | SendFailed
         | ServerError | ReconnectRequested | Disconnected | SessionEnded | UnknownFrame)
