"""Presence under churn while messages flow: `im serve`, 200 connects and 200 disconnects per second
of watched users, `im-bench latency` sending 2,000 msg/s beside it.

    .venv/bin/python benchmarks/presence_churn.py [--churn 200] [--rate 2000] [--duration 20]

Starts `im serve` (fresh data dir, rate limits off). 50 watcher connections each watch 50 of 400
churning users. For `--duration` seconds a churner connects every 1/churn s and stays about a second,
so about `churn` connects and as many disconnects happen each second; meanwhile `im-bench latency
--rate R` runs against the same server. Presence latency = from a churner's connection open (its
handshake answered) to the first watcher's frame saying it is online. Prints the presence p50 / p99
and the messages' p99 from im-bench. Targets (issue 10): message p99 <= 50 ms, presence p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from im.client import HttpClient  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WATCHERS = 50
CHURNERS = 400
WATCHED = 50


async def run(url: str, metrics_url: str, churn: float, rate: float, duration: float) -> None:
    http = HttpClient(url)
    ws_url = url.replace("http", "ws", 1)
    stamp = time.time_ns()
    logins = await asyncio.gather(*(http.signup(f"churn{i}-{stamp}@example.test") for i in range(WATCHERS + CHURNERS)))
    watchers, churners = logins[:WATCHERS], logins[WATCHERS:]
    opened_at: dict[int, float] = {}
    latencies: list[float] = []

    async def watch(token: str) -> None:
        ws = await connect(f"{ws_url}/ws?token={token}", ping_interval=None)
        await ws.send(orjson.dumps({"type": "presence",
                                    "watch": random.sample([c.user_id for c in churners], WATCHED)}).decode())
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame["type"] != "presence":
                continue
            now = time.monotonic()
            for user in frame["users"]:
                at = opened_at.pop(user["user_id"], None) if user["online"] else None
                if at is not None:
                    latencies.append(now - at)

    watching = [asyncio.create_task(watch(w.token)) for w in watchers]
    await asyncio.sleep(2)
    bench = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv/bin/im-bench"), "latency", "--url", url, "--metrics-url", metrics_url,
        "--rate", str(rate), "--duration", str(duration),
        "--json", "--quiet", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    idle = list(churners)
    random.shuffle(idle)

    async def one(login: object) -> None:
        ws = await connect(f"{ws_url}/ws?token={login.token}", ping_interval=None)  # type: ignore[attr-defined]
        opened_at.setdefault(login.user_id, time.monotonic())  # type: ignore[attr-defined]
        await asyncio.sleep(random.uniform(0.8, 1.2))
        await ws.close()
        opened_at.pop(login.user_id, None)  # type: ignore[attr-defined]
        idle.append(login)

    started = time.monotonic()
    churning: set[asyncio.Task[None]] = set()
    count = 0
    while time.monotonic() - started < duration:
        if idle:
            task = asyncio.create_task(one(idle.pop(0)))
            churning.add(task)
            task.add_done_callback(churning.discard)
            count += 1
        await asyncio.sleep(max(0.0, started + count / churn - time.monotonic()))
    await asyncio.gather(*churning)
    out, err = await bench.communicate()
    if not out.strip():
        raise SystemExit(f"im-bench failed: {err.decode()[-2000:]}")
    for task in watching:
        task.cancel()
    report = json.loads(out)
    Path("/tmp/presence_churn_bench.json").write_bytes(out)
    ordered = sorted(latencies)
    print(f"churn: {count} connects (and as many disconnects) in {duration:.0f}s = {count / duration:.0f}/s")
    print(f"presence online latency: n={len(ordered)} p50 {statistics.median(ordered) * 1000:.0f} ms, "
          f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms")
    measured = report["measured"]
    print("im-bench latency: rate", measured["rate"], "send->msg ms", measured["latency_ms"], "ok", measured["ok"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--churn", type=float, default=200)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--duration", type=float, default=20)
    args = parser.parse_args()
    port, metrics_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/im"), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir,
             "--rate-limit", "0", "--access-log", "false", "--metrics-port", str(metrics_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
            asyncio.run(run(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", args.churn,
                            args.rate, args.duration))
        finally:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main()
