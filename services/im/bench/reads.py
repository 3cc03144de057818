"""`im-bench read`: read receipts at a target rate, and how fast they reach the reader's other device.

    im-bench read --url http://127.0.0.1:8080 --readers 50 --rate 5000 --duration 10

Each reader is one user with two connections ("phone" and "laptop") and a partner who, during setup,
sends it `rate * duration / readers` messages (acked, so their ids are known). The measured phase
paces `read` frames over all phones, each reading up to the next message of its conversation, so
every read moves the pointer and makes an event. Latency is from writing the `read` frame on the
phone to its `read` event arriving on the laptop (the reader's other device): the whole path
gateway → bus → logic commit → downlink → gateway → push, and the client's own delays. With
`--metrics-url` it also reports the server's side alone, from `im_delivery_latency_seconds` (gateway
accepted the frame → pushed the event, both devices): the histogram bound under which 99% fell.
A read has no ack; the phone's own event is counted too, to check that each read was answered once.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from im.bench.http import HttpError, request, ws_url
from im.bench.setup import BenchUser, create_users, sample_servers
from im.bench.stats import scheduled_time, summarize

__all__ = ["main"]


@dataclass
class _Reader:
    user: BenchUser
    partner: BenchUser
    message_ids: list[int] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)
    """up_to -> when its read frame was written."""
    latencies_ms: list[float] = field(default_factory=list)
    phone_events: int = 0
    errors: int = 0


async def _preload(url: str, reader: _Reader, count: int, window: int = 64) -> None:
    """The partner sends `count` messages to the reader; their ids, in order, are what gets read."""
    async with connect(ws_url(url, reader.partner.token), max_size=None) as ws:
        acked: dict[str, int] = {}
        sent = 0
        while len(acked) < count:
            while sent < count and sent - len(acked) < window:
                await ws.send(orjson.dumps({"type": "send", "cid": f"p{sent}", "to": reader.user.user_id,
                                            "content": f"message {sent}"}).decode())
                sent += 1
            frame = orjson.loads(await ws.recv())
            if frame["type"] == "ack":
                acked[frame["cid"]] = frame["id"]
            elif frame["type"] == "error":
                raise RuntimeError(f"preload refused: {frame}")
        reader.message_ids = [acked[f"p{i}"] for i in range(count)]


async def _listen(ws: ClientConnection, reader: _Reader, is_phone: bool) -> None:
    async for raw in ws:
        now = time.perf_counter()
        frame = orjson.loads(raw)
        kind = frame["type"]
        if kind == "read":
            if is_phone:
                reader.phone_events += 1
            else:
                reader.latencies_ms.append((now - reader.sent_at[frame["up_to"]]) * 1000)
        elif kind == "error":
            reader.errors += 1


async def _delivery_buckets(metrics_url: str) -> dict[float, float]:
    """The server's `im_delivery_latency_seconds` histogram (gateway accepted -> pushed): upper bound -> count."""
    base, _, path = metrics_url.partition("/metrics")
    try:
        response = await request(base, "GET", "/metrics" + path, timeout=10)
    except HttpError:
        return {}
    buckets = {}
    for line in response.body.decode("utf-8", "replace").splitlines():
        if line.startswith('im_delivery_latency_seconds_bucket{le="'):
            bound, _, count = line[len('im_delivery_latency_seconds_bucket{le="'):].partition('"} ')
            buckets[float(bound)] = float(count)
    return buckets


def _server_p99_bound(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The smallest histogram bound (ms) under which 99% of the pushes between the samples fell."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    if not total:
        return None
    return next((bound * 1000 for bound, count in counts.items() if count >= 0.99 * total), None)


async def run(url: str, readers: int, rate: float, duration: float, prefix: str, metrics_url: str | None,
              ) -> dict[str, Any]:
    users = await create_users([url], readers * 2, prefix, 16)
    pairs = [_Reader(users[2 * i], users[2 * i + 1]) for i in range(readers)]
    per_reader = max(1, int(rate * duration / readers))
    began = time.time()
    await asyncio.gather(*(_preload(url, r, per_reader) for r in pairs))
    setup_seconds = time.time() - began
    phones = [await connect(ws_url(url, r.user.token), max_size=None) for r in pairs]
    laptops = [await connect(ws_url(url, r.user.token), max_size=None) for r in pairs]
    listeners = [asyncio.create_task(_listen(ws, r, is_phone)) for ws, r, is_phone in
                 [*((p, r, True) for p, r in zip(phones, pairs, strict=True)),
                  *((lp, r, False) for lp, r in zip(laptops, pairs, strict=True))]]
    total = per_reader * readers
    before = await sample_servers([metrics_url]) if metrics_url else None
    buckets_before = await _delivery_buckets(metrics_url) if metrics_url else {}
    start = time.perf_counter() + 0.2
    for index in range(total):
        due = scheduled_time(index, start, rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        reader_index, position = index % readers, index // readers
        reader = pairs[reader_index]
        up_to = reader.message_ids[position]
        reader.sent_at[up_to] = time.perf_counter()
        await phones[reader_index].send(orjson.dumps(
            {"type": "read", "peer": reader.partner.user_id, "up_to": up_to}).decode())
    sent_seconds = time.perf_counter() - start
    deadline = time.perf_counter() + 30
    while sum(len(r.latencies_ms) for r in pairs) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    after = await sample_servers([metrics_url]) if metrics_url else None
    buckets_after = await _delivery_buckets(metrics_url) if metrics_url else {}
    for task in listeners:
        task.cancel()
    for ws in [*phones, *laptops]:
        await ws.close()
    latencies = sorted(ms for r in pairs for ms in r.latencies_ms)
    cpu = None
    if before is not None and after is not None:
        used = [s.total("process_cpu_seconds_total") for s in (before, after)]
        if used[0] is not None and used[1] is not None:
            cpu = round((used[1] - used[0]) / total * 1e6, 1)
    return {
        "scenario": "read", "readers": readers, "target_rate": rate, "duration": duration,
        "reads": total, "sent_per_second": round(total / sent_seconds, 1),
        "events_on_other_device": len(latencies), "events_on_reading_device": sum(r.phone_events for r in pairs),
        "errors": sum(r.errors for r in pairs), "setup_seconds": round(setup_seconds, 1),
        "latency_ms": summarize(latencies).as_dict(), "server_cpu_us_per_read": cpu,
        "server_push_p99_at_most_ms": _server_p99_bound(buckets_before, buckets_after),
    }


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="im-bench read", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server (gateway) base URL")
    p.add_argument("--readers", type=int, default=50, help="reading users, two connections each (default 50)")
    p.add_argument("--rate", type=float, default=5000.0, help="read frames/s over all readers (default 5000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to read for (default 10)")
    p.add_argument("--metrics-url", help="the server's Prometheus endpoint: report its CPU per read")
    p.add_argument("--prefix", help="run prefix in user emails (default: bench-read-<time>-<random>)")
    args = p.parse_args(argv)
    from im.bench.loop import run as run_loop

    prefix = args.prefix or f"bench-read-{int(time.time())}-{secrets.token_hex(3)}"
    report = run_loop(run(args.url.rstrip("/"), args.readers, args.rate, args.duration, prefix, args.metrics_url))
    sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
