"""The client connections of one process: send, receive, count and time every message.

Run in the bench process itself or as `python -m im.bench.worker`, which reads its orders as JSON lines
on stdin and answers on stdout (see `runner`). Send times travel inside `content` (`time.time()`),
so a recipient in another process can still compute the latency.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from im.bench.plan import ConnSpec, Plan
from im.bench.stats import due_count, scheduled_time

__all__ = ["Worker", "decode_array", "encode_array", "main"]

UNSENT, SENT, ACKED, REJECTED = 0, 1, 2, 3
PACING_TICK = 0.001
"""Shortest sleep of the pacer, seconds: sends due within one tick go out together, which keeps the
bench's own CPU low at high rates for at most this much added latency."""
TIME_CHARS = 17  # f"{time.time():017.6f}" until the year 2286


def encode_array(values: array[Any]) -> str:
    return base64.b64encode(values.tobytes()).decode()


def decode_array(typecode: str, text: str) -> array[Any]:
    values = array(typecode)
    values.frombytes(base64.b64decode(text))
    return values


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Conn:
    """One connection's state, as a sender (status per message) and as a recipient (count per message)."""

    __slots__ = ("answered", "expect", "next_n", "padding", "sent_at", "slot", "status", "target", "total",
                 "ws")

    def __init__(self, slot: int, ws: ClientConnection) -> None:
        self.slot = slot
        self.ws = ws
        self.target: dict[str, Any] = {}
        self.total = 0
        self.next_n = 0
        self.answered = 0
        self.status = bytearray()
        self.sent_at = array("d")
        self.padding = ""
        self.expect: dict[int, bytearray] = {}
        """sender slot -> how often this connection received each of that sender's messages."""


