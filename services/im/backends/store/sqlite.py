"""The SQLite store: one file in the data dir, WAL journal, every call on one dedicated thread.

Writes are `BEGIN IMMEDIATE` transactions, so one writer at a time: the SQLite form of the lock order
of docs/storage.md is that the whole database is the lock. Decisions come from `plan.py`, the same
code the MySQL store runs; this module only reads and writes rows.

Errors that say the file cannot be written *now* (locked by another writer past the busy timeout, an
I/O error, a full disk, a read-only file) are `Unavailable`: the caller retries them. Anything else
(an integer too large to bind, say) is about the data and is raised as it is.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from im.backends.base import Applied, BatchItem, Outcome, UserCredentials
from im.backends.store.common import GroupDecision, SharedStore, marks, valid_ids
from im.backends.store.plan import EVENT_INSERT_COLUMNS, BatchPlan, ConvKey, Counter, Target, Writes
from im.backends.store.rows import (
    COUNTS_AS_UNREAD,
    EVENT_COLUMNS,
    GROUP,
    MESSAGE_WIDTH,
    PRIVATE,
    event_from_row,
    fits,
    message_columns,
    message_from_row,
)
from im.contracts.records import (
    Group,
    InboxEvent,
    Message,
    Profile,
    User,
)
from im.protocol.errors import BadRequest, Conflict, NotFound, Unavailable

__all__ = ["SqliteStore", "MIGRATIONS", "WAL_AUTOCHECKPOINT_PAGES", "WAL_SIZE_LIMIT_BYTES"]

T = TypeVar("T")

# Append only: an applied migration never changes. Each runs in one transaction.
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
    # 2: typed inbox events, conversations, blocks, edit / recall, former members (docs/storage.md).
    # inbox is rebuilt: message_id becomes nullable (an event row) and each row learns its conversation.
    """
    ALTER TABLE messages ADD COLUMN edited_at INTEGER;
    ALTER TABLE messages ADD COLUMN recall_id INTEGER;
    ALTER TABLE group_members ADD COLUMN left_at INTEGER;
    ALTER TABLE inbox_counters ADD COLUMN blocked_by INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        actor_id INTEGER NOT NULL,
        actor_seq INTEGER NOT NULL,
        message_id INTEGER,
        group_id INTEGER,
        peer_id INTEGER,
        target_user_id INTEGER,
        action TEXT,
        name TEXT,
        owner_id INTEGER,
        up_to INTEGER,
        cid TEXT,
        created_at INTEGER NOT NULL,
        UNIQUE (actor_id, actor_seq),
        UNIQUE (actor_id, cid)
    );
    CREATE TABLE inbox_v2 (
        user_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        message_id INTEGER,
        event_id INTEGER,
        conv_type INTEGER,
        conv_id INTEGER,
        PRIMARY KEY (user_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO inbox_v2 (user_id, seq, message_id, conv_type, conv_id)
        SELECT i.user_id, i.seq, i.message_id,
               CASE WHEN m.id IS NULL THEN NULL WHEN m.group_id IS NULL THEN 1 ELSE 2 END,
               CASE WHEN m.group_id IS NOT NULL THEN m.group_id
                    WHEN i.user_id = m.sender_id THEN m.to_user_id ELSE m.sender_id END
        FROM inbox i LEFT JOIN messages m ON m.id = i.message_id;
    DROP TABLE inbox;
    ALTER TABLE inbox_v2 RENAME TO inbox;
    CREATE INDEX inbox_by_conversation ON inbox (user_id, conv_type, conv_id, message_id);
    CREATE TABLE conversations (
        user_id INTEGER NOT NULL,
        conv_type INTEGER NOT NULL,
        conv_id INTEGER NOT NULL,
        last_message_id INTEGER,
        last_seq INTEGER,
        updated_at INTEGER NOT NULL,
        read_up_to INTEGER,
        unread INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, conv_type, conv_id)
    ) WITHOUT ROWID;
    CREATE INDEX conversations_by_activity ON conversations (user_id, updated_at, conv_type, conv_id);
    INSERT INTO conversations (user_id, conv_type, conv_id, last_message_id, last_seq, updated_at, read_up_to, unread)
        SELECT i.user_id, i.conv_type, i.conv_id, i.message_id, i.seq, m.created_at, last.top, 0
        FROM (SELECT user_id, conv_type, conv_id, MAX(seq) AS seq, MAX(message_id) AS top FROM inbox
              WHERE conv_type IS NOT NULL GROUP BY user_id, conv_type, conv_id) last
        JOIN inbox i ON i.user_id = last.user_id AND i.seq = last.seq
        JOIN messages m ON m.id = i.message_id;
    INSERT OR IGNORE INTO conversations (user_id, conv_type, conv_id, updated_at)
        SELECT gm.user_id, 2, gm.group_id, g.created_at FROM group_members gm JOIN groups g ON g.id = gm.group_id;
    CREATE TABLE blocks (
        user_id INTEGER NOT NULL REFERENCES users(id),
        blocked_id INTEGER NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, blocked_id)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE last_seen (
        user_id INTEGER PRIMARY KEY,
        seen_at INTEGER NOT NULL
    );
    """,
    # 4: before it, a recalled message stayed in the unread counts it was in: count those again.
    """
    UPDATE conversations SET unread = (
        SELECT COUNT(*) FROM inbox i JOIN messages m ON m.id = i.message_id
        WHERE i.user_id = conversations.user_id AND i.conv_type = conversations.conv_type
          AND i.conv_id = conversations.conv_id AND i.message_id > COALESCE(conversations.read_up_to, 0)
          AND m.sender_id <> i.user_id AND m.recall_id IS NULL)
    WHERE unread > 0;
    """,
]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_CHUNK = 500  # ids per IN list: well under SQLite's bound parameters limit
# A checkpoint copies every page changed since the last one into the database file: the inbox and
# conversation pages of the active users change in every batch, so checkpointing ten times more rarely
# than SQLite's default (1,000 pages) copies each of them ten times less often (docs/storage.md).
WAL_AUTOCHECKPOINT_PAGES = 10_000
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""What the log is cut back to after a checkpoint."""

# Primary result codes (the low byte: `SQLITE_BUSY_SNAPSHOT` is a `SQLITE_BUSY`) a later attempt may not meet.
_OUTAGES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
                      sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM,
                      sqlite3.SQLITE_PROTOCOL})


