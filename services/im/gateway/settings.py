"""What a gateway is told at start: its identity, timers, and the limits of its HTTP edge."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = ["EdgeLimits", "GatewaySettings", "Network"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Limits on what a client may hold of the gateway before it has a WebSocket; `None` turns one off."""

    head_timeout_seconds: float = 10.0
    """A request head must be complete this long after its first byte, however fast bytes trickle in."""
    body_timeout_seconds: float = 30.0
    """A request body must be complete this long after its head."""
    idle_timeout_seconds: float = 30.0
    """A connection that never upgraded may wait this long for its next request."""
    max_head_bytes: int = 16 * 1024
    """Largest request head (request line and headers), checked on every read; past it 431."""
    max_body_bytes: int = 64 * 1024
    """Largest request body; past it 413."""
    max_connections: int | None = None
    """Open client connections per gateway process; past it new ones get 503 and are closed."""
    max_connections_per_address: int | None = None
    """Open connections per client address; past it 429. The address comes from `X-Forwarded-For`
    only when the peer is one of `trusted_proxies`."""
    trusted_proxies: tuple[Network, ...] = ()
    """Peers whose `X-Forwarded-For` names the client."""
    cors_origins: frozenset[str] = frozenset()
    """Origins (`https://host[:port]`) other than the gateway's own whose pages may call the API; `*` is any."""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    gateway_id: str = "standalone"
    heartbeat_interval_seconds: float = 30.0
    """Idle time after which the gateway pings a client."""
    heartbeat_timeout_seconds: float = 10.0
    """Time a pinged client has to answer before it is closed with 4000."""
    wheel_tick_seconds: float = 0.5
    close_timeout_seconds: float = 5.0
    max_pending_uplinks: int = 20_000
    """Sends waiting for the bus; past it new sends get `unavailable`."""
    inbox_events: bool = True
    """Whether `edit`, `recall` and `read` frames are taken: not while the bus writes uplink envelopes
    older than version 3 (a rolling upgrade from a logic that reads sends only)."""
    ephemeral_uplinks: bool = True
    """Whether `typing` frames are forwarded and last-seen moments sent to logic: not while the bus
    writes uplink envelopes older than version 4 (a logic that cannot read them); typing frames are
    dropped meanwhile, as a throttled one is, and `last_seen` is not updated."""
    typing_interval_seconds: float = 3.0
    """At most one `typing` per sender and conversation is forwarded per this interval."""
    presence_coalesce_seconds: float = 0.5
    """Presence changes are collected this long and looked up together: a flip back within it is no change."""
    presence_recheck_seconds: float = 20.0
    """How often every user watched here is looked up again (a dead gateway's users lapse unannounced)."""
    max_uplinks_per_publish: int = 1000
    uplink_linger_seconds: float = 0.0
    """How long the first send waits for others before a publish round: fewer, fuller bus messages."""
    session_refresh_seconds: float = 20.0
    drain_seconds: float = 5.0
    """Window over which draining spreads `reconnect` frames."""
    serve_web: bool = True
    access_log: bool = True
    """One INFO line on `im.access` per HTTP request and per WebSocket session."""
    edge: EdgeLimits = field(default_factory=EdgeLimits)
