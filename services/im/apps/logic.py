"""`im-logic`: the logic role against MySQL, RabbitMQ and Redis, serving gRPC to the gateways."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import grpc
from prometheus_client import start_http_server

from im import metrics
from im.apps.entry import Pingable, StartupError, connect, run_app, wait_for_signal
from im.backends.bus.rabbitmq import RabbitMqBus
from im.backends.sessions.redis import RedisSessions
from im.backends.store.mysql import MySqlStore, parse_mysql_url
from im.config import ConfigError, at_least, check_url, setting
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import MIN_SECRET_BYTES, TokenCodec
from im.rpc.server import drain, serve_logic, set_serving

__all__ = ["LogicConfig", "main", "run_logic"]

log = logging.getLogger("im.logic")


@dataclass(frozen=True, slots=True)
class LogicConfig:
    mysql_url: str = field(metadata=setting("IM_MYSQL_URL", "mysql://user:pass@host:port/db"))
    redis_url: str = field(metadata=setting("IM_REDIS_URL", "redis://host:port/db"))
    rabbitmq_url: str = field(metadata=setting("IM_RABBITMQ_URL", "amqp://user:pass@host:port/vhost"))
    jwt_secret: str = field(metadata=setting("IM_JWT_SECRET", "HS256 secret shared with the gateways"))
    grpc_host: str = field(default="0.0.0.0", metadata=setting("IM_GRPC_HOST", "address for gRPC"))
    grpc_port: int = field(default=50051, metadata=setting("IM_GRPC_PORT", "gRPC port for the gateways"))
    metrics_port: int = field(default=9100, metadata=setting("IM_METRICS_PORT", "Prometheus /metrics (0 = off)"))
    shards: int = field(default=8, metadata=setting(
        "IM_SHARDS", "uplink queues, the same on every process: at least the logic replicas that should share "
        "the work; fewer means fuller AMQP messages and lower latency (docs/benchmarks.md)"))
    prefetch: int = field(default=32, metadata=setting("IM_PREFETCH", "unacked AMQP messages per shard"))
    batch_max_size: int = field(default=500, metadata=setting("IM_BATCH_MAX_SIZE", "messages per commit"))
    batch_max_delay_ms: float = field(default=5.0, metadata=setting(
        "IM_BATCH_MAX_DELAY_MS", "longest wait for a batch to fill"))
    mysql_pool_size: int = field(default=10, metadata=setting("IM_MYSQL_POOL_SIZE", "MySQL connections"))
    token_ttl_seconds: int = field(default=86400, metadata=setting("IM_TOKEN_TTL_SECONDS", "login lifetime"))
    session_ttl_seconds: float = field(default=60.0, metadata=setting(
        "IM_SESSION_TTL_SECONDS", "how long a session entry outlives its gateway's last refresh"))
    redis_key_prefix: str = field(default="im:", metadata=setting("IM_REDIS_PREFIX", "prefix of every Redis key"))
    health_check_seconds: float = field(default=5.0, metadata=setting(
        "IM_HEALTH_CHECK_SECONDS", "how often the dependencies are checked for gRPC health"))
    log_level: str = field(default="INFO", metadata=setting("IM_LOG_LEVEL", "DEBUG, INFO, WARNING"))

    def __post_init__(self) -> None:
        try:
            parse_mysql_url(self.mysql_url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        check_url("IM_REDIS_URL", self.redis_url, ("redis", "rediss"))
        check_url("IM_RABBITMQ_URL", self.rabbitmq_url, ("amqp", "amqps"))
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"IM_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes")
        at_least("IM_SHARDS", self.shards, 1)
        at_least("IM_PREFETCH", self.prefetch, 1)
        at_least("IM_BATCH_MAX_SIZE", self.batch_max_size, 1)
        at_least("IM_BATCH_MAX_DELAY_MS", self.batch_max_delay_ms, 0)
        at_least("IM_MYSQL_POOL_SIZE", self.mysql_pool_size, 1)
        at_least("IM_SESSION_TTL_SECONDS", self.session_ttl_seconds, 1)
        at_least("IM_HEALTH_CHECK_SECONDS", self.health_check_seconds, 0.1)


async def run_logic(config: LogicConfig) -> None:
    metrics.export("logic")
    store = MySqlStore(config.mysql_url, pool_size=config.mysql_pool_size)
    bus = RabbitMqBus(config.rabbitmq_url, shards=config.shards, prefetch=config.prefetch)
    sessions = RedisSessions(config.redis_url, key_prefix=config.redis_key_prefix,
                             ttl_seconds=config.session_ttl_seconds)
    await connect("IM_MYSQL_URL", store.open())
    await connect("IM_RABBITMQ_URL", bus.start())
    await connect("IM_REDIS_URL", sessions.start())
    tokens = TokenCodec(config.jwt_secret, ttl_seconds=config.token_ttl_seconds)
    logic = Logic(store, bus, sessions, tokens, LogicSettings(
        batch_max_size=config.batch_max_size, batch_max_delay_ms=config.batch_max_delay_ms,
    ))
    try:
        server = await serve_logic(logic, config.grpc_host, config.grpc_port, verify_token=tokens.verify)
    except OSError as exc:
        raise StartupError(f"IM_GRPC_PORT: {exc}") from exc
    if config.metrics_port:
        start_http_server(config.metrics_port)
    await logic.start()
    log.info("logic serving gRPC on %s:%d", config.grpc_host, config.grpc_port)
    health = asyncio.create_task(_report_health(server, config.health_check_seconds, store, bus))

    await wait_for_signal()
    log.info("stopping: committing what was taken from the bus")
    health.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await health
    await logic.close()
    await drain(server, grace=5.0)
    await bus.close()
    await sessions.close()
    await store.close()
    log.info("stopped")


async def _report_health(server: grpc.aio.Server, period: float, *dependencies: Pingable) -> None:
    """gRPC health follows the store and the bus: NOT_SERVING while either is down."""
    serving = True
    while True:
        await asyncio.sleep(period)
        try:
            for dependency in dependencies:
                await asyncio.wait_for(dependency.ping(), period)
            healthy = True
        except Exception as exc:  # noqa: BLE001 - reported through health
            log.warning("a dependency is down: %r", exc)
            healthy = False
        if healthy != serving:
            serving = healthy
            await set_serving(server, serving)


def main(argv: list[str] | None = None) -> None:
    run_app("im-logic", LogicConfig, run_logic, argv=argv,
            description="The logic role: gRPC for gateways, RabbitMQ consumer, MySQL writer.")
