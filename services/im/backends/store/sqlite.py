"""The SQLite store: one file in the data dir, WAL journal, every call on one dedicated thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from im.backends.base import NewMessage, Persisted, UserCredentials
from im.contracts.records import Group, InboxPage, Message, User
from im.protocol.errors import Conflict, Unavailable

__all__ = ["SqliteStore", "MIGRATIONS"]

T = TypeVar("T")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        nickname TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE groups (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        owner_id INTEGER NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL
    );
    CREATE TABLE group_members (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL REFERENCES groups(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        UNIQUE (group_id, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members (user_id);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        sender_id INTEGER NOT NULL,
        to_user_id INTEGER,
        group_id INTEGER,
        content TEXT NOT NULL,
        cid TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (sender_id, cid)
    );
    CREATE TABLE inbox (
        user_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE inbox_counters (
        user_id INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL
    );
    """,
]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


class SqliteStore:
    def __init__(self, path: Path | str, *, synchronous: Synchronous = "FULL") -> None:
        self._path = str(path)
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise Unavailable("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, db)

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            _migrate(db)
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._call(lambda db: db.execute("SELECT 1").fetchone())

    async def create_user(self, email: str, password_hash: str, nickname: str) -> User:
        def insert(db: sqlite3.Connection) -> User:
            try:
                cursor = db.execute(
                    "INSERT INTO users (email, password_hash, nickname, created_at) VALUES (?, ?, ?, ?)",
                    (email, password_hash, nickname, _now_ms()),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"the email {email!r} is already registered") from None
            assert cursor.lastrowid is not None
            return User(cursor.lastrowid, email, nickname)

        return await self._call(insert)

    async def credentials(self, email: str) -> UserCredentials | None:
        row = await self._call(lambda db: db.execute(
            "SELECT id, email, nickname, password_hash FROM users WHERE email = ?", (email,)
        ).fetchone())
        return None if row is None else UserCredentials(User(row[0], row[1], row[2]), row[3])

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]:
        ids = list(set(user_ids))
        if not ids:
            return set()
        return await self._call(lambda db: {row[0] for row in db.execute(
            f"SELECT id FROM users WHERE id IN ({_marks(ids)})", ids
        )})

    async def create_group(self, name: str, owner: int) -> Group:
        def insert(db: sqlite3.Connection) -> Group:
            with _transaction(db):
                cursor = db.execute(
                    "INSERT INTO groups (name, owner_id, created_at) VALUES (?, ?, ?)", (name, owner, _now_ms())
                )
                assert cursor.lastrowid is not None
                db.execute("INSERT INTO group_members (group_id, user_id) VALUES (?, ?)", (cursor.lastrowid, owner))
            return Group(cursor.lastrowid, name, owner)

        return await self._call(insert)

    async def group(self, group_id: int) -> Group | None:
        row = await self._call(lambda db: db.execute(
            "SELECT id, name, owner_id FROM groups WHERE id = ?", (group_id,)
        ).fetchone())
        return None if row is None else Group(*row)

    async def add_member(self, group_id: int, user_id: int) -> bool:
        cursor = await self._call(lambda db: db.execute(
            "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)", (group_id, user_id)
        ))
        return cursor.rowcount == 1

    async def members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = list(set(group_ids))
        if not ids:
            return {}

        def query(db: sqlite3.Connection) -> dict[int, list[int]]:
            found: dict[int, list[int]] = {
                row[0]: [] for row in db.execute(f"SELECT id FROM groups WHERE id IN ({_marks(ids)})", ids)
            }
            for group_id, user_id in db.execute(
                f"SELECT group_id, user_id FROM group_members WHERE group_id IN ({_marks(ids)}) "
                "ORDER BY group_id, user_id", ids,
            ):
                found[group_id].append(user_id)
            return found

        return await self._call(query)

    async def groups_of(self, user_id: int) -> list[Group]:
        rows = await self._call(lambda db: db.execute(
            "SELECT g.id, g.name, g.owner_id FROM groups g JOIN group_members m ON m.group_id = g.id "
            "WHERE m.user_id = ? ORDER BY g.id", (user_id,)
        ).fetchall())
        return [Group(*row) for row in rows]

    async def persist(self, batch: Sequence[NewMessage]) -> list[Persisted]:
        return await self._call(lambda db: _persist(db, batch))

    async def inbox(self, user_id: int, after: int, limit: int) -> InboxPage:
        rows = await self._call(lambda db: db.execute(
            "SELECT i.seq, m.id, m.sender_id, m.to_user_id, m.group_id, m.content, m.cid, m.created_at "
            "FROM inbox i JOIN messages m ON m.id = i.message_id "
            "WHERE i.user_id = ? AND i.seq > ? ORDER BY i.seq LIMIT ?", (user_id, after, limit + 1)
        ).fetchall())
        entries = [(row[0], Message(*row[1:])) for row in rows[:limit]]
        return InboxPage(entries, more=len(rows) > limit)


