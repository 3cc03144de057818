"""What only the SQLite store does: how it folds its log into the database file."""

from __future__ import annotations

from pathlib import Path

from im.backends.base import Send
from im.backends.store.sqlite import WAL_AUTOCHECKPOINT_PAGES, SqliteStore

PAGE = 4096


async def test_the_log_is_folded_in_every_ten_thousand_pages_not_every_thousand(tmp_path: Path) -> None:
    """Batches that change more than 1,000 pages (SQLite's default checkpoint interval) leave them all
    in the log, which a checkpoint at the default would have reset and started over."""
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    try:
        people = [(await store.create_user(f"u{i}@example.com", "hash", f"user {i}")).id for i in range(200)]
        log = tmp_path / "store.db-wal"
        batch = 0
        while log.stat().st_size < 2_000 * PAGE:
            sends = [Send(people[(batch * 7 + i) % 200], f"{batch}.{i}", "a message of ordinary length",
                          1_700_000_000_000, to=people[(batch * 13 + i * 3 + 1) % 200]) for i in range(100)]
            await store.commit(sends, edit_window_ms=None, recall_window_ms=None)
            batch += 1
            assert batch < 100, f"the log stayed at {log.stat().st_size // PAGE} pages"
        assert log.stat().st_size < WAL_AUTOCHECKPOINT_PAGES * PAGE * 1.5
    finally:
        await store.close()
