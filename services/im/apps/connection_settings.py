"""The settings a gateway applies to each client connection, shared by `im serve` and `im-gateway`."""

from __future__ import annotations

import ipaddress
import resource
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from im.apps.entry import StartupError
from im.config import ConfigError, at_least, both_or_neither, setting
from im.gateway.settings import EdgeLimits, GatewaySettings, Network
from im.protocol.limits import Limits

__all__ = ["ConnectionSettings", "derived_max_connections"]

FILES_KEPT_FREE = 100
"""File descriptors never given to clients: the store, the bus, logs, the metrics server."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSettings:
    heartbeat_interval: float = field(default=30.0, metadata=setting(
        "IM_HEARTBEAT_INTERVAL", "seconds of silence before the server pings"))
    heartbeat_timeout: float = field(default=10.0, metadata=setting(
        "IM_HEARTBEAT_TIMEOUT", "seconds a pinged client has to answer"))
    rate_limit: float = field(default=50.0, metadata=setting(
        "IM_RATE_LIMIT", "sends per second per connection (0 turns it off)"))
    rate_burst: int = field(default=100, metadata=setting("IM_RATE_BURST", "sends allowed at once"))
    user_rate_limit: float = field(default=100.0, metadata=setting(
        "IM_USER_RATE_LIMIT", "sends per second of one user over all their connections to this gateway "
        "(0 turns it off; IM_RATE_LIMIT=0 turns both off)"))
    user_rate_burst: int = field(default=200, metadata=setting(
        "IM_USER_RATE_BURST", "sends one user may make at once over all their connections"))
    send_queue_bytes: int = field(default=1024 * 1024, metadata=setting(
        "IM_SEND_QUEUE_BYTES", "bytes queued for a slow reader before it is closed with 4008"))
    drain_seconds: float = field(default=10.0, metadata=setting(
        "IM_DRAIN_SECONDS", "window over which SIGTERM spreads reconnect frames"))
    tls_cert_file: Path | None = field(default=None, metadata=setting(
        "IM_TLS_CERT_FILE", "PEM certificate chain: the client port serves HTTPS and wss:// (with IM_TLS_KEY_FILE)"))
    tls_key_file: Path | None = field(default=None, metadata=setting(
        "IM_TLS_KEY_FILE", "PEM private key of IM_TLS_CERT_FILE"))
    http_head_timeout: float = field(default=10.0, metadata=setting(
        "IM_HTTP_HEAD_TIMEOUT", "seconds a client has to send a whole request head, from its first byte, "
        "however slowly the bytes come (408, closed); also the TLS handshake's limit"))
    http_body_timeout: float = field(default=30.0, metadata=setting(
        "IM_HTTP_BODY_TIMEOUT", "seconds a client has to send a whole request body after its head (408, closed)"))
    http_idle_timeout: float = field(default=30.0, metadata=setting(
        "IM_HTTP_IDLE_TIMEOUT", "seconds a connection without a WebSocket may wait for its next request"))
    http_max_head_bytes: int = field(default=16 * 1024, metadata=setting(
        "IM_HTTP_MAX_HEAD_BYTES", "largest request line + headers, checked on every read (431, closed)"))
    http_max_body_bytes: int = field(default=64 * 1024, metadata=setting(
        "IM_HTTP_MAX_BODY_BYTES", "largest request body (413, closed)"))
    max_connections: int = field(default=0, metadata=setting(
        "IM_MAX_CONNECTIONS", "client connections this process holds; past it 503 and closed (0: the "
        f"open-file limit, raised to its hard limit, less 10% and at least {FILES_KEPT_FREE})"))
    max_connections_per_address: int = field(default=0, metadata=setting(
        "IM_MAX_CONNECTIONS_PER_ADDRESS", "connections one client address may hold; past it 429 and closed "
        "(0 = off; behind a proxy set IM_TRUSTED_PROXIES too)"))
    trusted_proxies: str = field(default="", metadata=setting(
        "IM_TRUSTED_PROXIES", "comma-separated addresses or networks (10.0.0.0/8) whose X-Forwarded-For names "
        "the client; from any other peer the header is ignored"))
    cors_origins: str = field(default="", metadata=setting(
        "IM_CORS_ORIGINS", "comma-separated origins (https://app.example.com) whose pages may call the API "
        "besides the server's own; * for any (default: same origin only)"))
    typing_interval: float = field(default=3.0, metadata=setting(
        "IM_TYPING_INTERVAL_SECONDS", "at most one typing frame per sender and conversation is forwarded per "
        "this many seconds; the others are dropped"))
    access_log: bool = field(default=True, metadata=setting(
        "IM_ACCESS_LOG", "an INFO line on im.access per HTTP request and per WebSocket session (never a token)"))

    def __post_init__(self) -> None:
        at_least("IM_HEARTBEAT_INTERVAL", self.heartbeat_interval, 0.1)
        at_least("IM_HEARTBEAT_TIMEOUT", self.heartbeat_timeout, 0.1)
        at_least("IM_RATE_LIMIT", self.rate_limit, 0)
        at_least("IM_RATE_BURST", self.rate_burst, 1)
        at_least("IM_USER_RATE_LIMIT", self.user_rate_limit, 0)
        at_least("IM_USER_RATE_BURST", self.user_rate_burst, 1)
        at_least("IM_SEND_QUEUE_BYTES", self.send_queue_bytes, 1024)
        at_least("IM_DRAIN_SECONDS", self.drain_seconds, 0)
        both_or_neither("IM_TLS_CERT_FILE", self.tls_cert_file, "IM_TLS_KEY_FILE", self.tls_key_file)
        at_least("IM_HTTP_HEAD_TIMEOUT", self.http_head_timeout, 0.5)
        at_least("IM_HTTP_BODY_TIMEOUT", self.http_body_timeout, 0.5)
        at_least("IM_HTTP_IDLE_TIMEOUT", self.http_idle_timeout, 0.5)
        at_least("IM_HTTP_MAX_HEAD_BYTES", self.http_max_head_bytes, 1024)
        at_least("IM_HTTP_MAX_BODY_BYTES", self.http_max_body_bytes, 1024)
        at_least("IM_TYPING_INTERVAL_SECONDS", self.typing_interval, 0)
        at_least("IM_MAX_CONNECTIONS", self.max_connections, 0)
        at_least("IM_MAX_CONNECTIONS_PER_ADDRESS", self.max_connections_per_address, 0)
        _networks(self.trusted_proxies)
        _origins(self.cors_origins)

    def limits(self) -> Limits:
        return Limits(
            messages_per_second=self.rate_limit or None, message_burst=self.rate_burst,
            user_messages_per_second=(self.user_rate_limit or None) if self.rate_limit else None,
            user_message_burst=self.user_rate_burst, max_send_queue_bytes=self.send_queue_bytes,
        )

    def edge_limits(self) -> EdgeLimits:
        return EdgeLimits(
            head_timeout_seconds=self.http_head_timeout, body_timeout_seconds=self.http_body_timeout,
            idle_timeout_seconds=self.http_idle_timeout, max_head_bytes=self.http_max_head_bytes,
            max_body_bytes=self.http_max_body_bytes,
            max_connections=self.max_connections or derived_max_connections(),
            max_connections_per_address=self.max_connections_per_address or None,
            trusted_proxies=_networks(self.trusted_proxies), cors_origins=_origins(self.cors_origins),
        )

    def gateway_settings(self, **more: Any) -> GatewaySettings:
        return GatewaySettings(
            heartbeat_interval_seconds=self.heartbeat_interval,
            heartbeat_timeout_seconds=self.heartbeat_timeout,
            drain_seconds=self.drain_seconds,
            typing_interval_seconds=self.typing_interval,
            access_log=self.access_log,
            edge=self.edge_limits(),
            **more,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The client port's TLS, when a certificate is configured; a file that does not load stops the start."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"IM_TLS_CERT_FILE / IM_TLS_KEY_FILE: cannot load them: {exc}") from exc
        return context


def derived_max_connections() -> int:
    """The open-file limit (the soft one raised to the hard one where allowed), less what stays free."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(1, soft - max(FILES_KEPT_FREE, soft // 10))


def _networks(text: str) -> tuple[Network, ...]:
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"IM_TRUSTED_PROXIES: {item!r} is not an address or network") from None
    return tuple(networks)


def _origins(text: str) -> frozenset[str]:
    origins = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        scheme, sep, host = item.partition("://")
        if item != "*" and (scheme not in ("http", "https") or not sep or not host or "/" in host):
            raise ConfigError(f"IM_CORS_ORIGINS: {item!r} is not an origin like https://app.example.com")
        origins.add(item)
    return frozenset(origins)
