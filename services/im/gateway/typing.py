"""How often a user's typing in one conversation is forwarded: at most once per interval.

The gateway keeps the moment it last forwarded each (sender, conversation) pair; a typing frame
within the interval of it is dropped. Entries older than the interval are swept once per interval,
so the table holds only the pairs typed in lately, whatever the number of connections.
"""

from __future__ import annotations

__all__ = ["TypingThrottle"]

Conversation = tuple[int, int | None, int | None]
"""(sender, to, group)."""


class TypingThrottle:
    def __init__(self, interval_seconds: float, now: float) -> None:
        self._interval = interval_seconds
        self._forwarded: dict[Conversation, float] = {}
        self._swept_at = now

    def due(self, conversation: Conversation, now: float) -> bool:
        """Whether a typing frame in `conversation` may be forwarded now."""
        if now - self._swept_at >= self._interval:
            self._sweep(now)
        last = self._forwarded.get(conversation)
        return last is None or now - last >= self._interval

    def forwarded(self, conversation: Conversation, now: float) -> None:
        self._forwarded[conversation] = now

    def _sweep(self, now: float) -> None:
        interval = self._interval
        self._forwarded = {key: at for key, at in self._forwarded.items() if now - at < interval}
        self._swept_at = now

    def __len__(self) -> int:
        return len(self._forwarded)
