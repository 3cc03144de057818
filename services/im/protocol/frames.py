"""Client frames in, server frames out: parsing, validation and encoding, no I/O.

Every client frame is one JSON object with a `type`. Parsing raises an `ImError` subclass whose
code is what the client is told; the `cid` of a rejected `send` is carried along when it is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from im.contracts.records import InboxPage, Message
from im.protocol.errors import BadFrame, Forbidden, ImError, TooLarge
from im.protocol.limits import Limits

__all__ = [
    "ClientFrame",
    "PingFrame",
    "SendFrame",
    "SyncFrame",
    "encode_ack",
    "encode_error",
    "encode_message",
    "encode_pong",
    "encode_reconnect",
    "encode_sync",
    "message_fields",
    "parse_client_frame",
    "MessageEncoder",
]


@dataclass(frozen=True, slots=True)
class SendFrame:
    cid: str
    to: int | None
    group: int | None
    content: str


@dataclass(frozen=True, slots=True)
class SyncFrame:
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class PingFrame:
    pass


ClientFrame = SendFrame | SyncFrame | PingFrame

_SEND_FIELDS = frozenset({"type", "cid", "to", "group", "content"})
_SYNC_FIELDS = frozenset({"type", "after", "limit"})
_PING_FIELDS = frozenset({"type"})


def parse_client_frame(data: str | bytes, limits: Limits) -> ClientFrame:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadFrame(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadFrame("a frame must be a JSON object")
    kind = raw.get("type")
    if kind == "send":
        return _parse_send(raw, limits)
    if kind == "sync":
        _reject_unknown_fields(raw, _SYNC_FIELDS, None)
        return SyncFrame(
            after=_int_field(raw, "after", default=0, minimum=0, cid=None),
            limit=min(
                _int_field(raw, "limit", default=limits.default_sync_limit, minimum=1, cid=None),
                limits.max_sync_limit,
            ),
        )
    if kind == "ping":
        _reject_unknown_fields(raw, _PING_FIELDS, None)
        return PingFrame()
    if kind is None:
        raise BadFrame("missing field 'type'")
    raise BadFrame(f"unknown frame type {kind!r}")


def _parse_send(raw: dict[str, Any], limits: Limits) -> SendFrame:
    cid = raw.get("cid")
    if not isinstance(cid, str) or not cid:
        raise BadFrame("'cid' must be a non-empty string")
    if len(cid) > limits.max_cid_chars:
        raise BadFrame(f"'cid' is longer than {limits.max_cid_chars} characters")
    if "from" in raw:
        raise Forbidden("the sender is taken from your token; do not send 'from'", cid=cid)
    _reject_unknown_fields(raw, _SEND_FIELDS, cid)
    has_to, has_group = "to" in raw, "group" in raw
    if has_to == has_group:
        raise BadFrame("a send needs exactly one of 'to' and 'group'", cid=cid)
    to = _int_field(raw, "to", default=None, minimum=1, cid=cid) if has_to else None
    group = _int_field(raw, "group", default=None, minimum=1, cid=cid) if has_group else None
    content = raw.get("content")
    if not isinstance(content, str) or not content:
        raise BadFrame("'content' must be a non-empty string", cid=cid)
    if len(content) > limits.max_content_chars:
        raise TooLarge(f"'content' is longer than {limits.max_content_chars} characters", cid=cid)
    return SendFrame(cid=cid, to=to, group=group, content=content)


def _reject_unknown_fields(raw: dict[str, Any], allowed: frozenset[str], cid: str | None) -> None:
    unknown = raw.keys() - allowed
    if unknown:
        raise BadFrame(f"unknown field(s): {', '.join(sorted(unknown))}", cid=cid)


def _int_field(raw: dict[str, Any], name: str, *, default: Any, minimum: int, cid: str | None) -> Any:
    value = raw.get(name, default)
    if value is default and name not in raw:
        return value
    if type(value) is not int or value < minimum:
        raise BadFrame(f"'{name}' must be an integer >= {minimum}", cid=cid)
    return value


def message_fields(message: Message, seq: int) -> dict[str, Any]:
    return {
        "type": "msg", "id": message.id, "seq": seq, "from": message.sender, "to": message.to,
        "group": message.group, "content": message.content, "cid": message.cid, "ts": message.ts,
    }


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


def encode_ack(cid: str, message_id: int, seq: int, ts: int) -> bytes:
    return orjson.dumps({"type": "ack", "cid": cid, "id": message_id, "seq": seq, "ts": ts})


def encode_sync(page: InboxPage) -> bytes:
    return orjson.dumps({
        "type": "sync",
        "messages": [message_fields(message, seq) for seq, message in page.entries],
        "more": page.more,
    })


def encode_error(error: ImError) -> bytes:
    return orjson.dumps({"type": "error", "code": error.code, "message": error.message, "cid": error.cid})


def encode_pong() -> bytes:
    return b'{"type":"pong"}'


def encode_reconnect(after_ms: int) -> bytes:
    return orjson.dumps({"type": "reconnect", "after_ms": after_ms})
