from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from im.backends.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh, open SQLite store (a module may define its own `store` instead)."""
    store = SqliteStore(tmp_path / "im.sqlite3")
    await store.open()
    yield store
    await store.close()
