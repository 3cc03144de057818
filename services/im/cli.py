"""The `im` command."""

from __future__ import annotations

import sys

from im.apps.entry import run_app
from im.apps.standalone import ServeConfig, serve

__all__ = ["main"]

USAGE = """usage: im serve [options]

  serve   gateway and logic in one process on SQLite (im serve --help for its options)"""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in {"serve"}:
        sys.exit(USAGE)
    run_app("im serve", ServeConfig, serve, argv=args[1:],
            description="Gateway and logic in one process on SQLite, with a browser chat at /.")
