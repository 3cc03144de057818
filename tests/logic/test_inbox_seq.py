"""Inbox sequence assignment through the real SQLite store (a file in a temp dir, no server)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from im.backends.base import Send
from im.backends.store.sqlite import SqliteStore
from tests.support.stores import commit_sends


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "im.sqlite3")
    await store.open()
    # The store refuses messages of users and groups that do not exist: users 1, 2, 3 and group 1.
    for n in (1, 2, 3):
        await store.create_user(f"{n}@example.test", "x", str(n))
    group = await store.create_group("all", 1)
    for n in (2, 3):
        await store.add_member(group.id, n)
    yield store
    await store.close()


def private(sender: int, to: int, cid: str) -> Send:
    return Send(sender, cid, f"{sender}->{to} {cid}", 1, to=to)


async def test_every_recipient_gets_the_next_gapless_seq_in_batch_order(store: SqliteStore) -> None:
    first = await commit_sends(store, [private(1, 2, "a"), private(2, 1, "b"), private(1, 3, "c")])
    assert [r.seqs for r in first] == [{1: 1, 2: 1}, {2: 2, 1: 2}, {1: 3, 3: 1}]
    second = await commit_sends(store, [Send(3, "g", "group", 1, group=1), private(2, 3, "d")])
    assert [r.seqs for r in second] == [{1: 4, 2: 3, 3: 2}, {2: 4, 3: 3}]
    page = await store.inbox(2, after=0, limit=100)
    assert [seq for seq, _ in page.entries] == [1, 2, 3, 4]


async def test_a_resent_cid_is_stored_once_and_answers_with_the_original(store: SqliteStore) -> None:
    [original] = await commit_sends(store, [private(1, 2, "x")])
    again = await commit_sends(store, [private(1, 2, "x"), private(1, 2, "x"), private(1, 2, "y")])
    assert again[0].duplicate and again[1].duplicate and not again[2].duplicate
    assert again[0].message.id == again[1].message.id == original.message.id
    assert again[0].seqs == {1: original.seqs[1]}
    assert again[2].seqs == {1: 2, 2: 2}
    assert [seq for seq, _ in (await store.inbox(2, 0, 100)).entries] == [1, 2]


async def test_a_duplicate_inside_one_batch_is_stored_once(store: SqliteStore) -> None:
    results = await commit_sends(store, [private(1, 2, "z"), private(1, 2, "z")])
    assert not results[0].duplicate and results[1].duplicate
    assert results[1].message.id == results[0].message.id and results[1].seqs == {1: 1}
    assert len((await store.inbox(1, 0, 100)).entries) == 1


async def test_inbox_pages_oldest_first_and_says_when_more_follow(store: SqliteStore) -> None:
    await commit_sends(store, [private(1, 2, str(i)) for i in range(5)])
    page = await store.inbox(2, after=1, limit=3)
    assert [seq for seq, _ in page.entries] == [2, 3, 4] and page.more
    assert [m.cid for _, m in page.entries] == ["1", "2", "3"]
    last = await store.inbox(2, after=4, limit=3)
    assert [seq for seq, _ in last.entries] == [5] and not last.more
