"""`im-logic`: the logic role against MySQL, RabbitMQ and Redis, serving gRPC to the gateways."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from im import metrics
from im.apps.entry import (
    LOG_FORMAT,
    LOG_LEVEL,
    Pingable,
    StartupError,
    check_logging,
    connect,
    run_app,
    serve_metrics,
    wait_for_signal,
)
from im.apps.grpc_tls import GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE
from im.apps.pipeline_settings import EDIT_WINDOW, FLUSH_TIMEOUT, RECALL_WINDOW, check_windows
from im.backends.bus.rabbitmq import RabbitMqBus
from im.backends.leases import ShardLeases
from im.backends.sessions.redis import RedisSessions
from im.backends.store.mysql import MySqlStore, parse_mysql_url
from im.config import ConfigError, at_least, both_or_neither, check_url, setting
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import MIN_SECRET_BYTES, TokenCodec
from im.rpc.server import drain, serve_logic, set_serving
from im.rpc.tls import server_credentials

__all__ = ["LogicConfig", "main", "run_logic"]

log = logging.getLogger("im.logic")


@dataclass(frozen=True, slots=True)
class LogicConfig:
    mysql_url: str = field(metadata=setting("IM_MYSQL_URL", "mysql://user:pass@host:port/db", secret=True))
    redis_url: str = field(metadata=setting("IM_REDIS_URL", "redis://host:port/db", secret=True))
    rabbitmq_url: str = field(metadata=setting("IM_RABBITMQ_URL", "amqp://user:pass@host:port/vhost", secret=True))
    jwt_secret: str = field(metadata=setting("IM_JWT_SECRET", "HS256 secret shared with the gateways", secret=True))
    grpc_host: str = field(default="127.0.0.1", metadata=setting(
        "IM_GRPC_HOST", "address for gRPC: loopback unless told (the images and the operator set 0.0.0.0)"))
    grpc_port: int = field(default=50051, metadata=setting("IM_GRPC_PORT", "gRPC port for the gateways"))
    metrics_port: int = field(default=9100, metadata=setting("IM_METRICS_PORT", "Prometheus /metrics (0 = off)"))
    shards: int = field(default=8, metadata=setting(
        "IM_SHARDS", "uplink shard queues, the same on every process: the most logic replicas that can share "
        "the work (each replica consumes shards/replicas of them); does not change latency"))
    prefetch: int = field(default=128, metadata=setting("IM_PREFETCH", "unacked AMQP messages per shard"))
    replica_id: str = field(default="", metadata=setting(
        "IM_REPLICA_ID", "this replica's name in the shard leases, unique per process (default: host name and "
        "a random part)"))
    shard_lease_seconds: float = field(default=8.0, metadata=setting(
        "IM_SHARD_LEASE_SECONDS", "a replica that stops renewing its shard leases (hung, or its consumer stalled "
        "this long) loses them after this many seconds"))
    amqp_heartbeat_seconds: int = field(default=3, metadata=setting(
        "IM_AMQP_HEARTBEAT_SECONDS", "AMQP heartbeat timeout: RabbitMQ drops a replica it has not heard from "
        "in about this long, and its shards move"))
    batch_max_size: int = field(default=500, metadata=setting("IM_BATCH_MAX_SIZE", "messages per commit"))
    batch_max_delay_ms: float = field(default=5.0, metadata=setting(
        "IM_BATCH_MAX_DELAY_MS", "longest wait for a batch to fill"))
    flush_timeout_seconds: float = field(default=5.0, metadata=FLUSH_TIMEOUT)
    edit_window_seconds: float = field(default=900.0, metadata=EDIT_WINDOW)
    recall_window_seconds: float = field(default=120.0, metadata=RECALL_WINDOW)
    mysql_pool_size: int = field(default=10, metadata=setting("IM_MYSQL_POOL_SIZE", "MySQL connections"))
    token_ttl_seconds: int = field(default=86400, metadata=setting("IM_TOKEN_TTL_SECONDS", "login lifetime"))
    session_ttl_seconds: float = field(default=60.0, metadata=setting(
        "IM_SESSION_TTL_SECONDS", "how long a session entry outlives its gateway's last refresh"))
    redis_key_prefix: str = field(default="im:", metadata=setting("IM_REDIS_PREFIX", "prefix of every Redis key"))
    health_check_seconds: float = field(default=5.0, metadata=setting(
        "IM_HEALTH_CHECK_SECONDS", "how often the dependencies are checked for gRPC health"))
    grpc_tls_cert_file: Path | None = field(default=None, metadata=GRPC_TLS_CERT_FILE)
    grpc_tls_key_file: Path | None = field(default=None, metadata=GRPC_TLS_KEY_FILE)
    grpc_tls_ca_file: Path | None = field(default=None, metadata=GRPC_TLS_CA_FILE)
    log_level: str = field(default="INFO", metadata=LOG_LEVEL)
    log_format: str = field(default="text", metadata=LOG_FORMAT)

    def __post_init__(self) -> None:
        check_logging(self.log_level, self.log_format)
        try:
            parse_mysql_url(self.mysql_url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        both_or_neither(
            "IM_GRPC_TLS_CERT_FILE", self.grpc_tls_cert_file, "IM_GRPC_TLS_KEY_FILE", self.grpc_tls_key_file)
        if self.grpc_tls_ca_file is not None and self.grpc_tls_cert_file is None:
            raise ConfigError("IM_GRPC_TLS_CA_FILE: mutual TLS needs logic's own IM_GRPC_TLS_CERT_FILE too")
        check_url("IM_REDIS_URL", self.redis_url, ("redis", "rediss"))
        check_url("IM_RABBITMQ_URL", self.rabbitmq_url, ("amqp", "amqps"))
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"IM_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes")
        at_least("IM_SHARDS", self.shards, 1)
        at_least("IM_PREFETCH", self.prefetch, 1)
        at_least("IM_SHARD_LEASE_SECONDS", self.shard_lease_seconds, 3)
        if self.replica_id and not self.replica_id.replace("-", "").replace(".", "").isalnum():
            raise ConfigError(f"IM_REPLICA_ID: letters, digits, '-' and '.' only, got {self.replica_id!r}")
        at_least("IM_AMQP_HEARTBEAT_SECONDS", self.amqp_heartbeat_seconds, 1)
        at_least("IM_BATCH_MAX_SIZE", self.batch_max_size, 1)
        at_least("IM_BATCH_MAX_DELAY_MS", self.batch_max_delay_ms, 0)
        at_least("IM_FLUSH_TIMEOUT_SECONDS", self.flush_timeout_seconds, 0)
        check_windows(self.edit_window_seconds, self.recall_window_seconds)
        at_least("IM_MYSQL_POOL_SIZE", self.mysql_pool_size, 1)
        at_least("IM_SESSION_TTL_SECONDS", self.session_ttl_seconds, 1)
        at_least("IM_HEALTH_CHECK_SECONDS", self.health_check_seconds, 0.1)


async def run_logic(config: LogicConfig) -> None:
    metrics.export("logic")
    store = MySqlStore(config.mysql_url, pool_size=config.mysql_pool_size)
    leases = ShardLeases(config.redis_url, shards=config.shards, key_prefix=config.redis_key_prefix,
                         replica_id=config.replica_id or None, ttl_seconds=config.shard_lease_seconds, fencing=store)
    bus = RabbitMqBus(config.rabbitmq_url, shards=config.shards, prefetch=config.prefetch, leases=leases,
                      heartbeat=config.amqp_heartbeat_seconds, stall_timeout=config.shard_lease_seconds)
    sessions = RedisSessions(config.redis_url, key_prefix=config.redis_key_prefix,
                             ttl_seconds=config.session_ttl_seconds)
    await connect("IM_MYSQL_URL", store.open())
    await connect("IM_RABBITMQ_URL", bus.start())
    await connect("IM_REDIS_URL", sessions.start())
    tokens = TokenCodec(config.jwt_secret, ttl_seconds=config.token_ttl_seconds)
    logic = Logic(store, bus, sessions, tokens, LogicSettings(
        batch_max_size=config.batch_max_size, batch_max_delay_ms=config.batch_max_delay_ms,
        flush_timeout_seconds=config.flush_timeout_seconds, edit_window_seconds=config.edit_window_seconds,
        recall_window_seconds=config.recall_window_seconds,
    ))
    credentials = None
    if config.grpc_tls_cert_file is not None and config.grpc_tls_key_file is not None:
        credentials = server_credentials(config.grpc_tls_cert_file, config.grpc_tls_key_file, config.grpc_tls_ca_file)
    try:
        server = await serve_logic(logic, config.grpc_host, config.grpc_port, verify_token=tokens.verify,
                                   credentials=credentials)
    except OSError as exc:
        raise StartupError(f"IM_GRPC_PORT: {exc}") from exc
    serve_metrics(config.metrics_port)
    await logic.start()
    log.info("logic %s serving gRPC on %s:%d (%s)", leases.replica_id, config.grpc_host, config.grpc_port,
             "plaintext" if credentials is None else "mutual TLS" if config.grpc_tls_ca_file else "TLS")
    health = asyncio.create_task(_report_health(server, config.health_check_seconds, store, bus, logic))

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
    """gRPC health follows the store, the bus and the pipeline: NOT_SERVING while one is down."""
    serving = True
    while True:
        await asyncio.sleep(period)
        try:
            for dependency in dependencies:
                await asyncio.wait_for(dependency.ping(), period)
            healthy = True
        except Exception as exc:  # noqa: BLE001 - reported through health
            if serving:  # once per outage, and INFO: the dependency's own client warns about it
                log.info("gRPC health says NOT_SERVING: a dependency is down: %r", exc)
            healthy = False
        if healthy != serving:
            serving = healthy
            if serving:
                log.info("every dependency answers again, gRPC health says SERVING")
            await set_serving(server, serving)


def main(argv: list[str] | None = None) -> None:
    run_app("im-logic", LogicConfig, run_logic, argv=argv,
            description="The logic role: gRPC for gateways, RabbitMQ consumer, MySQL writer.")
