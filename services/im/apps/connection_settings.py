"""The settings a gateway applies to each client connection, shared by `im serve` and `im-gateway`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from im.config import at_least, setting
from im.gateway.server import GatewaySettings
from im.protocol.limits import Limits

__all__ = ["ConnectionSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSettings:
    heartbeat_interval: float = field(default=30.0, metadata=setting(
        "IM_HEARTBEAT_INTERVAL", "seconds of silence before the server pings"))
    heartbeat_timeout: float = field(default=10.0, metadata=setting(
        "IM_HEARTBEAT_TIMEOUT", "seconds a pinged client has to answer"))
    rate_limit: float = field(default=50.0, metadata=setting(
        "IM_RATE_LIMIT", "sends per second per connection (0 turns it off)"))
    rate_burst: int = field(default=100, metadata=setting("IM_RATE_BURST", "sends allowed at once"))
    send_queue_bytes: int = field(default=1024 * 1024, metadata=setting(
        "IM_SEND_QUEUE_BYTES", "bytes queued for a slow reader before it is closed with 4008"))
    drain_seconds: float = field(default=10.0, metadata=setting(
        "IM_DRAIN_SECONDS", "window over which SIGTERM spreads reconnect frames"))

    def __post_init__(self) -> None:
        at_least("IM_HEARTBEAT_INTERVAL", self.heartbeat_interval, 0.1)
        at_least("IM_HEARTBEAT_TIMEOUT", self.heartbeat_timeout, 0.1)
        at_least("IM_RATE_LIMIT", self.rate_limit, 0)
        at_least("IM_RATE_BURST", self.rate_burst, 1)
        at_least("IM_SEND_QUEUE_BYTES", self.send_queue_bytes, 1024)
        at_least("IM_DRAIN_SECONDS", self.drain_seconds, 0)

    def limits(self) -> Limits:
        return Limits(
            messages_per_second=self.rate_limit or None, message_burst=self.rate_burst,
            max_send_queue_bytes=self.send_queue_bytes,
        )

    def gateway_settings(self, **more: Any) -> GatewaySettings:
        return GatewaySettings(
            heartbeat_interval_seconds=self.heartbeat_interval,
            heartbeat_timeout_seconds=self.heartbeat_timeout,
            drain_seconds=self.drain_seconds,
            **more,
        )
