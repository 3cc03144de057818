"""What travels on the bus: client messages up to logic, results down to gateways.

Both directions carry batches: one uplink publish may hold several client messages and one downlink
carries everything logic has for one gateway from one committed batch.

Envelopes are versioned so that gateways and logic replicas of different releases can share a bus
during a rolling upgrade (docs/architecture.md, "Envelopes"):

- **version 1** (releases before versioning): uplinks are a bare JSON array of 8-field rows;
  downlinks an object with `gateway`, `acks`, `rejections`, `deliveries`.
- **version 2**: uplinks are `{"v": 2, "uplinks": [row, ...]}`; downlinks are the version 1 object
  plus `"v": 2` and `"again"` (deliveries sent once more after a redelivery), keys a version 1 reader
  ignores, so an older gateway still reads what a newer logic sends.
- **version 3**: uplinks are `{"v": 3, "uplinks": [row, ...]}`, each row the 8 fields of version 1
  plus `kind` (`send`, `edit`, `recall`, `read`) and `message_id`; an older logic cannot read them
  (it would take an edit for a send), so a version 2 gateway writes sends only. Downlinks add
  `"events"` (deliveries of inbox events other than messages) and `"answered"` (reads taken without
  an ack), keys a version 2 reader ignores; they keep saying `"v": 2` so that a version 2 gateway
  still reads their acks and messages.
- **version 4**: uplinks are `{"v": 4, "uplinks": [row, ...]}`, rows as in version 3, whose `kind` may
  also be `typing` (`to` or `group`, never stored: logic relays it without the batch writer) or
  `seen` (a user's last connection on a gateway closed: logic records the moment); a version 3 logic
  would dead-letter such a message, so a gateway writing version 3 sends neither.
  Downlinks add `"typing"` (typing notices for recipients on that gateway), a key older gateways ignore.

Decoders accept every version up to `ENVELOPE_VERSION`, and rows longer than they know (a later
version appends fields, never reorders them). Anything else raises `UndecodableEnvelope`: the bus
dead-letters such a message instead of dropping it.

The records are plain (not frozen) slotted dataclasses: every process builds several per message,
and a frozen one costs several times as much to build (docs/benchmarks.md, "Envelopes"). Nothing
mutates them once built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from im.contracts.records import (
    EditEvent,
    GroupEvent,
    InboxEvent,
    MemberEvent,
    Message,
    ReadEvent,
    RecallEvent,
)

__all__ = ["ENVELOPE_VERSION", "ENVELOPE_VERSIONS", "EVENTS_ENVELOPE_VERSION", "TYPING_ENVELOPE_VERSION", "Ack",
           "Delivery", "Downlink", "Rejection", "TypingNotice", "UndecodableEnvelope", "Uplink", "UplinkKind",
           "decode_downlink", "decode_uplinks", "encode_downlink", "encode_uplinks"]

ENVELOPE_VERSION = 4
"""The newest version: what this release writes unless told to write an older one."""

ENVELOPE_VERSIONS = (1, 2, 3, 4)

EVENTS_ENVELOPE_VERSION = 3
"""The first uplink version that carries kinds other than `send`."""

TYPING_ENVELOPE_VERSION = 4
"""The first uplink version that carries `typing` and `seen`."""

_DOWNLINK_VERSION = 2
"""What downlinks say they are: version 3 only adds keys a version 2 gateway ignores."""

UplinkKind = Literal["send", "edit", "recall", "read", "typing", "seen"]
_V3_KINDS = frozenset({"send", "edit", "recall", "read"})
_V4_KINDS = _V3_KINDS | {"typing", "seen"}
_CONVERSATION_KINDS = frozenset({"read", "typing"})
"""Kinds other than `send` that name a conversation (`to` or `group`) rather than a message."""
_UNNUMBERED_KINDS = frozenset({"typing", "seen"})
"""Kinds that name no message."""


class UndecodableEnvelope(ValueError):
    """A bus message this release cannot read: not JSON, an unknown version, or a malformed row."""


@dataclass(slots=True)
class Uplink:
    """A client `send`, `edit`, `recall` or `read`, stamped by the gateway with the authenticated
    sender and where to answer.

    - `send`: `cid`, exactly one of `to` and `group`, `content`.
    - `edit`: `cid`, `message_id`, `content` (the new one); `recall`: `cid`, `message_id`. Neither
      names a conversation (`to` and `group` None): the store knows the message's.
    - `read`: `to` (the peer) or `group`, `message_id` (read up to it); `cid` and `content` are "".
    - `typing`: `to` or `group`; `cid` and `content` are "", `message_id` None. Never answered.
    - `seen`: the sender's last connection on this gateway closed at `accepted_at` (or, seen by
      another gateway, the sender's sessions lapsed then): nothing else set. Never answered.
    """

    sender: int
    cid: str
    to: int | None
    group: int | None
    content: str
    gateway: str
    conn: int
    accepted_at: float  # unix seconds, when the gateway took the frame
    redelivered: bool = False
    """Not on the wire: set by the bus when the broker delivers this uplink a second time (an earlier
    consumer took it and went away before acknowledging), so its downlinks may never have gone out."""
    kind: UplinkKind = "send"
    message_id: int | None = None
    """The message an edit or recall changes, or that a read reads up to."""

    @property
    def conversation(self) -> str:
        """Uplinks of one conversation must keep their order: they share this key. Edits and recalls
        name no conversation: those of one message share a key."""
        if self.group is not None:
            return f"g{self.group}"
        if self.to is None:
            return f"m{self.message_id}"
        low, high = sorted((self.sender, self.to))
        return f"p{low}:{high}"


@dataclass(slots=True)
class Ack:
    conn: int
    cid: str
    id: int
    seq: int
    ts: int


@dataclass(slots=True)
class Rejection:
    conn: int
    cid: str
    code: str
    message: str
    request_id: str | None = None
    """The id logic logged the detail of an infrastructure failure under; the client is given it."""


@dataclass(slots=True)
class Delivery:
    """One inbox event for the recipients on one gateway, each with their own inbox `seq`.

    `event` is rendered for its actor; the gateway renders a read for each recipient
    (`ReadEvent.seen_by`). `origin` is the sending connection when it is on this gateway: it gets
    the ack, not the event. `again` marks a delivery sent once more because its batch was
    redelivered: the gateway pushes it only to connections that cannot have had it yet.
    """

    event: InboxEvent
    recipients: list[tuple[int, int]]
    accepted_at: float
    origin: int | None = None
    again: bool = False


@dataclass(slots=True)
class TypingNotice:
    """`sender` is typing to `to` or in `group`: for `recipients` (user ids) on one gateway."""

    sender: int
    to: int | None
    group: int | None
    recipients: list[int]


@dataclass(slots=True)
class Downlink:
    gateway: str
    acks: list[Ack] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    """Connections whose read was taken: answered, with no frame (a read that moved the pointer
    shows as its `read` event on every device of the reader)."""
    typing: list[TypingNotice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.acks or self.rejections or self.deliveries or self.answered or self.typing)


# -- uplinks ----------------------------------------------------------------------------------------


def encode_uplinks(uplinks: list[Uplink], *, version: int = ENVELOPE_VERSION) -> bytes:
    """`ValueError` for a version that does not exist, or one too old for a kind it is asked to carry
    (older than 3: anything but sends; 3: typing)."""
    if version >= EVENTS_ENVELOPE_VERSION:
        if version < TYPING_ENVELOPE_VERSION and any(u.kind in _UNNUMBERED_KINDS for u in uplinks):
            raise ValueError(f"uplink envelope version {version} does not carry typing or seen")
        rows = [[u.sender, u.cid, u.to, u.group, u.content, u.gateway, u.conn, u.accepted_at, u.kind, u.message_id]
                for u in uplinks]
        if version in (3, 4):
            return orjson.dumps({"v": version, "uplinks": rows})
        raise ValueError(f"no uplink envelope version {version}; this release writes {ENVELOPE_VERSIONS}")
    if any(u.kind != "send" for u in uplinks):
        raise ValueError(f"uplink envelope version {version} carries sends only")
    rows = [[u.sender, u.cid, u.to, u.group, u.content, u.gateway, u.conn, u.accepted_at] for u in uplinks]
    if version == 1:
        return orjson.dumps(rows)
    if version == 2:
        return orjson.dumps({"v": 2, "uplinks": rows})
    raise ValueError(f"no uplink envelope version {version}; this release writes {ENVELOPE_VERSIONS}")


def decode_uplinks(data: bytes, *, redelivered: bool = False) -> list[Uplink]:
    raw = _loads(data)
    if isinstance(raw, list):  # version 1
        return [_uplink(row, redelivered) for row in raw]
    if isinstance(raw, dict) and isinstance(raw.get("uplinks"), list):
        if raw.get("v") == 2:
            return [_uplink(row, redelivered) for row in raw["uplinks"]]
        if raw.get("v") == 3:
            return [_uplink_v3(row, redelivered, _V3_KINDS) for row in raw["uplinks"]]
        if raw.get("v") == 4:
            return [_uplink_v3(row, redelivered, _V4_KINDS) for row in raw["uplinks"]]
    raise UndecodableEnvelope(f"not an uplink envelope of versions {ENVELOPE_VERSIONS}: {_version(raw)}")


def _uplink(row: Any, redelivered: bool) -> Uplink:
    if type(row) is not list or len(row) < 8:
        raise UndecodableEnvelope("an uplink row is not an array of at least 8 fields")
    sender, cid, to, group, content, gateway, conn, accepted_at = row[:8]
    # One expression, no calls: this runs for every message logic takes.
    if (type(sender) is not int or type(cid) is not str or type(content) is not str
            or type(gateway) is not str or type(conn) is not int
            or (type(to) is not int if group is None else (to is not None or type(group) is not int))
            or (type(accepted_at) is not float and type(accepted_at) is not int)):
        raise UndecodableEnvelope("an uplink row has a field of the wrong type")
    return Uplink(sender, cid, to, group, content, gateway, conn, accepted_at, redelivered)


def _uplink_v3(row: Any, redelivered: bool, kinds: frozenset[str]) -> Uplink:
    """A row of version 3 or later (which differ in the `kinds` they carry)."""
    if type(row) is not list or len(row) < 10:
        raise UndecodableEnvelope("a version 3 uplink row is not an array of at least 10 fields")
    kind, message_id = row[8], row[9]
    if kind == "send":
        return _uplink(row, redelivered)
    sender, cid, to, group, content, gateway, conn, accepted_at = row[:8]
    if (kind not in kinds or type(sender) is not int or type(cid) is not str or type(content) is not str
            or type(gateway) is not str or type(conn) is not int
            or (message_id is not None if kind in _UNNUMBERED_KINDS else type(message_id) is not int)
            or (type(accepted_at) is not float and type(accepted_at) is not int)
            or ((to is not None or group is not None) if kind not in _CONVERSATION_KINDS
                else (type(to) is not int if group is None else (to is not None or type(group) is not int)))):
        raise UndecodableEnvelope("an uplink row has a field of the wrong type")
    return Uplink(sender, cid, to, group, content, gateway, conn, accepted_at, redelivered, kind, message_id)


# -- downlinks --------------------------------------------------------------------------------------


def _message_row(m: Message) -> list[Any]:
    return [m.id, m.sender, m.to, m.group, m.content, m.cid, m.ts]


def _event_row(event: InboxEvent) -> list[Any]:
    """`[kind, field, ...]` of an event that is not a message, fields in record order."""
    if isinstance(event, EditEvent):
        return ["edit", event.message_id, event.sender, event.to, event.group, event.content, event.ts]
    if isinstance(event, RecallEvent):
        return ["recall", event.message_id, event.sender, event.to, event.group, event.ts]
    if isinstance(event, ReadEvent):
        return ["read", event.by, event.peer, event.group, event.up_to, event.ts]
    if isinstance(event, MemberEvent):
        return ["member", event.group, event.user, event.action, event.by, event.ts]
    if isinstance(event, GroupEvent):
        return ["group", event.group, event.name, event.owner, event.by, event.ts]
    raise TypeError(f"not an inbox event: {event!r}")


_EVENT_RECORDS: dict[str, type[EditEvent | RecallEvent | ReadEvent | MemberEvent | GroupEvent]] = {
    "edit": EditEvent, "recall": RecallEvent, "read": ReadEvent, "member": MemberEvent, "group": GroupEvent,
}


def _delivery_row(d: Delivery) -> list[Any]:
    assert isinstance(d.event, Message)
    return [_message_row(d.event), d.recipients, d.accepted_at, d.origin]


def _event_delivery_row(d: Delivery) -> list[Any]:
    return [_event_row(d.event), d.recipients, d.accepted_at, d.origin, d.again]


def encode_downlink(downlink: Downlink) -> bytes:
    messages = [d for d in downlink.deliveries if isinstance(d.event, Message)]
    events = [d for d in downlink.deliveries if not isinstance(d.event, Message)]
    return orjson.dumps({
        "v": _DOWNLINK_VERSION,
        "gateway": downlink.gateway,
        "acks": [[a.conn, a.cid, a.id, a.seq, a.ts] for a in downlink.acks],
        # A version 1 gateway reads `rejections` as 4-field rows and only `deliveries`: request ids and
        # sent-again deliveries travel beside them; a version 2 gateway ignores `events` and `answered`.
        "rejections": [[r.conn, r.cid, r.code, r.message] for r in downlink.rejections],
        "request_ids": [r.request_id for r in downlink.rejections],
        "deliveries": [_delivery_row(d) for d in messages if not d.again],
        "again": [_delivery_row(d) for d in messages if d.again],
        "events": [_event_delivery_row(d) for d in events],
        "answered": downlink.answered,
        "typing": [[t.sender, t.to, t.group, t.recipients] for t in downlink.typing],
    })


def decode_downlink(data: bytes) -> Downlink:
    raw = _loads(data)
    if not isinstance(raw, dict) or raw.get("v", 1) not in ENVELOPE_VERSIONS:
        raise UndecodableEnvelope(f"not a downlink envelope of versions {ENVELOPE_VERSIONS}: {_version(raw)}")
    try:
        return Downlink(
            gateway=raw["gateway"],
            acks=[Ack(*row[:5]) for row in raw["acks"]],
            rejections=[_rejection(row, request_id) for row, request_id in zip(
                raw["rejections"], raw.get("request_ids") or [None] * len(raw["rejections"]), strict=True)],
            deliveries=[*(_delivery(row, False) for row in raw["deliveries"]),
                        *(_delivery(row, True) for row in raw.get("again", ())),
                        *(_event_delivery(row) for row in raw.get("events", ()))],
            answered=[int(conn) for conn in raw.get("answered", ())],
            typing=[_typing_notice(row) for row in raw.get("typing", ())],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UndecodableEnvelope(f"a malformed downlink: {e!r}") from None


def _typing_notice(row: list[Any]) -> TypingNotice:
    sender, to, group, recipients = row[:4]
    return TypingNotice(sender, to, group, [int(user) for user in recipients])


def _rejection(row: list[Any], request_id: str | None) -> Rejection:
    conn, cid, code, message = row[:4]
    return Rejection(conn, cid, code, message, request_id)


def _delivery(row: list[Any], again: bool) -> Delivery:
    message, recipients, accepted_at, origin = row[:4]
    return Delivery(Message(*message[:7]), [(u, s) for u, s in recipients], accepted_at, origin, again)


def _event_delivery(row: list[Any]) -> Delivery:
    event, recipients, accepted_at, origin, again = row[:5]
    kind, *fields = event
    record = _EVENT_RECORDS[kind]
    return Delivery(record(*fields), [(u, s) for u, s in recipients], accepted_at, origin, bool(again))


# -- helpers ----------------------------------------------------------------------------------------


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise UndecodableEnvelope(f"not JSON: {e}") from None


def _version(raw: Any) -> str:
    return f"version {raw.get('v')!r}" if isinstance(raw, dict) else type(raw).__name__
