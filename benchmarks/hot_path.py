"""Micro-benchmarks of the gateway's hot path choices (run: .venv/bin/python benchmarks/hot_path.py).

1. Group fan-out encoding: one `orjson.dumps` per recipient vs `MessageEncoder` (encode the shared
   part once, splice each recipient's `seq`).
2. Timing wheel: add / refresh / cancel / advance cost per operation at 100k timers.
3. Frame parsing: `parse_client_frame` per send frame.
"""

from __future__ import annotations

import time
import timeit

from im.contracts.records import Message
from im.kits.timing_wheel import TimingWheel
from im.protocol.frames import MessageEncoder, encode_message, parse_client_frame
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


if __name__ == "__main__":
    fan_out()
    wheel()
    parsing()
