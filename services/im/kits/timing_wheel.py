"""A hashed timing wheel: O(1) add, cancel and refresh for very many timers driven by one clock.

The wheel knows nothing about time: its owner calls `advance()` once per tick and gets the keys
whose deadline passed, in deadline order (keys of the same tick in the order they were added).
A delay longer than one revolution waits out extra rounds in its slot.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["TimingWheel"]

K = TypeVar("K", bound=Hashable)


class TimingWheel(Generic[K]):
    def __init__(self, *, tick_seconds: float = 0.5, slots: int = 512) -> None:
        if tick_seconds <= 0 or slots < 1:
            raise ValueError("tick_seconds must be positive and slots at least 1")
        self.tick_seconds = tick_seconds
        self._slots: list[dict[K, int]] = [{} for _ in range(slots)]
        self._slot_of: dict[K, int] = {}
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def add(self, key: K, delay_seconds: float) -> None:
        """Schedule `key` to expire after `delay_seconds` (at least one tick); replaces an existing timer."""
        if key in self._slot_of:
            self.cancel(key)
        ticks = max(1, math.ceil(delay_seconds / self.tick_seconds))
        size = len(self._slots)
        slot = (self._cursor + ticks) % size
        self._slots[slot][key] = (ticks - 1) // size
        self._slot_of[key] = slot

    def cancel(self, key: K) -> bool:
        """Forget `key`'s timer; False if it had none."""
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return False
        del self._slots[slot][key]
        return True

    def refresh(self, key: K, delay_seconds: float) -> None:
        """Push `key`'s deadline to `delay_seconds` from now."""
        self.add(key, delay_seconds)

    def advance(self) -> list[K]:
        """Move one tick forward and return the keys that expired."""
        self._cursor = (self._cursor + 1) % len(self._slots)
        slot = self._slots[self._cursor]
        expired: list[K] = []
        for key, rounds in slot.items():
            if rounds == 0:
                expired.append(key)
            else:
                slot[key] = rounds - 1
        for key in expired:
            del slot[key]
            del self._slot_of[key]
        return expired
