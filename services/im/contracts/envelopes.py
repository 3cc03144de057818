"""What travels on the bus: client messages up to logic, results down to gateways.

Both directions carry batches: one uplink publish may hold several client messages and one downlink
carries everything logic has for one gateway from one committed batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from im.contracts.records import Message

__all__ = ["Ack", "Delivery", "Downlink", "Rejection", "Uplink", "decode_downlink", "decode_uplinks",
           "encode_downlink", "encode_uplinks"]


@dataclass(frozen=True, slots=True)
class Uplink:
    """A client `send`, stamped by the gateway with the authenticated sender and where to answer."""

    sender: int
    cid: str
    to: int | None
    group: int | None
    content: str
    gateway: str
    conn: int
    accepted_at: float  # unix seconds, when the gateway took the frame

    @property
    def conversation(self) -> str:
        """Messages of one conversation must keep their order: they share this key."""
        if self.group is not None:
            return f"g{self.group}"
        assert self.to is not None
        low, high = sorted((self.sender, self.to))
        return f"p{low}:{high}"


@dataclass(frozen=True, slots=True)
class Ack:
    conn: int
    cid: str
    id: int
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class Rejection:
    conn: int
    cid: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for the recipients on one gateway, each with their own inbox `seq`.

    `origin` is the sending connection when it is on this gateway: it gets the ack, not the message.
    """

    message: Message
    recipients: list[tuple[int, int]]
    accepted_at: float
    origin: int | None = None


@dataclass(slots=True)
class Downlink:
    gateway: str
    acks: list[Ack] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.acks or self.rejections or self.deliveries)


def encode_uplinks(uplinks: list[Uplink]) -> bytes:
    return orjson.dumps([
        [u.sender, u.cid, u.to, u.group, u.content, u.gateway, u.conn, u.accepted_at] for u in uplinks
    ])


def decode_uplinks(data: bytes) -> list[Uplink]:
    return [Uplink(*row) for row in orjson.loads(data)]


def _message_row(m: Message) -> list[Any]:
    return [m.id, m.sender, m.to, m.group, m.content, m.cid, m.ts]


def encode_downlink(downlink: Downlink) -> bytes:
    return orjson.dumps({
        "gateway": downlink.gateway,
        "acks": [[a.conn, a.cid, a.id, a.seq, a.ts] for a in downlink.acks],
        "rejections": [[r.conn, r.cid, r.code, r.message] for r in downlink.rejections],
        "deliveries": [
            [_message_row(d.message), d.recipients, d.accepted_at, d.origin] for d in downlink.deliveries
        ],
    })


def decode_downlink(data: bytes) -> Downlink:
    raw = orjson.loads(data)
    return Downlink(
        gateway=raw["gateway"],
        acks=[Ack(*row) for row in raw["acks"]],
        rejections=[Rejection(*row) for row in raw["rejections"]],
        deliveries=[
            Delivery(Message(*message), [(u, s) for u, s in recipients], accepted_at, origin)
            for message, recipients, accepted_at, origin in raw["deliveries"]
        ],
    )
