"""`im serve`: gateway and logic in one process on SQLite, with the in-process bus and session map."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from im import metrics
from im.apps.connection_settings import ConnectionSettings
from im.apps.entry import LOG_FORMAT, LOG_LEVEL, StartupError, check_logging, serve_metrics, wait_for_signal
from im.apps.pipeline_settings import EDIT_WINDOW, FLUSH_TIMEOUT, RECALL_WINDOW, check_windows
from im.backends.bus.memory import MemoryBus
from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.config import ConfigError, at_least, setting
from im.gateway.server import Gateway
from im.logic.service import Logic, LogicSettings
from im.protocol.tokens import MIN_SECRET_BYTES, TokenCodec

__all__ = ["ServeConfig", "serve"]

log = logging.getLogger("im.serve")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig(ConnectionSettings):
    host: str = field(default="127.0.0.1", metadata=setting("IM_HOST", "address to listen on"))
    port: int = field(default=8080, metadata=setting("IM_PORT", "HTTP + WebSocket port"))
    metrics_port: int = field(default=0, metadata=setting(
        "IM_METRICS_PORT", "Prometheus /metrics on its own port, never the client port (0 = off)"))
    metrics_host: str = field(default="127.0.0.1", metadata=setting(
        "IM_METRICS_HOST", "address of the metrics port (loopback: only this machine scrapes it)"))
    data_dir: Path = field(default=Path("data"), metadata=setting("IM_DATA_DIR", "where the SQLite file lives"))
    jwt_secret: str | None = field(default=None, metadata=setting(
        "IM_JWT_SECRET", "HS256 secret; generated and kept in the data dir when not given", secret=True))
    token_ttl_seconds: int = field(default=86400, metadata=setting("IM_TOKEN_TTL_SECONDS", "login lifetime"))
    batch_max_size: int = field(default=500, metadata=setting("IM_BATCH_MAX_SIZE", "messages per commit"))
    batch_max_delay_ms: float = field(default=5.0, metadata=setting(
        "IM_BATCH_MAX_DELAY_MS", "longest wait for a batch to fill"))
    flush_timeout_seconds: float = field(default=5.0, metadata=FLUSH_TIMEOUT)
    edit_window_seconds: float = field(default=900.0, metadata=EDIT_WINDOW)
    recall_window_seconds: float = field(default=120.0, metadata=RECALL_WINDOW)
    sqlite_synchronous: str = field(default="FULL", metadata=setting(
        "IM_SQLITE_SYNCHRONOUS", "FULL (fsync each commit) or NORMAL"))
    log_level: str = field(default="INFO", metadata=LOG_LEVEL)
    log_format: str = field(default="text", metadata=LOG_FORMAT)

    def __post_init__(self) -> None:
        check_logging(self.log_level, self.log_format)
        ConnectionSettings.__post_init__(self)
        at_least("IM_BATCH_MAX_SIZE", self.batch_max_size, 1)
        at_least("IM_BATCH_MAX_DELAY_MS", self.batch_max_delay_ms, 0)
        at_least("IM_TOKEN_TTL_SECONDS", self.token_ttl_seconds, 1)
        at_least("IM_FLUSH_TIMEOUT_SECONDS", self.flush_timeout_seconds, 0)
        check_windows(self.edit_window_seconds, self.recall_window_seconds)
        for name, port in (("IM_PORT", self.port), ("IM_METRICS_PORT", self.metrics_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name}: {port} is not a port number")
        if self.sqlite_synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigError("IM_SQLITE_SYNCHRONOUS: expected FULL, NORMAL or EXTRA")
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"IM_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes")


def jwt_secret(config: ServeConfig) -> str:
    if config.jwt_secret:
        return config.jwt_secret
    path = config.data_dir / "jwt-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


async def serve(config: ServeConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    metrics.export("gateway", "logic")
    tokens = TokenCodec(jwt_secret(config), ttl_seconds=config.token_ttl_seconds)
    store = SqliteStore(config.data_dir / "im.sqlite3", synchronous=config.sqlite_synchronous.upper())  # type: ignore[arg-type]
    await store.open()
    bus = MemoryBus()
    sessions = MemorySessions()
    logic = Logic(store, bus, sessions, tokens, LogicSettings(
        batch_max_size=config.batch_max_size, batch_max_delay_ms=config.batch_max_delay_ms,
        flush_timeout_seconds=config.flush_timeout_seconds, edit_window_seconds=config.edit_window_seconds,
        recall_window_seconds=config.recall_window_seconds, refuse_unwritten_on_close=True,
    ))
    await logic.start()

    async def ready() -> None:
        await store.ping()
        await logic.ping()

    gateway = Gateway(
        logic, tokens, bus, sessions, limits=config.limits(), settings=config.gateway_settings(),
        readiness=ready,
    )
    tls = config.tls_context()
    try:
        await gateway.start(config.host, config.port, tls=tls)
    except OSError as exc:
        raise StartupError(f"IM_PORT: {exc}") from exc
    serve_metrics(config.metrics_port, config.metrics_host)
    scheme = "https" if tls else "http"
    metrics_at = ""
    if config.metrics_port:
        metrics_at = f", metrics on http://{config.metrics_host}:{config.metrics_port}/metrics"
    print(f"im serve: listening on {scheme}://{config.host}:{gateway.ports[0]} (data in {config.data_dir})"
          f"{metrics_at}", flush=True)
    await wait_for_signal()
    log.info("draining")
    # Logic flushes while the gateway drains, so what it cannot commit within the flush timeout is
    # refused to connections that are still open (the drain waits for their answers).
    await asyncio.gather(gateway.drain(), logic.close())
    await gateway.close()
    await bus.close()
    await store.close()
    log.info("stopped")