class SqliteStore(SharedStore):
    def __init__(self, path: Path | str, *, synchronous: Synchronous = "FULL") -> None:
        self._path = str(path)
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise Unavailable("the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, db)
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF in _OUTAGES:
                raise Unavailable(f"SQLite {self._path}: {error}") from error
            raise

    async def _in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run(db: sqlite3.Connection) -> T:
            with _transaction(db):
                return fn(db)

        return await self._call(run)

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            # A recalled message's text must not survive in free space of the file's pages.
            db.execute("PRAGMA secure_delete=ON")
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

    # -- users --------------------------------------------------------------------------------------

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
            # Made here so that a batch finds it: a user without one is looked up in users first.
            db.execute("INSERT INTO inbox_counters (user_id, last_seq) VALUES (?, 0)", (cursor.lastrowid,))
            return User(cursor.lastrowid, email, nickname)

        return await self._in_transaction(insert)

    async def credentials(self, email: str) -> UserCredentials | None:
        row = await self._call(lambda db: db.execute(
            "SELECT id, email, nickname, password_hash FROM users WHERE email = ?", (email,)
        ).fetchone())
        return None if row is None else UserCredentials(User(row[0], row[1], row[2]), row[3])

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]:
        ids = valid_ids(user_ids)
        return await self._call(lambda db: _existing_users(db, ids))

    async def user(self, user_id: int) -> User | None:
        if not fits(user_id):
            return None
        row = await self._call(lambda db: db.execute(
            "SELECT id, email, nickname FROM users WHERE id = ?", (user_id,)).fetchone())
        return None if row is None else User(*row)

    async def profiles(self, user_ids: Iterable[int]) -> list[Profile]:
        ids = valid_ids(user_ids)

        def query(db: sqlite3.Connection) -> list[Profile]:
            found = [Profile(*row) for chunk in _chunks(ids) for row in db.execute(
                f"SELECT id, nickname FROM users WHERE id IN ({marks(chunk)})", chunk)]
            return sorted(found, key=lambda p: p.id)

        return await self._call(query)

    async def find_user(self, email: str) -> Profile | None:
        row = await self._call(lambda db: db.execute(
            "SELECT id, nickname FROM users WHERE email = ?", (email,)).fetchone())
        return None if row is None else Profile(*row)

    async def set_nickname(self, user_id: int, nickname: str) -> User:
        def update(db: sqlite3.Connection) -> User:
            row = db.execute("UPDATE users SET nickname = ? WHERE id = ? RETURNING id, email, nickname",
                             (nickname, user_id)).fetchone() if fits(user_id) else None
            if row is None:
                raise NotFound(f"no user {user_id}")
            return User(*row)

        return await self._in_transaction(update)

    # -- groups -------------------------------------------------------------------------------------

    async def create_group(self, name: str, owner: int) -> Group:
        def insert(db: sqlite3.Connection) -> Group:
            if not _existing_users(db, [owner]):
                raise NotFound(f"user {owner} does not exist")
            now = _now_ms()
            cursor = db.execute("INSERT INTO groups (name, owner_id, created_at) VALUES (?, ?, ?)", (name, owner, now))
            assert cursor.lastrowid is not None
            _enter_group(db, cursor.lastrowid, owner, now)
            return Group(cursor.lastrowid, name, owner)

        return await self._in_transaction(insert)

    async def group(self, group_id: int) -> Group | None:
        return await self._call(lambda db: _group(db, group_id))

    async def add_member(self, group_id: int, user_id: int) -> bool:
        def add(db: sqlite3.Connection) -> bool:
            group = _group(db, group_id)
            if group is None or not _existing_users(db, [user_id]):
                raise NotFound(f"group {group_id} or user {user_id} does not exist")
            if user_id in _members(db, group_id):
                return False
            _enter_group(db, group_id, user_id, _now_ms())
            return True

        return await self._in_transaction(add)

    async def members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = valid_ids(group_ids)

        def query(db: sqlite3.Connection) -> dict[int, list[int]]:
            found = sorted(_existing_groups(db, ids))
            memberships = _memberships(db, found)
            return {group: [user for user, now in memberships.get(group, []) if now] for group in found}

        return await self._call(query)

    async def groups_of(self, user_id: int) -> list[Group]:
        if not fits(user_id):
            return []
        rows = await self._call(lambda db: db.execute(
            "SELECT g.id, g.name, g.owner_id FROM groups g JOIN group_members m ON m.group_id = g.id "
            "WHERE m.user_id = ? AND m.left_at IS NULL ORDER BY g.id", (user_id,)
        ).fetchall())
        return [Group(*row) for row in rows]

    async def _query(self, sql: str, args: Sequence[int]) -> list[Sequence[Any]]:
        return await self._call(lambda db: db.execute(sql, args).fetchall())

    async def _change_group(self, group_id: int, decision: GroupDecision) -> Applied | None:
        def change(db: sqlite3.Connection) -> Applied | None:
            group = _group(db, group_id)
            if group is None:
                raise NotFound(f"no group {group_id}")
            decided = decision(group, _members(db, group_id))
            if decided is None:
                return None
            now = _now_ms()
            writes, applied = decided.writes(_counters(db, decided.receivers), now, event_base=_next_id(db, "events"))
            if decided.member is not None:
                user, action = decided.member
                if action == "joined":
                    _enter_group(db, group_id, user, now)
                else:
                    db.execute("UPDATE group_members SET left_at = ? WHERE group_id = ? AND user_id = ?",
                               (now, group_id, user))
            else:
                db.execute("UPDATE groups SET name = ?, owner_id = ? WHERE id = ?",
                           (decided.name or group.name, decided.owner or group.owner, group_id))
            _write(db, writes)
            return applied

        return await self._in_transaction(change)

    # -- blocks -------------------------------------------------------------------------------------

    async def block(self, user_id: int, blocked_id: int) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            if user_id == blocked_id:
                raise BadRequest("you cannot block yourself")
            if len(_existing_users(db, [user_id, blocked_id])) < 2:
                raise NotFound(f"no user {blocked_id}")
            if db.execute("INSERT OR IGNORE INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)",
                          (user_id, blocked_id, _now_ms())).rowcount == 0:
                return False
            _count_blocker(db, blocked_id, +1)
            return True

        return await self._in_transaction(insert)

    async def unblock(self, user_id: int, blocked_id: int) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            if not (fits(user_id) and fits(blocked_id)) or db.execute(
                    "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?", (user_id, blocked_id)).rowcount == 0:
                return False
            _count_blocker(db, blocked_id, -1)
            return True

        return await self._in_transaction(delete)

    async def blocked(self, user_id: int) -> list[int]:
        if not fits(user_id):
            return []
        rows = await self._call(lambda db: db.execute(
            "SELECT blocked_id FROM blocks WHERE user_id = ? ORDER BY blocked_id", (user_id,)).fetchall())
        return [row[0] for row in rows]

    # -- presence -----------------------------------------------------------------------------------

    async def record_last_seen(self, seen: Mapping[int, int]) -> None:
        rows = [(user, at) for user, at in seen.items() if fits(user)]
        if not rows:
            return

        def upsert(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO last_seen (user_id, seen_at) VALUES (?, ?) ON CONFLICT (user_id) "
                           "DO UPDATE SET seen_at = MAX(seen_at, excluded.seen_at)", rows)

        await self._in_transaction(upsert)

    # -- the batch ----------------------------------------------------------------------------------

    async def commit(self, batch: Sequence[BatchItem], *, edit_window_ms: int | None, recall_window_ms: int | None,
                     ) -> list[Outcome]:
        if not batch:
            return []
        return await self._in_transaction(lambda db: _commit(db, BatchPlan(
            batch, edit_window_ms=edit_window_ms, recall_window_ms=recall_window_ms)))


