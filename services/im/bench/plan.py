"""What every client connection does in one run, as plain data a worker process can be handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ConnSpec", "Plan", "SenderSpec"]

Mode = Literal["im", "echo"]


@dataclass(frozen=True, slots=True)
class ConnSpec:
    """One WebSocket connection: its slot number, whose it is and where it goes."""

    slot: int
    user_id: Any
    url: str
    local_addr: str | None = None
    """Source address to bind (127.0.0.x spreads connections over more ephemeral ports)."""


@dataclass(frozen=True, slots=True)
class SenderSpec:
    """A connection that sends `count` messages to one user (`to`) or one group, read by `recipients`."""

    slot: int
    count: int
    recipients: list[int]
    to: Any = None
    group: Any = None


@dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode
    conns: list[ConnSpec]
    senders: list[SenderSpec] = field(default_factory=list)
    """In pacing order: global message k goes to `senders[k % len(senders)]`."""
    rate: float | None = None
    """Messages/s over all senders; `None` sends as fast as `window` allows."""
    window: int = 32
    """Messages a sender may have unanswered (no ack or error yet) when not paced."""
    content_size: int = 64
    """Characters of `content` in each message (the send time and message id included)."""
    timeout: float = 120.0
    """Longest the measured phase may last, seconds from the start."""
    settle: float = 5.0
    """Seconds without any send, ack or delivery after which a worker stops waiting."""
    connect_concurrency: int = 200
    """WebSocket handshakes in flight at once per worker."""
    ping_interval: float | None = 20.0
    """Client keepalive pings, seconds; `None` turns them off."""

    @property
    def messages(self) -> int:
        return sum(sender.count for sender in self.senders)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "conns": [[c.slot, c.user_id, c.url, c.local_addr] for c in self.conns],
            "senders": [[s.slot, s.count, s.recipients, s.to, s.group] for s in self.senders],
            "rate": self.rate, "window": self.window, "content_size": self.content_size,
            "timeout": self.timeout, "settle": self.settle,
            "connect_concurrency": self.connect_concurrency, "ping_interval": self.ping_interval,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            mode=data["mode"],
            conns=[ConnSpec(*c) for c in data["conns"]],
            senders=[SenderSpec(*s) for s in data["senders"]],
            rate=data["rate"], window=data["window"], content_size=data["content_size"],
            timeout=data["timeout"], settle=data["settle"],
            connect_concurrency=data["connect_concurrency"], ping_interval=data["ping_interval"],
        )