def _persist(db: sqlite3.Connection, batch: Sequence[NewMessage]) -> list[Persisted]:
    with _transaction(db):
        results: list[Persisted | None] = [None] * len(batch)
        fresh: list[tuple[int, NewMessage]] = []
        seen: dict[tuple[int, str], int] = {}
        for index, new in enumerate(batch):
            key = (new.sender, new.cid)
            if key in seen:
                continue
            seen[key] = index
            original = _stored_original(db, new.sender, new.cid)
            if original is not None:
                results[index] = original
            else:
                fresh.append((index, new))
        next_id = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM messages").fetchone()[0]
        users = sorted({user for _, new in fresh for user in new.recipients})
        last_seq = dict.fromkeys(users, 0)
        for start in range(0, len(users), 500):
            chunk = users[start:start + 500]
            last_seq.update(db.execute(
                f"SELECT user_id, last_seq FROM inbox_counters WHERE user_id IN ({_marks(chunk)})", chunk
            ).fetchall())
        message_rows = []
        inbox_rows = []
        for offset, (index, new) in enumerate(fresh):
            message = Message(next_id + offset, new.sender, new.to, new.group, new.content, new.cid, new.ts)
            seqs: dict[int, int] = {}
            for user in new.recipients:
                last_seq[user] += 1
                seqs[user] = last_seq[user]
                inbox_rows.append((user, last_seq[user], message.id))
            message_rows.append(
                (message.id, message.sender, message.to, message.group, message.content, message.cid, message.ts)
            )
            results[index] = Persisted(message, seqs)
        db.executemany(
            "INSERT INTO messages (id, sender_id, to_user_id, group_id, content, cid, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", message_rows,
        )
        db.executemany("INSERT INTO inbox (user_id, seq, message_id) VALUES (?, ?, ?)", inbox_rows)
        db.executemany(
            "INSERT INTO inbox_counters (user_id, last_seq) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq",
            [(user, last_seq[user]) for user in users],
        )
    for index, new in enumerate(batch):
        if results[index] is None:
            first = results[seen[(new.sender, new.cid)]]
            assert first is not None
            results[index] = Persisted(first.message, {new.sender: first.seqs[new.sender]}, duplicate=True)
    return [result for result in results if result is not None]


def _stored_original(db: sqlite3.Connection, sender: int, cid: str) -> Persisted | None:
    row = db.execute(
        "SELECT m.id, m.sender_id, m.to_user_id, m.group_id, m.content, m.cid, m.created_at, i.seq "
        "FROM messages m JOIN inbox i ON i.message_id = m.id AND i.user_id = m.sender_id "
        "WHERE m.sender_id = ? AND m.cid = ?", (sender, cid),
    ).fetchone()
    if row is None:
        return None
    return Persisted(Message(*row[:7]), {sender: row[7]}, duplicate=True)


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)")
    applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    for version, script in enumerate(MIGRATIONS, start=1):
        if version in applied:
            continue
        with _transaction(db):
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, _now_ms()))


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _now_ms() -> int:
    return int(time.time() * 1000)