_MESSAGE = message_columns("m")


# -- one batch: the steps of BatchPlan -------------------------------------------------------------

def _commit(db: sqlite3.Connection, plan: BatchPlan) -> list[Outcome]:
    plan.learn_targets(_targets(db, plan.target_ids()))
    existing = _existing_groups(db, plan.send_groups())
    plan.learn_groups(existing, _memberships(db, plan.member_groups()))
    plan.learn_holders(_holders(db, plan.holder_probes()))
    plan.learn_counters(_counters(db, plan.users()))
    plan.learn_blocks({pair for pair in plan.block_pairs() if db.execute(
        "SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?", pair).fetchone()})
    plan.learn_originals(_stored_messages(db, plan.send_keys()), _stored_events(db, plan.event_keys()))
    plan.learn_conversations(_read_pointers(db, plan.pointer_keys()))
    _write(db, plan.decide(message_base=_next_id(db, "messages"), event_base=_next_id(db, "events")))
    return plan.outcomes()


def _targets(db: sqlite3.Connection, ids: list[int]) -> dict[int, Target]:
    targets = {}
    for chunk in _chunks(ids):
        for row in db.execute(f"SELECT {_MESSAGE}, e.actor_seq, e.created_at FROM messages m "
                              f"LEFT JOIN events e ON e.id = m.recall_id WHERE m.id IN ({marks(chunk)})", chunk):
            message = message_from_row(row)
            targets[message.id] = Target(message, None if row[-2] is None else (row[-2], row[-1]))
    return targets


