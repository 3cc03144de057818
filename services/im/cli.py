"""The `im` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from im.config import ConfigError, add_flags, load
from im.standalone import ServeConfig, serve

__all__ = ["main", "run"]


def run(coroutine: object) -> None:
    """Run on uvloop where it is installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    else:
        uvloop.run(coroutine)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="im", description="imcluster instant-messaging server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="gateway and logic in one process on SQLite")
    add_flags(serve_parser, ServeConfig)
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            config = load(ServeConfig, os.environ, vars(args))
        except ConfigError as error:
            sys.exit(f"im serve: bad setting: {error}")
        logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        run(serve(config))
