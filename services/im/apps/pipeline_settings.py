"""Settings of logic's message pipeline that `im serve` and `im-logic` share."""

from __future__ import annotations

from im.config import at_least, setting

__all__ = ["EDIT_WINDOW", "FLUSH_TIMEOUT", "RECALL_WINDOW", "check_windows"]

FLUSH_TIMEOUT = setting(
    "IM_FLUSH_TIMEOUT_SECONDS",
    "on SIGTERM, seconds logic keeps trying to commit what it has taken, even through an outage; then "
    "im serve refuses the rest with `unavailable` and im-logic leaves it on RabbitMQ for redelivery")

EDIT_WINDOW = setting(
    "IM_EDIT_WINDOW_SECONDS", "how long after sending a message its sender may edit it; later edits are `forbidden`")

RECALL_WINDOW = setting(
    "IM_RECALL_WINDOW_SECONDS",
    "how long after sending a message its sender may recall it (erasing its content); later recalls are `forbidden`")


def check_windows(edit_window_seconds: float, recall_window_seconds: float) -> None:
    at_least("IM_EDIT_WINDOW_SECONDS", edit_window_seconds, 0)
    at_least("IM_RECALL_WINDOW_SECONDS", recall_window_seconds, 0)