def _memberships(db: sqlite3.Connection, group_ids: list[int]) -> dict[int, list[tuple[int, bool]]]:
    found: dict[int, list[tuple[int, bool]]] = {}
    for chunk in _chunks(group_ids):
        for group, user, left_at in db.execute(
                f"SELECT group_id, user_id, left_at FROM group_members WHERE group_id IN ({marks(chunk)}) "
                "ORDER BY group_id, user_id", chunk):
            found.setdefault(group, []).append((user, left_at is None))
    return found


def _holders(db: sqlite3.Connection, probes: list[tuple[int, int, int]]) -> set[tuple[int, int]]:
    return {(user, message) for user, group, message in probes if db.execute(
        "SELECT 1 FROM inbox WHERE user_id = ? AND conv_type = 2 AND conv_id = ? AND message_id = ?",
        (user, group, message)).fetchone()}


def _counters(db: sqlite3.Connection, users: Sequence[int]) -> dict[int, Counter]:
    """The counter rows of the existing ones among `users` (a user without one starts at 0)."""
    counters = {}
    for chunk in _chunks([user for user in users if fits(user)]):
        for user, last_seq, blocked_by in db.execute(
                f"SELECT user_id, last_seq, blocked_by FROM inbox_counters WHERE user_id IN ({marks(chunk)})", chunk):
            counters[user] = Counter(last_seq, blocked_by)
    missing = [user for user in users if user not in counters]
    counters.update((user, Counter(0, 0)) for user in _existing_users(db, missing))
    return counters


