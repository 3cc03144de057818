"""Plain messages stored through `Store.commit`, for the tests of what a store does with them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from im.backends.base import Applied, Send, Store
from im.contracts.records import Message

__all__ = ["Stored", "commit_sends"]


@dataclass(frozen=True, slots=True)
class Stored:
    """One send as stored: the message and each receiver's inbox seq. A duplicate `(sender, cid)` is
    not stored again: `duplicate` is set, `message` is the original and `seqs` holds only the sender's
    original seq."""

    message: Message
    seqs: dict[int, int]
    duplicate: bool


async def commit_sends(store: Store, sends: Sequence[Send]) -> list[Stored]:
    """Commit `sends` as one batch (no edit or recall windows); every one of them must be applied."""
    outcomes = await store.commit(sends, edit_window_ms=None, recall_window_ms=None)
    stored = []
    for send, outcome in zip(sends, outcomes, strict=True):
        assert isinstance(outcome, Applied), f"{send} was refused: {outcome}"
        assert isinstance(outcome.event, Message), outcome.event
        stored.append(Stored(outcome.event, outcome.seqs, outcome.duplicate))
    return stored
