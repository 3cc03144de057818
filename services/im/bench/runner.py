"""Run a plan over one or more workers (in this process or as subprocesses) and merge what they saw."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from im.bench.plan import Plan
from im.bench.worker import ACKED, Worker, decode_array

__all__ = ["Fleet", "Merged", "assign_slots", "merge"]


def assign_slots(slots: Sequence[int], workers: int) -> list[list[int]]:
    """Contiguous runs of slots per worker, so partners (neighbouring slots) mostly share a process."""
    workers = max(1, min(workers, len(slots))) if slots else 1
    return [list(slots[len(slots) * i // workers : len(slots) * (i + 1) // workers]) for i in range(workers)]


class _Handle(Protocol):
    async def connect(self) -> dict[str, Any]: ...
    async def run(self, start: float) -> dict[str, Any]: ...
    def progress(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class _Local:
    def __init__(self, plan: Plan, hosted: list[int]) -> None:
        self.worker = Worker(plan, hosted)

    async def connect(self) -> dict[str, Any]:
        return await self.worker.connect()

    async def run(self, start: float) -> dict[str, Any]:
        await self.worker.run(start)
        return self.worker.result()

    def progress(self) -> dict[str, Any]:
        return self.worker.progress()

    async def close(self) -> None:
        await self.worker.close()


class _Remote:
    def __init__(self, plan: Plan, hosted: list[int]) -> None:
        self.order = orjson.dumps({"plan": plan.to_json(), "hosted": hosted}) + b"\n"
        self.process: asyncio.subprocess.Process | None = None
        self.latest: dict[str, Any] = {}

    async def _line(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker exited with {await self.process.wait()}")
        message: dict[str, Any] = orjson.loads(line)
        return message

    def _tell(self, message: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(message) + b"\n")

    async def connect(self) -> dict[str, Any]:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "im.bench.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=2**31)
        assert self.process.stdin is not None
        self.process.stdin.write(self.order)
        while True:
            message = await self._line()
            if message.get("event") == "ready":
                return message
            self.latest = message

    async def run(self, start: float) -> dict[str, Any]:
        self._tell({"cmd": "go", "start": start})
        while True:
            message = await self._line()
            if message.get("event") == "result":
                return message
            self.latest = message

    def progress(self) -> dict[str, Any]:
        return self.latest

    async def close(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            try:
                self._tell({"cmd": "stop"})
                assert self.process.stdin is not None
                self.process.stdin.close()
                await asyncio.wait_for(self.process.wait(), 60)
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()


PROGRESS_KEYS = ("sent", "acked", "rejected", "delivered", "duplicates", "errors", "closed", "open")


@dataclass
class Merged:
    """What all workers of one run saw together."""

    planned: int
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    duplicates: int = 0
    missing: int = 0
    """Deliveries absent for acknowledged messages (an acked message a recipient never got)."""
    complete: int = 0
    """Messages acknowledged and delivered to every expected recipient."""
    unexpected: int = 0
    self_echo: int = 0
    stray_answers: int = 0
    reconnects: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)
    closed_codes: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    max_lag: float = 0.0
    cpu_seconds: float = 0.0
    latency: array[float] = field(default_factory=lambda: array("d"))
    ack_latency: array[float] = field(default_factory=lambda: array("d"))


def merge(plan: Plan, results: Sequence[dict[str, Any]]) -> Merged:
    merged = Merged(planned=plan.messages)
    status: dict[int, bytes] = {}
    got: dict[int, array[int]] = {}
    start = min((r["start"] for r in results), default=0.0)
    last = start
    for r in results:
        for name in ("sent", "acked", "rejected", "delivered", "duplicates", "unexpected", "self_echo",
                     "stray_answers", "reconnects"):
            setattr(merged, name, getattr(merged, name) + r[name])
        merged.error_codes.update(r["error_codes"])
        merged.closed_codes.update(r["closed_codes"])
        merged.max_lag = max(merged.max_lag, r["max_lag"])
        merged.cpu_seconds += r["cpu_seconds"]
        last = max(last, r["last_event"])
        merged.latency.extend(decode_array("d", r["latency"]))
        merged.ack_latency.extend(decode_array("d", r["ack_latency"]))
        for slot, text in r["status"].items():
            status[int(slot)] = base64.b64decode(text)
        for slot, text in r["got"].items():
            table = decode_array("I", text)
            mine = got.get(int(slot))
            if mine is None:
                got[int(slot)] = table
            else:
                for n, count in enumerate(table):
                    mine[n] += count
    for sender in plan.senders:
        wanted = len(sender.recipients)
        merged.expected_deliveries += wanted * sender.count
        states = status.get(sender.slot, bytes(sender.count))
        table = got.get(sender.slot, array("I", bytes(4 * sender.count)))
        for n in range(sender.count):
            if states[n] == ACKED:
                reached = table[n]
                merged.missing += wanted - reached
                if reached >= wanted:
                    merged.complete += 1
    merged.wall_seconds = max(0.0, last - start)
    return merged


class Fleet:
    """The workers of one plan: open the connections, run the measured phase, close."""

    def __init__(self, plan: Plan, processes: int, progress: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        groups = assign_slots([spec.slot for spec in plan.conns], processes)
        remote = processes > 1
        self.handles: list[_Handle] = [(_Remote if remote else _Local)(plan, hosted) for hosted in groups]
        self.say = progress

    async def open(self) -> dict[str, Any]:
        """Connect everything; returns how many connections opened, failures by kind, and how long it took."""
        began = time.time()
        task = asyncio.create_task(self._ticker(began, lambda totals: f"connecting: {totals['open']} open"))
        try:
            ready = await asyncio.gather(*(handle.connect() for handle in self.handles))
        finally:
            task.cancel()
        failed: Counter[str] = Counter()
        for r in ready:
            failed.update(r["failed"])
        return {"connected": sum(r["connected"] for r in ready), "failed": dict(failed),
                "seconds": round(time.time() - began, 3)}

    async def measure(self) -> Merged:
        remote = isinstance(self.handles[0], _Remote)
        start = time.time() + (0.3 if remote else 0.05)

        def line(totals: dict[str, int]) -> str:
            return (f"sent {totals['sent']} acked {totals['acked']} delivered {totals['delivered']}"
                    f" errors {totals['errors']} dup {totals['duplicates']}"
                    f" closed {totals['closed']}")

        task = asyncio.create_task(self._ticker(start, line, rates=True))
        try:
            results = await asyncio.gather(*(handle.run(start) for handle in self.handles))
        finally:
            task.cancel()
        return merge(self.plan, results)

    async def close(self) -> None:
        await asyncio.gather(*(handle.close() for handle in self.handles), return_exceptions=True)

    async def _ticker(self, since: float, render: Callable[[dict[str, int]], str],
                      rates: bool = False) -> None:
        if self.say is None:
            return
        before: dict[str, int] = {}
        while True:
            await asyncio.sleep(1.0)
            totals = dict.fromkeys(PROGRESS_KEYS, 0)
            for handle in self.handles:
                for key, value in handle.progress().items():
                    if key in totals:
                        totals[key] += value
            text = f"[{time.time() - since:6.1f}s] {render(totals)}"
            if rates and before:
                text += (f" | {totals['acked'] - before['acked']} acked/s"
                         f" {totals['delivered'] - before['delivered']} delivered/s")
            before = totals
            self.say(text)
