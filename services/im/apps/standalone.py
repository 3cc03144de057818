"""`im serve`: gateway and logic in one process on SQLite, with the in-process bus and session map."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from im import metrics
from im.apps.connection_settings import ConnectionSettings
from im.apps.entry import wait_for_signal
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
    data_dir: Path = field(default=Path("data"), metadata=setting("IM_DATA_DIR", "where the SQLite file lives"))
    jwt_secret: str | None = field(default=None, metadata=setting(
        "IM_JWT_SECRET", "HS256 secret; generated and kept in the data dir when not given"))
    token_ttl_seconds: int = field(default=86400, metadata=setting("IM_TOKEN_TTL_SECONDS", "login lifetime"))
    batch_max_size: int = field(default=500, metadata=setting("IM_BATCH_MAX_SIZE", "messages per commit"))
    batch_max_delay_ms: float = field(default=5.0, metadata=setting(
        "IM_BATCH_MAX_DELAY_MS", "longest wait for a batch to fill"))
    sqlite_synchronous: str = field(default="FULL", metadata=setting(
        "IM_SQLITE_SYNCHRONOUS", "FULL (fsync each commit) or NORMAL"))
    log_level: str = field(default="INFO", metadata=setting("IM_LOG_LEVEL", "DEBUG, INFO, WARNING"))

    def __post_init__(self) -> None:
        ConnectionSettings.__post_init__(self)
        at_least("IM_BATCH_MAX_SIZE", self.batch_max_size, 1)
        at_least("IM_BATCH_MAX_DELAY_MS", self.batch_max_delay_ms, 0)
        at_least("IM_TOKEN_TTL_SECONDS", self.token_ttl_seconds, 1)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"IM_PORT: {self.port} is not a port number")
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
    ))
    await logic.start()
    gateway = Gateway(
        logic, tokens, bus, sessions, limits=config.limits(), settings=config.gateway_settings(),
        readiness=store.ping,
    )
    await gateway.start(config.host, config.port)
    print(f"im serve: listening on http://{config.host}:{gateway.ports[0]} (data in {config.data_dir})", flush=True)
    await wait_for_signal()
    log.info("draining")
    await gateway.drain()
    await logic.close()
    await gateway.close()
    await bus.close()
    await store.close()
    log.info("stopped")
