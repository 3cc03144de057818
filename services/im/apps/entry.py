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

from im.config import ConfigError, add_flags, load

__all__ = ["Pingable", "StartupError", "connect", "run", "run_app", "wait_for_signal"]

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


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("websockets", "aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


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
    configure_logging(getattr(config, "log_level", "INFO"))

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
