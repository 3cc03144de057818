"""Micro-benchmarks of the gateway's hot path choices (run: .venv/bin/python benchmarks/hot_path.py).

1. Group fan-out encoding: one `orjson.dumps` per recipient vs `MessageEncoder` (encode the shared
   part once, splice each recipient's `seq`).
2. Timing wheel: add / refresh / cancel / advance cost per operation at 100k timers.
3. Frame parsing: `parse_client_frame` per send frame.
4. Records built once per message (`Message`, `Send`, `Applied`, `SendFrame`): plain slotted
   dataclasses against frozen ones with the same fields.
5. A Prometheus counter's `inc` (what counting every accepted send one by one cost).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import timeit
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from im.backends.base import Applied, Send
from im.contracts.records import Message
from im.kits.timing_wheel import TimingWheel
from im.protocol.frames import MessageEncoder, SendFrame, encode_message, parse_client_frame
from im.protocol.limits import Limits


def per_op(seconds: float, operations: int) -> str:
    return f"{seconds / operations * 1e9:8.0f} ns/op"


def fan_out(recipients: int = 500, rounds: int = 200) -> None:
    message = Message(123456, 42, None, 7, "a group message of ordinary length, about sixty chars", "cid-1", 1)
    seqs = range(1, recipients + 1)

    def per_recipient() -> list[bytes]:
        return [encode_message(message, seq) for seq in seqs]

    def shared_encoder() -> list[bytes]:
        encoder = MessageEncoder(message)
        return [encoder.encode(seq) for seq in seqs]

    plain = timeit.timeit(per_recipient, number=rounds)
    shared = timeit.timeit(shared_encoder, number=rounds)
    print(f"fan-out to {recipients}: orjson per recipient {per_op(plain, rounds * recipients)}, "
          f"shared encoder {per_op(shared, rounds * recipients)}  ({plain / shared:.1f}x)")


def wheel(count: int = 100_000) -> None:
    w: TimingWheel[int] = TimingWheel(tick_seconds=0.5, slots=512)
    started = time.perf_counter()
    for key in range(count):
        w.add(key, 30 + key % 60)
    added = time.perf_counter()
    for key in range(count):
        w.refresh(key, 30 + key % 60)
    refreshed = time.perf_counter()
    ticks = 0
    while len(w):
        w.advance()
        ticks += 1
    advanced = time.perf_counter()
    for key in range(count):
        w.add(key, 10)
    for key in range(count):
        w.cancel(key)
    cancelled = time.perf_counter()
    print(f"timing wheel, {count} timers: add {per_op(added - started, count)}, "
          f"refresh {per_op(refreshed - added, count)}, add+cancel {per_op(cancelled - advanced, count)}, "
          f"expiring all over {ticks} ticks {per_op(advanced - refreshed, count)} per timer")


def parsing(rounds: int = 200_000) -> None:
    frame = b'{"type":"send","cid":"c-123456","to":4242,"content":"hello there, this is a message"}'
    limits = Limits()
    seconds = timeit.timeit(lambda: parse_client_frame(frame, limits), number=rounds)
    print(f"parse_client_frame(send): {per_op(seconds, rounds)}")


def frozen_twin(cls: type) -> Any:
    """A frozen slotted dataclass with the fields of `cls`."""
    fields = [(f.name, f.type, f) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(f"Frozen{cls.__name__}", fields, frozen=True, slots=True)


def records(rounds: int = 300_000) -> None:
    message = Message(1, 2, 3, None, "x", "c", 5)
    cases: list[tuple[type, tuple[Any, ...]]] = [
        (Message, (1, 2, 3, None, "x", "c", 5)), (Send, (1, "c", "x", 5, 3)),
        (Applied, (message, {1: 2, 3: 4})), (SendFrame, ("c", 3, None, "x"))]
    for cls, args in cases:
        frozen = frozen_twin(cls)
        plain_s = timeit.timeit(functools.partial(cls, *args), number=rounds)
        frozen_s = timeit.timeit(functools.partial(frozen, *args), number=rounds)
        print(f"build {cls.__name__:9}: plain {per_op(plain_s, rounds)}, frozen {per_op(frozen_s, rounds)}")


def counter(rounds: int = 300_000) -> None:
    received = Counter("bench_received_total", "one inc per send", registry=CollectorRegistry())
    seconds = timeit.timeit(received.inc, number=rounds)
    print(f"prometheus Counter.inc(): {per_op(seconds, rounds)}")


if __name__ == "__main__":
    fan_out()
    wheel()
    parsing()
    records()
    counter()
