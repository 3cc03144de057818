"""Limits a gateway enforces on each client connection."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit is named with its unit; `None` turns a limit off where that makes sense."""

    max_frame_bytes: int = 64 * 1024
    """Largest WebSocket message accepted; a larger one closes the connection with 1009."""
    max_content_chars: int = 4000
    """Longest `content` of a `send`; longer gets a `too_large` error."""
    max_cid_chars: int = 64
    """Longest client message id."""
    max_cid_bytes: int = 255
    """Longest client message id in UTF-8 (the stores keep at most 255 bytes: 64 emoji would not fit)."""
    messages_per_second: float | None = 50.0
    """Sustained `send` rate per connection (token bucket refill); past it sends get `rate_limited`."""
    message_burst: int = 100
    """Token bucket size: how many sends may come at once after a quiet spell."""
    user_messages_per_second: float | None = 100.0
    """Sustained `send` rate of one user over all their connections to one gateway, beside the
    per-connection rate (so opening more connections does not multiply a user's rate)."""
    user_message_burst: int = 200
    max_send_queue_bytes: int | None = 1024 * 1024
    """Bytes waiting to be written to a slow reader before it is closed with 4008."""
    max_consecutive_errors: int | None = 50
    """Invalid frames in a row before the connection is closed with 4029 (once every send it had in
    flight is answered). Temporary refusals (`rate_limited`, `unavailable`) never count: they ask for
    a resend."""
    max_sync_limit: int = 500
    """Largest `limit` of one `sync` or history page."""
    default_sync_limit: int = 100
