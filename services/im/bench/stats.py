"""Pure helpers of the benchmark: no I/O, no clocks read here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "LatencySummary",
    "due_count",
    "partners",
    "percentile",
    "scheduled_time",
    "split_counts",
    "summarize",
]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (`pct` in 0..100); NaN when empty."""
    if not sorted_values:
        return math.nan
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency distribution in milliseconds."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def as_dict(self) -> dict[str, float | int | None]:
        def clean(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 3)

        return {"count": self.count, "mean": clean(self.mean), "p50": clean(self.p50), "p90": clean(self.p90),
                "p99": clean(self.p99), "p999": clean(self.p999), "max": clean(self.max)}


def summarize(values_ms: Sequence[float]) -> LatencySummary:
    """Summarise latencies (milliseconds, any order)."""
    ordered = sorted(values_ms)
    if not ordered:
        nan = math.nan
        return LatencySummary(0, nan, nan, nan, nan, nan, nan)
    return LatencySummary(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        p999=percentile(ordered, 99.9),
        max=ordered[-1],
    )


def scheduled_time(index: int, start: float, rate: float) -> float:
    """When message `index` (0-based, counted over all senders) is due at `rate` messages/s."""
    return start + index / rate


def due_count(start: float, rate: float, now: float, total: int) -> int:
    """How many of `total` messages paced at `rate`/s from `start` are due at `now` (the first at `start`)."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if now < start:
        return 0
    return min(total, int((now - start) * rate) + 1)


def partners(count: int) -> list[int]:
    """Who each of `count` users sends to: pairs (0,1), (2,3)...; an odd count ends in a 3-cycle.

    Everyone sends to exactly one partner and receives from exactly one, so load is even.
    """
    if count < 2:
        raise ValueError("pairing needs at least 2 users")
    result = [i ^ 1 for i in range(count)]
    if count % 2:
        a, b, c = count - 3, count - 2, count - 1
        result[a], result[b], result[c] = b, c, a
    return result


def split_counts(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` integers differing by at most one, larger ones first."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