def _stored_messages(db: sqlite3.Connection, keys: list[tuple[int, str]]) -> dict[tuple[int, str], tuple[Message, int]]:
    """The already stored messages among `(sender, cid)` keys and the sender's seq of each: one query per
    few hundred keys (the sender's inbox row found through its conversation index)."""
    found = {}
    for chunk in _chunks(keys):
        # CROSS JOIN keeps this join order: the keys, then one index lookup each in messages and inbox.
        for row in db.execute(
                f"SELECT {_MESSAGE}, i.seq FROM (VALUES {','.join(['(?, ?)'] * len(chunk))}) k "
                "CROSS JOIN messages m ON m.sender_id = k.column1 AND m.cid = k.column2 "
                "CROSS JOIN inbox i ON i.user_id = m.sender_id "
                "AND i.conv_type = CASE WHEN m.group_id IS NULL THEN 1 ELSE 2 END "
                "AND i.conv_id = COALESCE(m.group_id, m.to_user_id) AND i.message_id = m.id",
                [value for key in chunk for value in key]):
            message = message_from_row(row)
            found[(message.sender, message.cid)] = (message, row[-1])
    return found


def _stored_events(db: sqlite3.Connection, keys: list[tuple[int, str]],
                   ) -> dict[tuple[int, str], tuple[InboxEvent, int]]:
    found = {}
    for actor, cid in keys:
        row = db.execute(f"SELECT e.actor_seq, {EVENT_COLUMNS}, {message_columns('em')} FROM events e "
                         "LEFT JOIN messages em ON em.id = e.message_id WHERE e.actor_id = ? AND e.cid = ?",
                         (actor, cid)).fetchone()
        if row is not None:
            found[(actor, cid)] = (event_from_row(row[1:11], row[11:11 + MESSAGE_WIDTH], actor), row[0])
    return found


def _read_pointers(db: sqlite3.Connection, keys: list[ConvKey]) -> dict[ConvKey, tuple[int | None, int | None]]:
    found = {}
    for key in keys:
        row = db.execute("SELECT last_message_id, read_up_to FROM conversations "
                         "WHERE user_id = ? AND conv_type = ? AND conv_id = ?", key).fetchone()
        if row is not None:
            found[key] = (row[0], row[1])
    return found


