"""`im-gateway`: the gateway role, asking logic over gRPC and talking to RabbitMQ and Redis."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field

from prometheus_client import start_http_server

from im import metrics
from im.apps.connection_settings import ConnectionSettings
from im.apps.entry import StartupError, connect, run_app, wait_for_signal
from im.backends.bus.rabbitmq import RabbitMqBus
from im.backends.sessions.redis import RedisSessions
from im.config import ConfigError, at_least, check_url, setting
from im.gateway.server import Gateway
from im.protocol.errors import Unavailable
from im.protocol.tokens import MIN_SECRET_BYTES, TokenCodec
from im.rpc.client import GrpcLogicClient

__all__ = ["GatewayConfig", "main", "run_gateway"]

log = logging.getLogger("im.gateway")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig(ConnectionSettings):
    redis_url: str = field(metadata=setting("IM_REDIS_URL", "redis://host:port/db"))
    rabbitmq_url: str = field(metadata=setting("IM_RABBITMQ_URL", "amqp://user:pass@host:port/vhost"))
    jwt_secret: str = field(metadata=setting("IM_JWT_SECRET", "HS256 secret shared with logic"))
    logic_addr: str = field(metadata=setting("IM_LOGIC_ADDR", "logic's gRPC target, host:port"))
    host: str = field(default="0.0.0.0", metadata=setting("IM_HOST", "address for HTTP + WebSocket"))
    port: int = field(default=8080, metadata=setting("IM_PORT", "HTTP + WebSocket port"))
    metrics_port: int = field(default=9100, metadata=setting("IM_METRICS_PORT", "Prometheus /metrics (0 = off)"))
    gateway_id: str = field(default_factory=socket.gethostname, metadata=setting(
        "IM_GATEWAY_ID", "unique per gateway; names its downlink queue (default: host name)"))
    shards: int = field(default=8, metadata=setting("IM_SHARDS", "uplink queues; same value as logic"))
    uplink_linger_ms: float = field(default=8.0, metadata=setting(
        "IM_UPLINK_LINGER_MS", "how long a send waits for others to share its RabbitMQ message"))
    session_ttl_seconds: float = field(default=60.0, metadata=setting(
        "IM_SESSION_TTL_SECONDS", "how long a session entry outlives this gateway's last refresh"))
    redis_key_prefix: str = field(default="im:", metadata=setting("IM_REDIS_PREFIX", "prefix of every Redis key"))
    logic_timeout_seconds: float = field(default=3.0, metadata=setting(
        "IM_LOGIC_TIMEOUT_SECONDS", "deadline of each gRPC call to logic, retries included"))
    log_level: str = field(default="INFO", metadata=setting("IM_LOG_LEVEL", "DEBUG, INFO, WARNING"))

    def __post_init__(self) -> None:
        ConnectionSettings.__post_init__(self)
        at_least("IM_SHARDS", self.shards, 1)
        at_least("IM_UPLINK_LINGER_MS", self.uplink_linger_ms, 0)
        at_least("IM_SESSION_TTL_SECONDS", self.session_ttl_seconds, 1)
        at_least("IM_LOGIC_TIMEOUT_SECONDS", self.logic_timeout_seconds, 0.1)
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
    bus = RabbitMqBus(config.rabbitmq_url, gateway_id=config.gateway_id, shards=config.shards)
    sessions = RedisSessions(config.redis_url, key_prefix=config.redis_key_prefix,
                             ttl_seconds=config.session_ttl_seconds)
    await connect("IM_RABBITMQ_URL", bus.start())
    await connect("IM_REDIS_URL", sessions.start())
    logic = GrpcLogicClient(config.logic_addr, timeout=config.logic_timeout_seconds)
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
        ),
    )
    try:
        await gateway.start(config.host, config.port)
    except OSError as exc:
        raise StartupError(f"IM_PORT: {exc}") from exc
    if config.metrics_port:
        start_http_server(config.metrics_port)
    log.info("gateway %s on %s:%d, logic at %s", config.gateway_id, config.host, config.port, config.logic_addr)

    await wait_for_signal()
    log.info("draining")
    await gateway.drain()
    await gateway.close()
    await bus.close()
    await sessions.close()
    await logic.close()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    run_app("im-gateway", GatewayConfig, run_gateway, argv=argv,
            description="The gateway role: WebSocket + HTTP for clients.")
