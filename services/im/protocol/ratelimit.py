"""A token bucket with an injected clock."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    __slots__ = ("_rate", "_burst", "_tokens", "_stamp")

    def __init__(self, rate_per_second: float, burst: int, now: float) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("rate_per_second must be positive and burst at least 1")
        self._rate = rate_per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def _refill(self, now: float) -> float:
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        return tokens

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        tokens = self._refill(now)
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True

    def give_back(self, now: float) -> None:
        """Return a token taken for something that turned out not to count (never past the burst)."""
        self._tokens = min(self._burst, self._refill(now) + 1.0)

    def seconds_until_token(self, now: float) -> float:
        """How long until `take` can succeed (0 if it can now)."""
        missing = 1.0 - min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        return max(0.0, missing / self._rate)

    def full(self, now: float) -> bool:
        """Whether the bucket is back at its burst: it then says no more than a new one would."""
        return self._tokens + (now - self._stamp) * self._rate >= self._burst