def _write(db: sqlite3.Connection, writes: Writes) -> None:
    """Insert and update everything `writes` holds (its ids are final: the bases were the next ids)."""
    db.executemany(
        "INSERT INTO messages (id, sender_id, to_user_id, group_id, content, cid, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(writes.message_base + position, m.sender, m.to, m.group, m.content, m.cid, m.ts)
         for position, m in enumerate(writes.messages)])
    if writes.events:
        db.executemany(f"INSERT INTO events (id, {EVENT_INSERT_COLUMNS}) VALUES (?{', ?' * 13})",
                       [(writes.event_base + position, *e.values()) for position, e in enumerate(writes.events)])
    for conv_type, rows in ((PRIVATE, writes.private_inbox), (GROUP, writes.group_inbox)):
        if rows:
            db.executemany(f"INSERT INTO inbox (user_id, seq, message_id, conv_type, conv_id) "
                           f"VALUES (?, ?, ?, {conv_type}, ?)", rows)
    if writes.event_inbox:
        db.executemany("INSERT INTO inbox (user_id, seq, event_id) VALUES (?, ?, ?)", writes.event_inbox)
    if writes.message_changes:
        db.executemany(
            "UPDATE messages SET content = ?, edited_at = ?, recall_id = COALESCE(?, recall_id) WHERE id = ?",
            [(c.content, c.edited_at, None if c.recall is None else writes.event_base + c.recall, message_id)
             for message_id, c in writes.message_changes.items()])
    db.executemany(
        "INSERT INTO conversations (user_id, conv_type, conv_id, last_message_id, last_seq, updated_at, unread) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, conv_type, conv_id) DO UPDATE SET "
        "last_message_id = COALESCE(excluded.last_message_id, last_message_id), "
        "last_seq = COALESCE(excluded.last_seq, last_seq), updated_at = MAX(updated_at, excluded.updated_at), "
        "unread = unread + excluded.unread",
        [(*key, None if c.last_message is None else writes.message_base + c.last_message, c.last_seq, c.updated_at,
          c.unread) for key, c in writes.conversations.items() if c.updated_at or c.unread])
    reads = [(key, c.read_from, c.read_up_to) for key, c in writes.conversations.items() if c.read_up_to is not None]
    if reads:
        db.executemany(
            "UPDATE conversations SET read_up_to = ?, unread = MAX(0, unread - (SELECT COUNT(*) FROM inbox i "
            "JOIN messages m ON m.id = i.message_id WHERE i.user_id = ? AND i.conv_type = ? AND i.conv_id = ? "
            f"AND i.message_id > ? AND i.message_id <= ? AND {COUNTS_AS_UNREAD})) "
            "WHERE user_id = ? AND conv_type = ? AND conv_id = ?",
            [(up_to, *key, read_from, up_to, *key) for key, read_from, up_to in reads])
    db.executemany(
        "INSERT INTO inbox_counters (user_id, last_seq) VALUES (?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq", writes.counters())


def _next_id(db: sqlite3.Connection, table: str) -> int:
    return int(db.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])


# -- small reads and writes ------------------------------------------------------------------------

def _group(db: sqlite3.Connection, group_id: int) -> Group | None:
    if not fits(group_id):
        return None
    row = db.execute("SELECT id, name, owner_id FROM groups WHERE id = ?", (group_id,)).fetchone()
    return None if row is None else Group(*row)


def _members(db: sqlite3.Connection, group_id: int) -> list[int]:
    return [user for user, now in _memberships(db, [group_id]).get(group_id, []) if now]


def _enter_group(db: sqlite3.Connection, group_id: int, user_id: int, now: int) -> None:
    """Make `user_id` a member (again) and give it the group's conversation row."""
    db.execute("INSERT INTO group_members (group_id, user_id) VALUES (?, ?) "
               "ON CONFLICT (group_id, user_id) DO UPDATE SET left_at = NULL", (group_id, user_id))
    db.execute("INSERT INTO conversations (user_id, conv_type, conv_id, updated_at) VALUES (?, 2, ?, ?) "
               "ON CONFLICT DO UPDATE SET updated_at = MAX(updated_at, excluded.updated_at)",
               (user_id, group_id, now))


def _count_blocker(db: sqlite3.Connection, blocked_id: int, delta: int) -> None:
    db.execute("INSERT INTO inbox_counters (user_id, last_seq, blocked_by) VALUES (?, 0, ?) "
               "ON CONFLICT (user_id) DO UPDATE SET blocked_by = blocked_by + excluded.blocked_by", (blocked_id, delta))


def _existing_users(db: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    return {row[0] for chunk in _chunks([i for i in ids if fits(i)])
            for row in db.execute(f"SELECT id FROM users WHERE id IN ({marks(chunk)})", chunk)}


def _existing_groups(db: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    return {row[0] for chunk in _chunks([i for i in ids if fits(i)])
            for row in db.execute(f"SELECT id FROM groups WHERE id IN ({marks(chunk)})", chunk)}


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


def _chunks(values: list[T]) -> Iterable[list[T]]:
    return (values[start:start + _CHUNK] for start in range(0, len(values), _CHUNK))


def _now_ms() -> int:
    return int(time.time() * 1000)