class Worker:
    def __init__(self, plan: Plan, hosted: Iterable[int]) -> None:
        self.plan = plan
        hosted_set = set(hosted)
        self.specs = [spec for spec in plan.conns if spec.slot in hosted_set]
        self.conns: dict[int, Conn] = {}
        self.readers: list[asyncio.Task[None]] = []
        self.sent = self.acked = self.rejected = self.delivered = 0
        self.duplicates = self.unexpected = self.self_echo = self.stray_answers = self.reconnects = 0
        self.errors: Counter[str] = Counter()
        self.connect_failures: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.latency = array("d")
        self.ack_latency = array("d")
        self.start = 0.0
        self.last_event = 0.0
        self.last_send = 0.0
        self.max_lag = 0.0
        self.closing = False
        self.cpu_at_start = cpu_seconds()
        self.connect_seconds = 0.0
        self.expected_answers = 0
        self.expected_deliveries = 0

    # --- connections -------------------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Open every hosted connection (bounded concurrency) and start reading them."""
        began = time.time()
        gate = asyncio.Semaphore(self.plan.connect_concurrency)
        await asyncio.gather(*(self._open(spec, gate) for spec in self.specs))
        self.connect_seconds = time.time() - began
        self._arm()
        return {"connected": len(self.conns), "failed": dict(self.connect_failures),
                "seconds": self.connect_seconds}

    async def _open(self, spec: ConnSpec, gate: asyncio.Semaphore) -> None:
        extra: dict[str, Any] = {}
        if spec.local_addr:
            extra["local_addr"] = (spec.local_addr, 0)
        async with gate:
            try:
                ws = await connect(spec.url, compression=None, open_timeout=60, close_timeout=2,
                                   ping_interval=self.plan.ping_interval, max_size=2**22, **extra)
            except InvalidStatus as exc:
                self.connect_failures[f"http_{exc.response.status_code}"] += 1
                return
            except (OSError, TimeoutError, ConnectionClosed) as exc:
                self.connect_failures[type(exc).__name__] += 1
                return
            except Exception as exc:  # a benchmark counts failures rather than dying on the first one
                self.connect_failures[type(exc).__name__] += 1
                return
        conn = Conn(spec.slot, ws)
        self.conns[spec.slot] = conn
        self.readers.append(asyncio.create_task(self._read(conn)))

    def _arm(self) -> None:
        """Size the per-message tables of the connections that did open."""
        plan = self.plan
        for sender in plan.senders:
            for recipient in sender.recipients:
                conn = self.conns.get(recipient)
                if conn is not None:
                    conn.expect[sender.slot] = bytearray(sender.count)
                    self.expected_deliveries += sender.count
            conn = self.conns.get(sender.slot)
            if conn is None:
                continue
            conn.total = sender.count
            conn.status = bytearray(sender.count)
            conn.sent_at = array("d", bytes(8 * sender.count))
            conn.target = {"to": sender.to} if sender.group is None else {"group": sender.group}
            conn.padding = "x" * plan.content_size
            self.expected_answers += sender.count

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(conn.ws.close() for conn in self.conns.values()), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)

    # --- hot path ----------------------------------------------------------------------------------

    async def _send(self, conn: Conn) -> None:
        n = conn.next_n
        if n >= conn.total:
            return
        conn.next_n = n + 1
        now = time.time()
        head = f"{now:017.6f} {conn.slot}.{n} "
        frame = {"type": "send", "cid": f"{conn.slot}.{n}", "content": head + conn.padding[len(head):]}
        frame.update(conn.target)
        conn.sent_at[n] = now
        conn.status[n] = SENT
        self.sent += 1
        self.last_send = now
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(orjson.dumps(frame), text=True)

    async def _read(self, conn: Conn) -> None:
        ws = conn.ws
        loads = orjson.loads
        window = self.plan.window if self.plan.rate is None else 0
        try:
            while True:
                raw = await ws.recv(decode=False)
                now = time.time()
                frame = loads(raw)
                kind = frame.get("type")
                answered = False
                if kind == "msg":
                    self._deliver(conn, frame.get("content"), now)
                elif kind == "ack":
                    answered = self._answer(conn, frame.get("cid"), now, ACKED)
                elif kind == "send":  # the echo server returns our own frame: ack and delivery at once
                    self._deliver(conn, frame.get("content"), now)
                    answered = self._answer(conn, frame.get("cid"), now, ACKED)
                elif kind == "error":
                    self.errors[str(frame.get("code"))] += 1
                    answered = self._answer(conn, frame.get("cid"), now, REJECTED)
                elif kind == "reconnect":
                    self.reconnects += 1
                if answered and conn.next_n - conn.answered < window:
                    await self._send(conn)
        except ConnectionClosed as exc:
            if not self.closing:
                code = exc.rcvd.code if exc.rcvd is not None else "no_close_frame"
                self.closed[str(code)] += 1
        except (orjson.JSONDecodeError, AttributeError):
            self.errors["bench_unparsable_frame"] += 1

    def _deliver(self, conn: Conn, content: Any, now: float) -> None:
        try:
            ident = content[TIME_CHARS + 1 : content.index(" ", TIME_CHARS + 1)]
            sender_text, _, n_text = ident.partition(".")
            sender, n = int(sender_text), int(n_text)
            sent = float(content[:TIME_CHARS])
        except (TypeError, ValueError):
            self.unexpected += 1
            return
        counts = conn.expect.get(sender)
        if counts is None or n >= len(counts):
            if sender == conn.slot:
                self.self_echo += 1
            else:
                self.unexpected += 1
            return
        seen = counts[n]
        if seen == 0:
            counts[n] = 1
            self.delivered += 1
            self.latency.append((now - sent) * 1000.0)
            self.last_event = now
        else:
            self.duplicates += 1
            if seen < 255:
                counts[n] = seen + 1

    def _answer(self, conn: Conn, cid: Any, now: float, outcome: int) -> bool:
        """Record an ack or an error for one of this connection's messages; False if it is not one."""
        if not isinstance(cid, str):
            return False
        try:
            n = int(cid.rpartition(".")[2])
        except ValueError:
            self.stray_answers += 1
            return False
        status = conn.status
        if n >= len(status) or status[n] != SENT:
            self.stray_answers += 1
            return False
        status[n] = outcome
        conn.answered += 1
        if outcome == ACKED:
            self.acked += 1
            self.ack_latency.append((now - conn.sent_at[n]) * 1000.0)
        else:
            self.rejected += 1
        self.last_event = now
        return True

    # --- the measured phase ------------------------------------------------------------------------

    async def run(self, start: float) -> None:
        """Send every hosted sender's messages from `start` (unix time) and wait for the answers."""
        self.start = start
        self.cpu_at_start = cpu_seconds()
        delay = start - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self.last_send = self.last_event = time.time()
        sending = asyncio.create_task(self._pace() if self.plan.rate else self._fill_windows())
        try:
            await self._wait_done()
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending

    async def _fill_windows(self) -> None:
        window = self.plan.window
        for conn in list(self.conns.values()):
            while conn.next_n < conn.total and conn.next_n - conn.answered < window:
                await self._send(conn)

    async def _pace(self) -> None:
        plan = self.plan
        assert plan.rate is not None
        rate, total, start = plan.rate, plan.messages, self.start
        order = [self.conns.get(sender.slot) for sender in plan.senders]
        width = len(order)
        k = 0
        while k < total:
            now = time.time()
            due = due_count(start, rate, now, total)
            if due > k:
                self.max_lag = max(self.max_lag, now - scheduled_time(k, start, rate))
            while k < due:
                conn = order[k % width]
                if conn is not None:
                    await self._send(conn)
                k += 1
            if k < total:
                await asyncio.sleep(max(PACING_TICK, scheduled_time(k, start, rate) - time.time()))

    async def _wait_done(self) -> None:
        plan = self.plan
        while True:
            await asyncio.sleep(0.02)
            now = time.time()
            answered = self.acked + self.rejected
            if answered >= self.expected_answers and self.delivered >= self.expected_deliveries:
                return
            if now - max(self.last_event, self.last_send) > plan.settle:
                return
            if now - self.start > plan.timeout:
                return
            if self.conns and all(task.done() for task in self.readers):
                return

    # --- reporting ---------------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        return {"sent": self.sent, "acked": self.acked, "rejected": self.rejected,
                "delivered": self.delivered, "duplicates": self.duplicates,
                "errors": sum(self.errors.values()),
                "closed": sum(self.closed.values()), "open": sum(not t.done() for t in self.readers)}

    def result(self) -> dict[str, Any]:
        """Everything the runner needs to merge workers: counters, per-message tables, raw latencies."""
        status: dict[str, str] = {}
        for sender in self.plan.senders:
            conn = self.conns.get(sender.slot)
            if conn is not None:
                status[str(sender.slot)] = base64.b64encode(bytes(conn.status)).decode()
        got: dict[int, array[int]] = {}
        for conn in self.conns.values():
            for sender_slot, counts in conn.expect.items():
                table = got.get(sender_slot)
                if table is None:
                    table = got[sender_slot] = array("I", bytes(4 * len(counts)))
                for n, seen in enumerate(counts):
                    if seen:
                        table[n] += 1
        return {
            **self.progress(),
            "unexpected": self.unexpected, "self_echo": self.self_echo, "stray_answers": self.stray_answers,
            "reconnects": self.reconnects, "error_codes": dict(self.errors),
            "connect_failures": dict(self.connect_failures), "closed_codes": dict(self.closed),
            "start": self.start, "last_event": self.last_event, "max_lag": self.max_lag,
            "cpu_seconds": cpu_seconds() - self.cpu_at_start,
            "status": status, "got": {str(slot): encode_array(table) for slot, table in got.items()},
            "latency": encode_array(self.latency), "ack_latency": encode_array(self.ack_latency),
        }


# --- subprocess mode -------------------------------------------------------------------------------


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


async def _serve(reader: asyncio.StreamReader) -> None:
    order = orjson.loads(await reader.readline())
    worker = Worker(Plan.from_json(order["plan"]), order["hosted"])

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            _emit({"event": "progress", **worker.progress()})

    reporter = asyncio.create_task(report())
    _emit({"event": "ready", **(await worker.connect())})
    command = orjson.loads(await reader.readline() or b"{}")
    if command.get("cmd") == "go":
        await worker.run(float(command["start"]))
        reporter.cancel()
        _emit({"event": "result", **worker.result()})
        await reader.readline()  # "stop", or EOF when the runner is gone
    reporter.cancel()
    await worker.close()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await _serve(reader)


def main() -> None:
    from im.bench.loop import run

    run(_main())


if __name__ == "__main__":
    main()
