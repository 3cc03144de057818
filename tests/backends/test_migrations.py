"""Upgrading a database made by the previous schema (migration 1 only) loses nothing, in both stores.

The old database is built here with raw SQL of migration 1, as the store of that version created and
filled it: the same tables and the rows its `create_user` / `create_group` / `add_member` and message
batches wrote. Then the current store opens it, migrates, and must show every old message with the same id,
seq, content and order, continue every inbox gaplessly, and know the old `(sender, cid)` pairs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomysql
import pytest

from im.backends.base import Applied, Recall, Send, Store
from im.backends.store import mysql, sqlite
from im.backends.store.mysql import MySqlStore, parse_mysql_url
from im.backends.store.sqlite import SqliteStore
from im.contracts.records import Message
from tests.support.stores import commit_sends

from .conftest import mysql_database

# The cut-off run repeats CREATE TABLE IF NOT EXISTS on purpose; the server warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Table '.*' already exists")

# users 1-4; group 1 (owner 1, members 1 2 3) with messages, group 2 (owner 4) without.
USERS = [(1, "ann@example.com"), (2, "bob@example.com"), (3, "cy@example.com"), (4, "dee@example.com")]
GROUPS = [(1, "friends", 1, [1, 2, 3]), (2, "quiet", 4, [4])]
TS = 1_700_000_000_000
# (id, sender, to, group, content, cid, created_at) and each receiver's seq (sender first).
MESSAGES: list[tuple[Message, dict[int, int]]] = [
    (Message(1, 1, 2, None, "hello", "c1", TS), {1: 1, 2: 1}),
    (Message(2, 2, 1, None, "hi back ' \" \\ %s", "c1", TS + 1), {2: 2, 1: 2}),
    (Message(5, 1, None, 1, "to the group 🦊", "g1", TS + 2), {1: 3, 2: 3, 3: 1}),
    (Message(9, 3, 3, None, "a note to myself", "n1", TS + 3), {3: 2}),
]


def expected_inbox(user: int) -> list[tuple[int, Message]]:
    return sorted((seqs[user], message) for message, seqs in MESSAGES if user in seqs)


def old_rows() -> dict[str, list[tuple[Any, ...]]]:
    """What the previous store held: rows per table (SQLite columns; MySQL adds joined_at / sender_seq)."""
    return {
        "users": [(i, email, f"hash{i}", f"nick {i}", TS) for i, email in USERS],
        "groups": [(g, name, owner, TS) for g, name, owner, _ in GROUPS],
        "group_members": [(g, u) for g, _, _, members in GROUPS for u in members],
        "messages": [(m.id, m.sender, m.to, m.group, m.content, m.cid, m.ts, seqs[m.sender]) for m, seqs in MESSAGES],
        "inbox": [(u, seq, m.id) for m, seqs in MESSAGES for u, seq in seqs.items()],
        "inbox_counters": [(u, max(seq for m, seqs in MESSAGES for v, seq in seqs.items() if v == u))
                           for u in (1, 2, 3)],
    }


def build_old_sqlite(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)")
    db.execute("BEGIN")
    for statement in sqlite.MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO schema_migrations VALUES (1, ?)", (TS,))
    rows = old_rows()
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)", rows["users"])
    db.executemany("INSERT INTO groups VALUES (?, ?, ?, ?)", rows["groups"])
    db.executemany("INSERT INTO group_members (group_id, user_id) VALUES (?, ?)", rows["group_members"])
    db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", [r[:7] for r in rows["messages"]])
    db.executemany("INSERT INTO inbox VALUES (?, ?, ?)", rows["inbox"])
    db.executemany("INSERT INTO inbox_counters VALUES (?, ?)", rows["inbox_counters"])  # none for user 4
    db.execute("COMMIT")
    db.close()


async def build_old_mysql(url: str, *, partial_steps_of_2: int = 0) -> None:
    u = parse_mysql_url(url)
    conn = await aiomysql.connect(host=u.host, port=u.port, user=u.user, password=u.password, db=u.database,
                                  charset="utf8mb4", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, "
                              f"name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) {mysql._TABLE}")
            version, name, statements = mysql.MIGRATIONS[0]
            for statement in statements:
                assert isinstance(statement, str)
                await cur.execute(statement)
            await cur.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (version, name, TS))
            rows = old_rows()
            await cur.executemany("INSERT INTO users VALUES (%s, %s, %s, %s, %s)", rows["users"])
            await cur.executemany("INSERT INTO inbox_counters VALUES (%s, 0)", [(i,) for i, _ in USERS])
            await cur.executemany("INSERT INTO `groups` VALUES (%s, %s, %s, %s)", rows["groups"])
            await cur.executemany("INSERT INTO group_members VALUES (%s, %s, %s)",
                                  [(*r, TS) for r in rows["group_members"]])
            await cur.executemany("INSERT INTO messages VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows["messages"])
            await cur.executemany("INSERT INTO inbox VALUES (%s, %s, %s)", rows["inbox"])
            await cur.executemany("UPDATE inbox_counters SET last_seq = %s WHERE user_id = %s",
                                  [(seq, user) for user, seq in rows["inbox_counters"]])
            # A migration 2 cut off after its backfills (DDL commits by itself): the next start must
            # finish it without doubling anything.
            for step in mysql.MIGRATIONS[1][2][:partial_steps_of_2]:
                await mysql._run_step(cur, step)
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "mysql", "mysql-cut-off"])
async def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    store: Store
    if request.param == "sqlite":
        build_old_sqlite(tmp_path / "old.db")
        store = SqliteStore(tmp_path / "old.db")
        await store.open()
        yield store
        await store.close()
        return
    with mysql_database() as url:
        await build_old_mysql(url, partial_steps_of_2=9 if request.param == "mysql-cut-off" else 0)
        store = MySqlStore(url)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


async def test_old_messages_sync_as_before(upgraded: Store) -> None:
    for user, _ in USERS:
        page = await upgraded.events(user, 0, 100)
        assert page.entries == expected_inbox(user) and not page.more
        assert (await upgraded.inbox(user, 0, 100)).entries == expected_inbox(user)
    assert (await upgraded.events(1, 1, 1)).entries == expected_inbox(1)[1:2]


async def test_users_groups_and_members_are_kept(upgraded: Store) -> None:
    for user, email in USERS:
        credentials = await upgraded.credentials(email)
        assert credentials is not None
        assert (credentials.user.id, credentials.user.nickname, credentials.password_hash) == (
            user, f"nick {user}", f"hash{user}")
    assert await upgraded.members([1, 2]) == {1: [1, 2, 3], 2: [4]}
    assert [g.id for g in await upgraded.groups_of(2)] == [1]


async def test_conversations_are_built_from_the_old_inboxes_with_everything_read(upgraded: Store) -> None:
    listed = {(c.peer, c.group): c for c in (await upgraded.conversations(1, 10)).entries}
    assert set(listed) == {(2, None), (None, 1)}
    private = listed[(2, None)]
    assert private.last == (2, MESSAGES[1][0]) and private.unread == 0 and private.read_up_to == 2
    assert private.peer_read_up_to == 2
    assert listed[(None, 1)].last == (3, MESSAGES[2][0])
    [note] = (await upgraded.conversations(3, 10, None)).entries[:1]
    assert note.peer == 3 and note.last == (2, MESSAGES[3][0])
    [quiet] = (await upgraded.conversations(4, 10)).entries
    assert (quiet.group, quiet.last, quiet.unread) == (2, None, 0)
    history = await upgraded.history(1, peer=2, limit=10)
    assert history.entries == [(2, MESSAGES[1][0]), (1, MESSAGES[0][0])]


async def test_inboxes_continue_gaplessly_and_old_cids_are_still_known(upgraded: Store) -> None:
    outcomes = await upgraded.commit([
        Send(1, "c1", "again", TS + 10, to=2),  # stored before the upgrade
        Send(1, "c2", "new", TS + 10, to=2),
        Send(2, "g2", "group", TS + 10, group=1),
        Send(4, "x", "first", TS + 10, to=1),
    ], edit_window_ms=None, recall_window_ms=None)
    assert all(isinstance(o, Applied) for o in outcomes)
    first, new, group, from_four = (o for o in outcomes if isinstance(o, Applied))
    assert first.duplicate and first.event == MESSAGES[0][0] and first.seqs == {1: 1}
    assert new.seqs == {1: 4, 2: 4}
    assert group.seqs == {2: 5, 1: 5, 3: 3}
    assert from_four.seqs == {4: 1, 1: 6}
    [again] = await commit_sends(upgraded, [Send(2, "c1", "x", TS, to=1)])
    assert again.duplicate and again.message == MESSAGES[1][0]
    [conversation] = [c for c in (await upgraded.conversations(2, 10)).entries if c.peer == 1]
    assert conversation.unread == 1


async def _raw_mysql(url: str, *statements: str) -> None:
    u = parse_mysql_url(url)
    conn = await aiomysql.connect(host=u.host, port=u.port, user=u.user, password=u.password, db=u.database,
                                  autocommit=True)
    try:
        async with conn.cursor() as cur:
            for statement in statements:
                await cur.execute(statement)
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
async def test_migration_4_takes_recalled_messages_out_of_the_unread_counts_left_by_earlier_versions(
        kind: str, tmp_path: Path) -> None:
    """Before migration 4 a recall left its message in the receiver's unread count: the database of such
    a version is this one with migration 4 undone and the count as that version left it."""
    undo = ["UPDATE conversations SET unread = 2 WHERE user_id = 2", "DELETE FROM schema_migrations WHERE version = 4"]

    async def reopened(make: Any, rewind: Any) -> int:
        store = make()
        await store.open()
        a = (await store.create_user("a@example.com", "h", "a")).id
        b = (await store.create_user("b@example.com", "h", "b")).id
        first, _ = await commit_sends(store, [Send(a, "1", "one", TS, to=b), Send(a, "2", "two", TS, to=b)])
        await store.commit([Recall(a, "r", first.message.id, TS)], edit_window_ms=None, recall_window_ms=None)
        assert [c.unread for c in (await store.conversations(b, 10)).entries] == [1]
        await store.close()
        await rewind()
        store = make()
        await store.open()
        try:
            return [c.unread for c in (await store.conversations(b, 10)).entries][0]
        finally:
            await store.close()

    if kind == "sqlite":
        path = tmp_path / "v3.db"

        async def rewind_sqlite() -> None:
            db = sqlite3.connect(path, isolation_level=None)
            for statement in undo:
                db.execute(statement)
            db.close()

        assert await reopened(lambda: SqliteStore(path), rewind_sqlite) == 1
        return
    with mysql_database() as url:
        assert await reopened(lambda: MySqlStore(url), lambda: _raw_mysql(url, *undo)) == 1
