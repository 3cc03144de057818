"""What every entry point does: flags and environment into a config, logging, uvloop, a clear exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from prometheus_client import start_http_server
from pythonjsonlogger.json import JsonFormatter

from im.config import ConfigError, add_flags, load, setting

__all__ = [
    "LOG_FORMAT", "LOG_LEVEL", "Pingable", "StartupError", "check_logging", "connect", "run", "run_app",
    "serve_metrics", "wait_for_signal",
]

LOG_LEVEL = setting("IM_LOG_LEVEL", "DEBUG, INFO, WARNING")
LOG_FORMAT = setting("IM_LOG_FORMAT", "text, or json: one JSON object a line (time, level, logger, message and "
                                      "the fields of access lines), for a log collector")
LOG_FORMATS = ("text", "json")

C = TypeVar("C")


class Pingable(Protocol):
    async def ping(self) -> None: ...


async def connect(setting_name: str, start: Awaitable[None]) -> None:
    """Await a backend's start; a failure stops the process with one line naming the setting."""
    try:
        await start
    except Exception as exc:
        raise StartupError(f"{setting_name}: {exc}") from exc


class StartupError(Exception):
    """The process cannot start (a dependency refuses or cannot be reached); the message says which."""


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def check_logging(level: str, log_format: str) -> None:
    """Refuse a log level or format the process could not apply, naming the setting."""
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ConfigError(f"IM_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {level!r}")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"IM_LOG_FORMAT: expected text or json, got {log_format!r}")


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for noisy in ("websockets", "aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Prometheus `/metrics` on its own port (never the client port); 0 leaves it off."""
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise StartupError(f"IM_METRICS_PORT: {host}:{port}: {exc}") from exc


def run_app(
    prog: str, config_type: type[C], app: Callable[[C], Awaitable[None]], *,
    argv: list[str] | None = None, description: str = "",
) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_flags(parser, config_type)
    args = parser.parse_args(argv)
    try:
        config = load(config_type, os.environ, vars(args))
    except ConfigError as error:
        sys.exit(f"{prog}: bad setting: {error}")
    configure_logging(getattr(config, "log_level", "INFO"), getattr(config, "log_format", "text"))

    async def main() -> None:
        await app(config)

    try:
        run(main())
    except StartupError as error:
        sys.exit(f"{prog}: cannot start: {error}")


async def wait_for_signal() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
