"""Sync returns every kind of inbox event in seq order, and its byte budget counts each kind's text."""

from __future__ import annotations

from im.backends.base import Edit, Read, Send
from im.backends.bus.memory import MemoryBus
from im.backends.sessions.memory import MemorySessions
from im.backends.store.sqlite import SqliteStore
from im.contracts.records import Caller, EditEvent, Message, ReadEvent
from im.logic.service import Logic, LogicSettings
from im.protocol.frames import encode_sync
from im.protocol.tokens import TokenCodec


async def test_a_sync_page_of_edits_is_cut_to_its_byte_budget_and_keeps_seq_order(store: SqliteStore) -> None:
    alice = (await store.create_user("a@example.test", "x", "a")).id
    bob = (await store.create_user("b@example.test", "x", "b")).id
    sent = await store.commit([Send(alice, f"m{i}", "short", 1, to=bob) for i in range(30)],
                              edit_window_ms=None, recall_window_ms=None)
    ids = [outcome.event.id for outcome in sent if isinstance(outcome.event, Message)]  # type: ignore[union-attr]
    await store.commit([Edit(alice, f"e{i}", message_id, "\x00" * 4000, 2) for i, message_id in enumerate(ids)],
                       edit_window_ms=None, recall_window_ms=None)
    await store.commit([Read(bob, ids[-1], 3, peer=alice)], edit_window_ms=None, recall_window_ms=None)
    logic = Logic(store, MemoryBus(), MemorySessions(), TokenCodec("k" * 32), LogicSettings(max_sync_bytes=64 * 1024))
    caller = Caller(bob, "token")
    pages = [await logic.sync(caller, 0, 500)]
    while pages[-1].more:
        pages.append(await logic.sync(caller, pages[-1].entries[-1][0], 500))
    assert len(pages) > 2, "30 edits of 24 KB each (a NUL is 6 bytes encoded) do not fit in one 64 KiB page"
    assert all(len(encode_sync(page)) <= 64 * 1024 for page in pages)
    entries = [entry for page in pages for entry in page.entries]
    assert [seq for seq, _ in entries] == list(range(1, 62))
    assert [type(event) for _, event in entries] == [Message] * 30 + [EditEvent] * 30 + [ReadEvent]
