"""A slowloris against a running server, with real users logging in and chatting meanwhile.

Run: .venv/bin/python benchmarks/slowloris.py --port PORT [--connections 1000] [--interval 5] [--seconds 45]

`--connections` sockets each send a request head one byte every `--interval` seconds (never
finishing it); meanwhile one user after another registers, logs in, opens a WebSocket and sends a
message to the previous one. Printed: how many real logins and sends succeeded and how long they
took, and how long the server let the tricklers live (the head deadline, `IM_HTTP_HEAD_TIMEOUT`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time

from im.client import ChatConnection, HttpClient

_ids = itertools.count()


async def trickle(port: int, source: str, interval: float, stop: asyncio.Event, lifetimes: list[float]) -> None:
    """Record how long the server let this connection live (-1: refused, inf: never closed it)."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        lifetimes.append(-1.0)
        return
    lifetime = float("inf")
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100_000:
            writer.write(bytes([byte]))
            try:
                await asyncio.wait_for(reader.read(4096), interval)
            except TimeoutError:
                if stop.is_set():
                    break
                continue
            lifetime = time.monotonic() - started
            break
    except ConnectionError:
        lifetime = time.monotonic() - started
    finally:
        writer.close()
    lifetimes.append(lifetime)


async def real_user(url: str, previous: int | None, results: list[tuple[bool, float]]) -> int | None:
    started = time.monotonic()
    http = HttpClient(url, timeout=30)
    try:
        login = await http.signup(f"real{next(_ids)}-{int(started)}@example.test")
        chat = await ChatConnection.open(http.ws_url, login.token)
        if previous is not None:
            await chat.send("c1", "hello during the slowloris", to=previous)
            await chat.expect("ack", timeout=30)
        await chat.close()
    except Exception:  # noqa: BLE001 - counted as a failure
        results.append((False, time.monotonic() - started))
        await asyncio.sleep(0.2)
        return previous
    results.append((True, time.monotonic() - started))
    return login.user_id


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--source", default="127.0.0.1",
                        help="address the tricklers connect from (real users use 127.0.0.1)")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    stop = asyncio.Event()
    lifetimes: list[float] = []
    tricklers = [asyncio.create_task(trickle(args.port, args.source, args.interval, stop, lifetimes))
                 for _ in range(args.connections)]
    await asyncio.sleep(1)
    results: list[tuple[bool, float]] = []
    previous = None
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        previous = await real_user(url, previous, results)
    stop.set()
    await asyncio.gather(*tricklers)
    ok = [seconds for success, seconds in results if success]
    failed = [seconds for success, seconds in results if not success]
    if failed:
        print(f"real users failed {len(failed)} times, the last {max(failed):.1f} s into a try")
    print(f"real users: {len(ok)} of {len(results)} registered, logged in, connected and (after the first) "
          f"had a message acked; seconds each: median {statistics.median(ok):.2f}, max {max(ok):.2f}"
          if ok else f"real users: 0 of {len(results)} succeeded")
    closed = sorted(t for t in lifetimes if 0 <= t < float("inf"))
    refused = sum(1 for t in lifetimes if t < 0)
    alive = sum(1 for t in lifetimes if t == float("inf"))
    spread = f" after {closed[0]:.1f}–{closed[-1]:.1f} s (median {statistics.median(closed):.1f} s)" if closed else ""
    print(f"tricklers: {len(closed)} closed by the server{spread}, {alive} still open at the end, "
          f"{refused} could not connect")


if __name__ == "__main__":
    asyncio.run(main())
