"""A plain `websockets` echo server (uvloop, compression off): the ceiling this machine allows.

`python -m im.bench.echo --port 0` prints `listening <port>` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["main"]


async def _echo(ws: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.send(await ws.recv(decode=False), text=True)


async def _serve(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(_echo, host, port, compression=None, max_size=2**22, ping_interval=None) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        sys.stdout.write(f"listening {bound}\n")
        sys.stdout.flush()
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m im.bench.echo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    from im.bench.loop import run

    run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
