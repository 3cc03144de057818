"""Server memory of idle connections that watch presence: `im serve`, N connections, each watching W users.

    .venv/bin/python benchmarks/presence_idle.py [--connections 10000] [--watch 50] [--users 200]

Starts `im serve` (fresh data dir, rate limits off), registers `--users` users, reads the server's
RSS (/proc/<pid>/status), opens `--connections` WebSocket connections spread over the users, and
has each send `{"type":"presence","watch":[W users]}` and wait for its snapshot; after 5 s idle it
reads the RSS again and prints (after - before) / connections. `--watch 0` measures plain idle
connections, for comparison. The target (issue 10): <= 8 KiB per connection watching 50 users.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from im.client import HttpClient  # noqa: E402


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def open_watching(url: str, token: str, watch: list[int]) -> ClientConnection:
    ws = await connect(f"{url}/ws?token={token}", ping_interval=None, max_queue=4)
    if watch:
        await ws.send(orjson.dumps({"type": "presence", "watch": watch}).decode())
        while orjson.loads(await ws.recv())["type"] != "presence":
            pass
    return ws


async def measure(url: str, pid: int, connections: int, watch: int, users: int) -> None:
    http = HttpClient(url)
    stamp = time.time_ns()
    logins = await asyncio.gather(*(http.signup(f"idle{i}-{stamp}@example.test") for i in range(users)))
    ids = [login.user_id for login in logins]
    await asyncio.sleep(2)
    before = rss_bytes(pid)
    started = time.monotonic()
    opened: list[ClientConnection] = []
    for start in range(0, connections, 200):
        opened += await asyncio.gather(*(
            open_watching(url.replace("http", "ws", 1), logins[i % users].token, random.sample(ids, watch))
            for i in range(start, min(connections, start + 200))))
    took = time.monotonic() - started
    await asyncio.sleep(5)
    after = rss_bytes(pid)
    per = (after - before) / connections
    print(f"{connections} connections watching {watch} users each (of {users}), opened in {took:.1f}s: "
          f"RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB, {per / 1024:.2f} KiB per connection")
    await asyncio.gather(*(ws.close() for ws in opened))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--watch", type=int, default=50)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/im"), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir,
             "--rate-limit", "0", "--max-connections-per-address", "0", "--access-log", "false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            asyncio.run(measure(f"http://127.0.0.1:{port}", server.pid, args.connections, args.watch, args.users))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
