"""`im-gateway`: the gateway role, asking logic over gRPC and talking to RabbitMQ and Redis."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from im import metrics
from im.apps.connection_settings import ConnectionSettings
from im.apps.entry import (
    LOG_FORMAT,
    LOG_LEVEL,
    StartupError,
    check_logging,
    connect,
    run_app,
    serve_metrics,
    wait_for_signal,
)
from im.apps.grpc_tls import GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE
from im.backends.bus.rabbitmq import RabbitMqBus
from im.backends.leases import ShardRoutes
from im.backends.sessions.redis import RedisSessions
from im.config import ConfigError, at_least, both_or_neither, check_url, setting
from im.contracts.envelopes import (
    ENVELOPE_VERSION,
    ENVELOPE_VERSIONS,
    EVENTS_ENVELOPE_VERSION,
    TYPING_ENVELOPE_VERSION,
)
from im.gateway.server import Gateway
from im.protocol.errors import Unavailable
from im.protocol.tokens import MIN_SECRET_BYTES, TokenCodec
from im.rpc.client import GrpcLogicClient
from im.rpc.tls import channel_credentials

__all__ = ["GatewayConfig", "main", "run_gateway"]

log = logging.getLogger("im.gateway")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig(ConnectionSettings):
    redis_url: str = field(metadata=setting("IM_REDIS_URL", "redis://host:port/db", secret=True))
    rabbitmq_url: str = field(metadata=setting("IM_RABBITMQ_URL", "amqp://user:pass@host:port/vhost", secret=True))
    jwt_secret: str = field(metadata=setting("IM_JWT_SECRET", "HS256 secret shared with logic", secret=True))
    logic_addr: str = field(metadata=setting("IM_LOGIC_ADDR", "logic's gRPC target, host:port"))
    host: str = field(default="0.0.0.0", metadata=setting("IM_HOST", "address for HTTP + WebSocket"))
    port: int = field(default=8080, metadata=setting("IM_PORT", "HTTP + WebSocket port"))
    metrics_port: int = field(default=9100, metadata=setting("IM_METRICS_PORT", "Prometheus /metrics (0 = off)"))
    gateway_id: str = field(default_factory=socket.gethostname, metadata=setting(
        "IM_GATEWAY_ID", "unique per gateway; names its downlink queue (default: host name)"))
    shards: int = field(default=8, metadata=setting("IM_SHARDS", "uplink queues; same value as logic"))
    amqp_heartbeat_seconds: int = field(default=3, metadata=setting(
        "IM_AMQP_HEARTBEAT_SECONDS", "AMQP heartbeat timeout: how soon a silent broker connection counts as lost"))
    bus_envelope_version: int = field(default=ENVELOPE_VERSION, metadata=setting(
        "IM_BUS_ENVELOPE_VERSION", "uplink envelope version written: 1 while logic replicas older than "
        "versioned envelopes still run (a rolling upgrade), 2 while ones that read sends only do (edit, recall "
        "and read frames are refused with `unavailable` meanwhile), 3 while ones that cannot relay typing do (typing "
        "frames are dropped meanwhile), else the newest"))
    uplink_linger_ms: float = field(default=8.0, metadata=setting(
        "IM_UPLINK_LINGER_MS", "how long a send waits for others to share its RabbitMQ message"))
    session_ttl_seconds: float = field(default=60.0, metadata=setting(
        "IM_SESSION_TTL_SECONDS", "how long a session entry outlives this gateway's last refresh"))
    redis_key_prefix: str = field(default="im:", metadata=setting("IM_REDIS_PREFIX", "prefix of every Redis key"))
    logic_timeout_seconds: float = field(default=3.0, metadata=setting(
        "IM_LOGIC_TIMEOUT_SECONDS", "deadline of each gRPC call to logic, retries included"))
    grpc_tls_cert_file: Path | None = field(default=None, metadata=GRPC_TLS_CERT_FILE)
    grpc_tls_key_file: Path | None = field(default=None, metadata=GRPC_TLS_KEY_FILE)
    grpc_tls_ca_file: Path | None = field(default=None, metadata=GRPC_TLS_CA_FILE)
    log_level: str = field(default="INFO", metadata=LOG_LEVEL)
    log_format: str = field(default="text", metadata=LOG_FORMAT)

    def __post_init__(self) -> None:
        check_logging(self.log_level, self.log_format)
        ConnectionSettings.__post_init__(self)
        at_least("IM_SHARDS", self.shards, 1)
        at_least("IM_AMQP_HEARTBEAT_SECONDS", self.amqp_heartbeat_seconds, 1)
        if self.bus_envelope_version not in ENVELOPE_VERSIONS:
            raise ConfigError(f"IM_BUS_ENVELOPE_VERSION: one of {ENVELOPE_VERSIONS}, got {self.bus_envelope_version}")
        at_least("IM_UPLINK_LINGER_MS", self.uplink_linger_ms, 0)
        at_least("IM_SESSION_TTL_SECONDS", self.session_ttl_seconds, 1)
        at_least("IM_LOGIC_TIMEOUT_SECONDS", self.logic_timeout_seconds, 0.1)
        both_or_neither(
            "IM_GRPC_TLS_CERT_FILE", self.grpc_tls_cert_file, "IM_GRPC_TLS_KEY_FILE", self.grpc_tls_key_file)
        if self.grpc_tls_cert_file is not None and self.grpc_tls_ca_file is None:
            raise ConfigError("IM_GRPC_TLS_CERT_FILE: a gateway shows it over TLS only: set IM_GRPC_TLS_CA_FILE too")
        check_url("IM_REDIS_URL", self.redis_url, ("redis", "rediss"))
        check_url("IM_RABBITMQ_URL", self.rabbitmq_url, ("amqp", "amqps"))
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"IM_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes")
        host, sep, port = self.logic_addr.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"IM_LOGIC_ADDR: expected host:port, got {self.logic_addr!r}")
        if not self.gateway_id or not self.gateway_id.replace("-", "").replace(".", "").isalnum():
            raise ConfigError(f"IM_GATEWAY_ID: letters, digits, '-' and '.' only, got {self.gateway_id!r}")


async def run_gateway(config: GatewayConfig) -> None:
    metrics.export("gateway")
    routes = ShardRoutes(config.redis_url, shards=config.shards, key_prefix=config.redis_key_prefix)
    bus = RabbitMqBus(config.rabbitmq_url, gateway_id=config.gateway_id, shards=config.shards,
                      heartbeat=config.amqp_heartbeat_seconds, envelope_version=config.bus_envelope_version,
                      routes=routes.wanted)
    sessions = RedisSessions(config.redis_url, key_prefix=config.redis_key_prefix,
                             ttl_seconds=config.session_ttl_seconds)
    await connect("IM_RABBITMQ_URL", bus.start())
    await connect("IM_REDIS_URL", sessions.start())
    await routes.start()
    credentials = None
    if config.grpc_tls_ca_file is not None:
        credentials = channel_credentials(config.grpc_tls_ca_file, config.grpc_tls_cert_file, config.grpc_tls_key_file)
    logic = GrpcLogicClient(config.logic_addr, timeout=config.logic_timeout_seconds, credentials=credentials)
    tokens = TokenCodec(config.jwt_secret)

    async def ready() -> None:
        await bus.ping()
        await sessions.ping()
        if not await logic.serving(timeout=1.0):
            raise Unavailable("logic is not serving")

    gateway = Gateway(
        logic, tokens, bus, sessions, readiness=ready,
        limits=config.limits(),
        settings=config.gateway_settings(
            gateway_id=config.gateway_id, session_refresh_seconds=config.session_ttl_seconds / 3,
            uplink_linger_seconds=config.uplink_linger_ms / 1000,
            inbox_events=config.bus_envelope_version >= EVENTS_ENVELOPE_VERSION,
            ephemeral_uplinks=config.bus_envelope_version >= TYPING_ENVELOPE_VERSION,
            presence_recheck_seconds=config.session_ttl_seconds / 3,
        ),
    )
    tls = config.tls_context()
    try:
        await gateway.start(config.host, config.port, tls=tls)
    except OSError as exc:
        raise StartupError(f"IM_PORT: {exc}") from exc
    serve_metrics(config.metrics_port)
    log.info("gateway %s on %s://%s:%d, logic at %s", config.gateway_id, "https" if tls else "http",
             config.host, config.port, config.logic_addr)

    await wait_for_signal()
    log.info("draining")
    await gateway.drain()
    await gateway.close()
    await bus.close()
    await routes.close()
    await sessions.close()
    await logic.close()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    run_app("im-gateway", GatewayConfig, run_gateway, argv=argv,
            description="The gateway role: WebSocket + HTTP for clients.")
