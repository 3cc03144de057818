"""Client frames in, server frames out: parsing, validation and encoding, no I/O.

Every client frame is one JSON object with a `type`. Parsing raises an `ImError` subclass whose
code is what the client is told; the `cid` of a rejected frame is carried along when it is known.
Ids (`to`, `group`, `peer`, `id`, `up_to`) and inbox positions (`after`) are checked by
`im.protocol.ids`: anything that is not an integer a signed 64-bit column holds is a `bad_frame`,
before it reaches logic or a store.

Server frames of inbox events (`msg`, `edit`, `recall`, `read`, `member`, `group`) are built by
`event_fields`, one shape per record of `im.contracts.records`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from im.contracts.records import (
    EditEvent,
    EventPage,
    GroupEvent,
    InboxEvent,
    MemberEvent,
    Message,
    ReadEvent,
    RecallEvent,
)
from im.protocol.errors import BadFrame, Forbidden, ImError, TooLarge
from im.protocol.ids import MAX_ID, is_id, is_seq
from im.protocol.limits import Limits

__all__ = [
    "MAX_WATCHED",
    "ClientFrame",
    "EditFrame",
    "PingFrame",
    "PresenceFrame",
    "ReadFrame",
    "RecallFrame",
    "SendFrame",
    "SyncFrame",
    "TypingFrame",
    "encode_ack",
    "encode_error",
    "encode_event",
    "encode_message",
    "encode_pong",
    "encode_reconnect",
    "encode_sync",
    "encode_typing",
    "event_bytes_bound",
    "event_fields",
    "message_fields",
    "message_bytes_bound",
    "parse_client_frame",
    "MessageEncoder",
]


# The frames of every message (send, read) are plain slotted dataclasses, as are the records they
# become (Send, Message, Applied, the envelopes): one is built per message in each process, and a
# frozen one costs three to six times as much to build (docs/benchmarks.md, "Records on the message path").
# Nothing mutates them once built.
@dataclass(slots=True)
class SendFrame:
    cid: str
    to: int | None
    group: int | None
    content: str


@dataclass(frozen=True, slots=True)
class EditFrame:
    cid: str
    id: int
    content: str


@dataclass(frozen=True, slots=True)
class RecallFrame:
    cid: str
    id: int


@dataclass(slots=True)
class ReadFrame:
    """Read up to message `up_to` in the conversation with `peer` or in `group` (exactly one set).
    `cid` is optional: only an error about this frame carries it."""

    peer: int | None
    group: int | None
    up_to: int
    cid: str | None = None


@dataclass(frozen=True, slots=True)
class TypingFrame:
    """I am typing to `to` or in `group` (exactly one set): ephemeral, never answered."""

    to: int | None
    group: int | None


@dataclass(frozen=True, slots=True)
class PresenceFrame:
    """Watch these users (replacing what this connection watched before), distinct, in the order given."""

    watch: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SyncFrame:
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class PingFrame:
    pass


ClientFrame = SendFrame | EditFrame | RecallFrame | ReadFrame | TypingFrame | PresenceFrame | SyncFrame | PingFrame

MAX_WATCHED = 500
"""Users one `presence` frame may watch."""

_SEND_FIELDS = frozenset({"type", "cid", "to", "group", "content"})
_EDIT_FIELDS = frozenset({"type", "cid", "id", "content"})
_RECALL_FIELDS = frozenset({"type", "cid", "id"})
_READ_FIELDS = frozenset({"type", "cid", "peer", "group", "up_to"})
_TYPING_FIELDS = frozenset({"type", "to", "group"})
_PRESENCE_FIELDS = frozenset({"type", "watch"})
_SYNC_FIELDS = frozenset({"type", "after", "limit"})
_PING_FIELDS = frozenset({"type"})


def parse_client_frame(data: str | bytes, limits: Limits) -> ClientFrame:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadFrame("not valid JSON") from None
    if not isinstance(raw, dict):
        raise BadFrame("a frame must be a JSON object")
    kind = raw.get("type")
    if kind == "send":
        return _parse_send(raw, limits)
    if kind == "edit":
        cid = _cid(raw, limits)
        _reject_unknown_fields(raw, _EDIT_FIELDS, cid)
        return EditFrame(cid=cid, id=_id(raw, "id", cid), content=_content(raw, limits, cid))
    if kind == "recall":
        cid = _cid(raw, limits)
        _reject_unknown_fields(raw, _RECALL_FIELDS, cid)
        return RecallFrame(cid=cid, id=_id(raw, "id", cid))
    if kind == "read":
        return _parse_read(raw, limits)
    if kind == "typing":
        if "from" in raw:
            raise Forbidden("the sender is taken from your token; do not send 'from'")
        _reject_unknown_fields(raw, _TYPING_FIELDS, None)
        to, group = _conversation(raw, "to", None)
        return TypingFrame(to=to, group=group)
    if kind == "presence":
        return _parse_presence(raw)
    if kind == "sync":
        _reject_unknown_fields(raw, _SYNC_FIELDS, None)
        after = raw.get("after", 0)
        if not is_seq(after):
            raise BadFrame(f"'after' must be an inbox position: an integer from 0 to {MAX_ID}")
        limit = raw.get("limit", limits.default_sync_limit)
        if type(limit) is not int or limit < 1:
            raise BadFrame("'limit' must be an integer >= 1")
        return SyncFrame(after=after, limit=min(limit, limits.max_sync_limit))
    if kind == "ping":
        _reject_unknown_fields(raw, _PING_FIELDS, None)
        return PingFrame()
    if kind is None:
        raise BadFrame("missing field 'type'")
    raise BadFrame(f"unknown frame type {kind!r}")


def _parse_send(raw: dict[str, Any], limits: Limits) -> SendFrame:
    cid = _cid(raw, limits)
    _reject_unknown_fields(raw, _SEND_FIELDS, cid)
    to, group = _conversation(raw, "to", cid)
    return SendFrame(cid=cid, to=to, group=group, content=_content(raw, limits, cid))


def _parse_read(raw: dict[str, Any], limits: Limits) -> ReadFrame:
    cid = _cid(raw, limits) if "cid" in raw else None
    _reject_unknown_fields(raw, _READ_FIELDS, cid)
    peer, group = _conversation(raw, "peer", cid)
    return ReadFrame(peer=peer, group=group, up_to=_id(raw, "up_to", cid), cid=cid)


def _parse_presence(raw: dict[str, Any]) -> PresenceFrame:
    _reject_unknown_fields(raw, _PRESENCE_FIELDS, None)
    watch = raw.get("watch")
    if not isinstance(watch, list):
        raise BadFrame("'watch' must be an array of user ids")
    if len(watch) > MAX_WATCHED:
        raise BadFrame(f"'watch' names more than {MAX_WATCHED} users")
    for user_id in watch:
        if not is_id(user_id):
            raise BadFrame(f"'watch' must hold user ids: integers from 1 to {MAX_ID}")
    return PresenceFrame(watch=tuple(dict.fromkeys(watch)))


def _cid(raw: dict[str, Any], limits: Limits) -> str:
    cid = raw.get("cid")
    if not isinstance(cid, str) or not cid:
        raise BadFrame("'cid' must be a non-empty string")
    if len(cid) > limits.max_cid_chars or (not cid.isascii() and len(cid.encode()) > limits.max_cid_bytes):
        raise BadFrame(f"'cid' is longer than {limits.max_cid_chars} characters or {limits.max_cid_bytes} bytes")
    if "from" in raw:
        raise Forbidden("the sender is taken from your token; do not send 'from'", cid=cid)
    return cid


def _conversation(raw: dict[str, Any], private: str, cid: str | None) -> tuple[int | None, int | None]:
    """Exactly one of `private` (`to` or `peer`) and `group`, as `(private, group)`."""
    has_private, has_group = private in raw, "group" in raw
    if has_private == has_group:
        raise BadFrame(f"a {raw['type']} needs exactly one of '{private}' and 'group'", cid=cid)
    name = private if has_private else "group"
    target = _id(raw, name, cid)
    return (target, None) if has_private else (None, target)


def _id(raw: dict[str, Any], name: str, cid: str | None) -> int:
    value = raw.get(name)
    if not is_id(value):
        raise BadFrame(f"'{name}' must be an id: an integer from 1 to {MAX_ID}", cid=cid)
    return value


def _content(raw: dict[str, Any], limits: Limits, cid: str) -> str:
    content = raw.get("content")
    if not isinstance(content, str) or not content:
        raise BadFrame("'content' must be a non-empty string", cid=cid)
    if len(content) > limits.max_content_chars:
        raise TooLarge(f"'content' is longer than {limits.max_content_chars} characters", cid=cid)
    return content


def _reject_unknown_fields(raw: dict[str, Any], allowed: frozenset[str], cid: str | None) -> None:
    unknown = raw.keys() - allowed
    if unknown:
        raise BadFrame(f"unknown field(s): {', '.join(sorted(unknown))}", cid=cid)


def message_fields(message: Message, seq: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "type": "msg", "id": message.id, "seq": seq, "from": message.sender, "to": message.to,
        "group": message.group, "content": message.content, "cid": message.cid, "ts": message.ts,
    }
    if message.edited_ts is not None:
        fields["edited_ts"] = message.edited_ts
    if message.recalled:
        fields["recalled"] = True
    return fields


def event_fields(event: InboxEvent, seq: int) -> dict[str, Any]:
    """The server frame of an inbox event at `seq`, rendered as its record is (a read is named from the
    side it was rendered for)."""
    if isinstance(event, Message):
        return message_fields(event, seq)
    if isinstance(event, EditEvent):
        return {"type": "edit", "seq": seq, "id": event.message_id, "from": event.sender,
                **_where(event.to, event.group), "content": event.content, "ts": event.ts}
    if isinstance(event, RecallEvent):
        return {"type": "recall", "seq": seq, "id": event.message_id, "from": event.sender,
                **_where(event.to, event.group), "ts": event.ts}
    if isinstance(event, ReadEvent):
        where = {"peer": event.peer} if event.group is None else {"group": event.group}
        return {"type": "read", "seq": seq, "by": event.by, **where, "up_to": event.up_to, "ts": event.ts}
    if isinstance(event, MemberEvent):
        return {"type": "member", "seq": seq, "group": event.group, "user": event.user, "action": event.action,
                "by": event.by, "ts": event.ts}
    return {"type": "group", "seq": seq, "group": event.group, "name": event.name, "owner": event.owner,
            "by": event.by, "ts": event.ts}


def _where(to: int | None, group: int | None) -> dict[str, int | None]:
    return {"to": to} if group is None else {"group": group}


_MESSAGE_FRAME_OVERHEAD_BYTES = 200
"""Everything of an encoded `msg` but its content and cid, at most: keys, punctuation, five ids of 19
digits, a 13-digit timestamp, a comma between array items."""


def message_bytes_bound(message: Message) -> int:
    """No fewer than the bytes `message` takes in a `sync` answer, and close to them: content and cid
    are measured as encoded (a NUL takes 6 bytes once escaped, an emoji 4), so a page can be cut to a
    byte budget before it is encoded."""
    return _MESSAGE_FRAME_OVERHEAD_BYTES + len(orjson.dumps(message.content)) + len(orjson.dumps(message.cid))


def event_bytes_bound(event: InboxEvent) -> int:
    """As `message_bytes_bound`, for any inbox event: only messages, edits and groups carry text."""
    if isinstance(event, Message):
        return message_bytes_bound(event)
    if isinstance(event, EditEvent):
        return _MESSAGE_FRAME_OVERHEAD_BYTES + len(orjson.dumps(event.content))
    if isinstance(event, GroupEvent):
        return _MESSAGE_FRAME_OVERHEAD_BYTES + len(orjson.dumps(event.name))
    return _MESSAGE_FRAME_OVERHEAD_BYTES


class MessageEncoder:
    """Encodes one message for many recipients: only `seq` differs, so the rest is encoded once."""

    __slots__ = ("_tail",)

    def __init__(self, message: Message) -> None:
        fields = message_fields(message, 0)
        del fields["type"], fields["seq"]
        self._tail = orjson.dumps(fields)[1:]

    def encode(self, seq: int) -> bytes:
        return b'{"type":"msg","seq":%d,%s' % (seq, self._tail)


def encode_message(message: Message, seq: int) -> bytes:
    return orjson.dumps(message_fields(message, seq))


def encode_event(event: InboxEvent, seq: int) -> bytes:
    return orjson.dumps(event_fields(event, seq))


def encode_ack(cid: str, message_id: int, seq: int, ts: int) -> bytes:
    return orjson.dumps({"type": "ack", "cid": cid, "id": message_id, "seq": seq, "ts": ts})


def encode_sync(page: EventPage) -> bytes:
    return orjson.dumps({
        "type": "sync",
        "messages": [event_fields(event, seq) for seq, event in page.entries],
        "more": page.more,
    })


def encode_typing(sender: int, to: int | None, group: int | None) -> bytes:
    return orjson.dumps({"type": "typing", "from": sender, **_where(to, group)})


def encode_error(error: ImError) -> bytes:
    return orjson.dumps({"type": "error", **error.client_body(), "cid": error.cid})


def encode_pong() -> bytes:
    return b'{"type":"pong"}'


def encode_reconnect(after_ms: int) -> bytes:
    return orjson.dumps({"type": "reconnect", "after_ms": after_ms})
