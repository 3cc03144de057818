"""The client's saved state and backoff, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from im.client import FileStore, MemoryStore, PendingSend, ReconnectPolicy, SavedState
from im.client.state import SeqTracker, default_store_path


def test_the_tracker_keeps_the_highest_gapless_seq_and_what_came_above_a_gap() -> None:
    seqs = SeqTracker()
    assert seqs.note(1) and seqs.note(2) and seqs.note(4)
    assert (seqs.mark, seqs.above, seqs.has_gap) == (2, {4}, True)
    assert not seqs.note(4) and not seqs.note(1), "a seq seen once is a duplicate afterwards"
    assert seqs.note(3)
    assert (seqs.mark, seqs.has_gap) == (4, False)
    seqs.note(9)
    seqs.fill_to(7)
    assert (seqs.mark, seqs.above) == (7, {9})
    seqs.note(8)
    assert (seqs.mark, seqs.has_gap) == (9, False)
    assert SeqTracker(5, [3, 6, 8]).mark == 6


def test_the_file_store_round_trips_and_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    store = FileStore(path)
    assert store.load() is None
    state = SavedState(12, [14], [PendingSend("c1", "hi", 2, None, 1700000000000),
                                  PendingSend("c2", "all", None, 7, 1700000000001, "failed", "forbidden: no")])
    store.save(state)
    assert store.load() == state
    store.save(SavedState(13))
    assert store.load() == SavedState(13)
    assert [p.name for p in path.parent.iterdir()] == ["state.json"], "no temporary file is left behind"


def test_the_memory_store_keeps_a_copy() -> None:
    store = MemoryStore()
    state = SavedState(1, [], [PendingSend("c", "x", 2, None, 1)])
    store.save(state)
    state.pending[0].status = "failed"
    loaded = store.load()
    assert loaded is not None and loaded.pending[0].status == "pending"


def test_the_default_store_is_one_file_per_server_and_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_store_path("http://127.0.0.1:8080", 7) == tmp_path / "imcluster" / "127.0.0.1_8080" / "7.json"


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    policy = ReconnectPolicy(first_delay_seconds=0.5, max_delay_seconds=30)
    assert [policy.delay(n, lambda: 0.0) for n in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert [policy.delay(n, lambda: 1.0) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.delay(50, lambda: 1.0) == 30
    assert policy.delay(50, lambda: 0.0) == 15
