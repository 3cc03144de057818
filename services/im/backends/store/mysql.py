"""`Store` on MySQL / MariaDB through an aiomysql pool.

A batch is one transaction (docs/storage.md has the whole story); what it decides comes from
`plan.py`, the same code the SQLite store runs, and this module reads and writes the rows:

1. lock what the batch changes or depends on, always in this order: the messages it edits or recalls
   (`FOR UPDATE`, ascending), the groups it sends to (`LOCK IN SHARE MODE`, ascending: a group change
   locks its row `FOR UPDATE` first, so membership cannot change under the batch), then the counter
   rows of every user the batch touches, ascending by user id (`SELECT ... FOR UPDATE`); a user without
   a counter row gets one first. Every item locks its actor's counter, so once the locks are held no
   other transaction can be storing anything of these senders;
2. read under those locks: the groups' members (one query), who holds the edited group messages,
   blocks (only when someone blocks an actor: `inbox_counters.blocked_by`), the `(sender, cid)` pairs
   already stored (duplicates: so is a repeat inside the batch), the read pointers;
3. give each receiver the next seq in batch order, insert messages, events and inbox rows as multi-row
   INSERTs (one statement per few MiB, never one per row), upsert the conversation rows, write the
   counters back, COMMIT. New ids come from the statement's first auto-increment id when the server
   hands out consecutive ids (`innodb_autoinc_lock_mode` 0 or 1), otherwise they are read back by
   (sender, cid) for messages and (actor, actor_seq) for events.

The VALUES lists are built here rather than by `executemany`: integers are written as literals and
strings go through the driver's escaping, which is what `executemany` would do, minus its per-value
overhead that cost more than the server's own work (without it, batches run 3x faster) and minus its silent
statement splitting that makes `lastrowid` describe only the last part.

The counter locks are held to COMMIT, so the commit order of batches that share a user equals the order
of that user's seqs: a reader never sees seq n+1 before n. Deadlocks (1213) and lock wait timeouts
(1205) roll the transaction back and run it again after a backoff; once `max_attempts` are used up
they are `Unavailable` (contention passes), as are lost connections. Any other error is about the
data of the batch and is raised as it is, so the caller can find the item it is tied to.

Connections run in READ COMMITTED: no gap locks, and each statement sees what committed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiomysql

from im.backends.base import Applied, BatchItem, Outcome, UserCredentials
from im.backends.store.common import GroupDecision, SharedStore, valid_ids
from im.backends.store.plan import EVENT_INSERT_COLUMNS, BatchPlan, ConvKey, Counter, Target, Writes
from im.backends.store.rows import (
    COUNTS_AS_UNREAD,
    EVENT_COLUMNS,
    GROUP,
    MESSAGE_WIDTH,
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

__all__ = ["MIGRATIONS", "MySqlStore", "MySqlUrl", "parse_mysql_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_Key = tuple[int, str]  # (sender, cid)

# MySQL error numbers this module reacts to.
_ER_DUP_ENTRY = 1062
_ER_NO_SUCH_THREAD = 1094
_ER_NO_REFERENCED_ROW = 1452
_ER_LOCK_WAIT_TIMEOUT = 1205
_ER_LOCK_DEADLOCK = 1213
_ER_BAD_DB = 1049
_ER_UNKNOWN_SYSTEM_VARIABLE = 1193
_RETRYABLE = frozenset({_ER_LOCK_DEADLOCK, _ER_LOCK_WAIT_TIMEOUT})
# Client-side (2xxx) and server-side errors that mean "the server cannot be reached / talked to now".
_CONNECTION_ERRORS = frozenset({1040, 1045, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 2002, 2003, 2005,
                                2006, 2013, 2014, 2026, 2055})
# Errors after which the transaction may be run again on a fresh connection without harm.
_LOST = frozenset({2006, 2013, 2055})


@dataclass(frozen=True, slots=True)
class MySqlUrl:
    host: str
    port: int
    user: str
    password: str
    database: str

    def __repr__(self) -> str:  # never print the password
        return f"MySqlUrl(mysql://{self.user}@{self.host}:{self.port}/{self.database})"


def parse_mysql_url(url: str, *, setting: str = "IM_MYSQL_URL") -> MySqlUrl:
    """Parse `mysql://user:pass@host:port/db` (port 3306 by default); `ValueError` naming `setting`."""
    expected = "expected mysql://user:password@host:port/database"
    try:
        parts = urlsplit(url)
        port = parts.port or 3306
    except ValueError as e:
        raise ValueError(f"{setting}: {expected} ({e})") from None
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"{setting}: {expected}, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError(f"{setting}: {expected}, the host is missing")
    if not parts.username:
        raise ValueError(f"{setting}: {expected}, the user is missing")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(f"{setting}: {expected}, the database name is missing or invalid")
    if parts.query or parts.fragment:
        raise ValueError(f"{setting}: {expected}, query parameters are not supported")
    return MySqlUrl(parts.hostname, port, unquote(parts.username), unquote(parts.password or ""), database)


_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

@dataclass(frozen=True, slots=True)
class Unless:
    """A migration step that runs `statement` unless `probe` (a query) returns a row: DDL that has no
    IF NOT EXISTS on every server (MySQL 8 has none for columns and indexes)."""

    probe: str
    statement: str


@dataclass(frozen=True, slots=True)
class ByUsers:
    """A migration step that runs `statement` (with `%s` for the first and last user id) once per
    `USERS_PER_STEP` users of the inbox: a backfill over millions of inbox rows in one statement makes
    the server sort them all in a temporary table, and holds its locks for as long."""

    statement: str


USERS_PER_STEP = 500


def _unless_column(table: str, column: str, statement: str) -> Unless:
    return Unless("SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                  f"AND TABLE_NAME = '{table}' AND COLUMN_NAME = '{column}'", statement)


def _unless_index(table: str, index: str, statement: str) -> Unless:
    return Unless("SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                  f"AND TABLE_NAME = '{table}' AND INDEX_NAME = '{index}'", statement)


# (version, name, steps). Append only: an applied migration never changes. DDL commits on its own,
# so every step must be safe to run again after a migration was cut off half way.
MIGRATIONS: list[tuple[int, str, list[str | Unless | ByUsers]]] = [
    (1, "initial schema", [
        f"""CREATE TABLE IF NOT EXISTS users (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            email VARCHAR(255) NOT NULL,
            password_hash VARCHAR(255) NOT NULL,
            nickname VARCHAR(255) NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE KEY users_email (email)
        ) {_TABLE}""",
        f"""CREATE TABLE IF NOT EXISTS `groups` (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            owner_id BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            CONSTRAINT groups_owner FOREIGN KEY (owner_id) REFERENCES users (id)
        ) {_TABLE}""",
        f"""CREATE TABLE IF NOT EXISTS group_members (
            group_id BIGINT NOT NULL,
            user_id BIGINT NOT NULL,
            joined_at BIGINT NOT NULL,
            PRIMARY KEY (group_id, user_id),
            KEY group_members_user (user_id),
            CONSTRAINT group_members_group FOREIGN KEY (group_id) REFERENCES `groups` (id),
            CONSTRAINT group_members_member FOREIGN KEY (user_id) REFERENCES users (id)
        ) {_TABLE}""",
        # cid is VARBINARY: client ids compare byte for byte (no case folding, no PAD SPACE).
        # sender_seq answers a redelivered message with the sender's original seq without an inbox lookup.
        f"""CREATE TABLE IF NOT EXISTS messages (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            sender_id BIGINT NOT NULL,
            to_user_id BIGINT NULL,
            group_id BIGINT NULL,
            content MEDIUMTEXT NOT NULL,
            cid VARBINARY(255) NOT NULL,
            created_at BIGINT NOT NULL,
            sender_seq BIGINT NOT NULL,
            UNIQUE KEY messages_sender_cid (sender_id, cid)
        ) {_TABLE}""",
        f"""CREATE TABLE IF NOT EXISTS inbox (
            user_id BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            message_id BIGINT NOT NULL,
            PRIMARY KEY (user_id, seq)
        ) {_TABLE}""",
        f"""CREATE TABLE IF NOT EXISTS inbox_counters (
            user_id BIGINT NOT NULL PRIMARY KEY,
            last_seq BIGINT NOT NULL
        ) {_TABLE}""",
    ]),
    # Typed inbox events, conversations, blocks, edit / recall, former members (docs/storage.md).
    (2, "inbox events and conversations", [
        # recall_id: the recall event once recalled (the content is '' from then on).
        _unless_column("messages", "edited_at",
                       "ALTER TABLE messages ADD COLUMN edited_at BIGINT NULL, ADD COLUMN recall_id BIGINT NULL"),
        _unless_column("group_members", "left_at", "ALTER TABLE group_members ADD COLUMN left_at BIGINT NULL"),
        _unless_column("inbox_counters", "blocked_by",
                       "ALTER TABLE inbox_counters ADD COLUMN blocked_by INT NOT NULL DEFAULT 0"),
        f"""CREATE TABLE IF NOT EXISTS events (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            kind VARCHAR(8) CHARACTER SET ascii NOT NULL,
            actor_id BIGINT NOT NULL,
            actor_seq BIGINT NOT NULL,
            message_id BIGINT NULL,
            group_id BIGINT NULL,
            peer_id BIGINT NULL,
            target_user_id BIGINT NULL,
            action VARCHAR(8) CHARACTER SET ascii NULL,
            name VARCHAR(255) NULL,
            owner_id BIGINT NULL,
            up_to BIGINT NULL,
            cid VARBINARY(255) NULL,
            created_at BIGINT NOT NULL,
            UNIQUE KEY events_actor_seq (actor_id, actor_seq),
            UNIQUE KEY events_actor_cid (actor_id, cid)
        ) {_TABLE}""",
        _unless_column("inbox", "conv_id",
                       "ALTER TABLE inbox MODIFY message_id BIGINT NULL, ADD COLUMN event_id BIGINT NULL, "
                       "ADD COLUMN conv_type TINYINT NULL, ADD COLUMN conv_id BIGINT NULL"),
        ByUsers("""UPDATE inbox i JOIN messages m ON m.id = i.message_id
           SET i.conv_type = IF(m.group_id IS NULL, 1, 2),
               i.conv_id = CASE WHEN m.group_id IS NOT NULL THEN m.group_id
                                WHEN i.user_id = m.sender_id THEN m.to_user_id ELSE m.sender_id END
           WHERE i.user_id BETWEEN %s AND %s AND i.conv_type IS NULL"""),
        _unless_index("inbox", "inbox_conversation",
                      "ALTER TABLE inbox ADD INDEX inbox_conversation (user_id, conv_type, conv_id, message_id)"),
        f"""CREATE TABLE IF NOT EXISTS conversations (
            user_id BIGINT NOT NULL,
            conv_type TINYINT NOT NULL,
            conv_id BIGINT NOT NULL,
            last_message_id BIGINT NULL,
            last_seq BIGINT NULL,
            updated_at BIGINT NOT NULL,
            read_up_to BIGINT NULL,
            unread INT NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, conv_type, conv_id),
            KEY conversations_activity (user_id, updated_at, conv_type, conv_id)
        ) {_TABLE}""",
        # Messages from before the upgrade count as read: no pointer existed, and a badge with every
        # old message in it would be noise.
        ByUsers("""INSERT INTO conversations
               (user_id, conv_type, conv_id, last_message_id, last_seq, updated_at, read_up_to, unread)
           SELECT i.user_id, i.conv_type, i.conv_id, i.message_id, i.seq, m.created_at, last.top, 0
           FROM (SELECT user_id, conv_type, conv_id, MAX(seq) AS seq, MAX(message_id) AS top FROM inbox
                 WHERE user_id BETWEEN %s AND %s AND conv_type IS NOT NULL
                 GROUP BY user_id, conv_type, conv_id) last
           JOIN inbox i ON i.user_id = last.user_id AND i.seq = last.seq
           JOIN messages m ON m.id = i.message_id
           WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.user_id = i.user_id
                             AND c.conv_type = i.conv_type AND c.conv_id = i.conv_id)"""),
        """INSERT INTO conversations (user_id, conv_type, conv_id, updated_at)
           SELECT gm.user_id, 2, gm.group_id, gm.joined_at FROM group_members gm
           WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.user_id = gm.user_id
                             AND c.conv_type = 2 AND c.conv_id = gm.group_id)""",
        f"""CREATE TABLE IF NOT EXISTS blocks (
            user_id BIGINT NOT NULL,
            blocked_id BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, blocked_id),
            CONSTRAINT blocks_user FOREIGN KEY (user_id) REFERENCES users (id),
            CONSTRAINT blocks_blocked FOREIGN KEY (blocked_id) REFERENCES users (id)
        ) {_TABLE}""",
    ]),
    (3, "last seen", [
        f"""CREATE TABLE IF NOT EXISTS last_seen (
            user_id BIGINT NOT NULL PRIMARY KEY,
            seen_at BIGINT NOT NULL
        ) {_TABLE}""",
    ]),
    # Before it, a recalled message stayed in the unread counts it was in: count those again. A recount,
    # so running it twice is harmless; it costs the unread inbox rows.
    (4, "unread counts leave out recalled messages", [
        ByUsers("""UPDATE conversations c SET c.unread = (
               SELECT COUNT(*) FROM inbox i JOIN messages m ON m.id = i.message_id
               WHERE i.user_id = c.user_id AND i.conv_type = c.conv_type AND i.conv_id = c.conv_id
                 AND i.message_id > COALESCE(c.read_up_to, 0) AND m.sender_id <> i.user_id
                 AND m.recall_id IS NULL)
           WHERE c.user_id BETWEEN %s AND %s AND c.unread > 0"""),
    ]),
]

_MESSAGE = message_columns("m")
# Bytes a statement may reach before it is split; well under MySQL's default max_allowed_packet (16 MiB
# on MariaDB 10.11, 64 MiB on MySQL 8).
_MAX_STATEMENT_BYTES = 4 * 1024 * 1024


@functools.cache
def _mysql(sql: str) -> str:
    """A query shared with SQLite (`?` placeholders) in the driver's paramstyle."""
    return sql.replace("?", "%s")


def _literal(conn: Any, value: object) -> str:
    """One SQL literal. The drivers' generic escaping costs more than the server's insert on batches of
    integer rows, so integers (checked to be exactly `int`) and NULL are written directly."""
    if type(value) is int:
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return str(conn.escape(value))
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _ints(values: Iterable[int]) -> str:
    literals = []
    for value in values:
        if type(value) is not int:
            raise TypeError(f"expected an int, got {type(value).__name__}")
        literals.append(str(value))
    return ",".join(literals)


def _values(conn: Any, rows: Iterable[Sequence[object]]) -> str:
    return ",".join("(" + ",".join([_literal(conn, v) for v in row]) + ")" for row in rows)


def _int_values(rows: Iterable[tuple[int | None, ...]]) -> str:
    """A VALUES list of rows of ints and NULLs (at least two a row), several times faster than
    `_values`: the plan's rows, made of ids the batch checked to be numbers and of numbers the
    database returned, so no text can be among them."""
    return ",".join(map(repr, rows)).replace("None", "NULL")


def _error_code(error: BaseException) -> int | None:
    if isinstance(error, aiomysql.MySQLError) and error.args and isinstance(error.args[0], int):
        return error.args[0]
    return None


class MySqlStore(SharedStore):
    """`Store` on MySQL / MariaDB. Call `open()` before use: it connects and migrates."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        max_attempts: int = 8,
        lock_wait_timeout: int | None = 10,
        retry_delay: float = 0.02,
        max_retry_delay: float = 1.0,
        create_database: bool = True,
        setting: str = "IM_MYSQL_URL",
    ) -> None:
        """
        :param url: `mysql://user:password@host:port/database`.
        :param pool_size: most connections held open at once.
        :param connect_timeout: seconds to wait for a new connection.
        :param max_attempts: runs of one transaction on deadlock / lock wait timeout before giving up.
        :param lock_wait_timeout: seconds a statement waits for a row lock before the transaction is
            retried (`innodb_lock_wait_timeout`); `None` keeps the server's setting.
        :param retry_delay: first backoff in seconds; doubles per attempt up to `max_retry_delay`, jittered.
        :param create_database: create the database named in the URL on `open()` if it does not exist.
        :param setting: the configuration name errors about `url` mention.
        """
        self._url = parse_mysql_url(url, setting=setting)
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._max_attempts = max_attempts
        self._lock_wait_timeout = lock_wait_timeout
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._create_database = create_database
        self._pool: Any = None
        # Whether one multi-row INSERT gets consecutive ids (innodb_autoinc_lock_mode 0/1, increment 1);
        # otherwise ids are read back by (sender, cid).
        self._consecutive_ids = False

    def __repr__(self) -> str:
        return f"MySqlStore({self._url!r})"

    @property
    def where(self) -> str:
        return f"mysql://{self._url.host}:{self._url.port}/{self._url.database}"

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        # aiomysql's connect_timeout covers the TCP connect only, not the handshake: a server that
        # accepts and never answers would hang here without the outer deadline.
        try:
            self._pool = await asyncio.wait_for(self._create_pool(), self._connect_timeout)
        except aiomysql.OperationalError as e:
            if _error_code(e) != _ER_BAD_DB or not self._create_database:
                raise self._unavailable(e) from e
            await self._create_missing_database()
            try:
                self._pool = await asyncio.wait_for(self._create_pool(), self._connect_timeout)
            except aiomysql.OperationalError as e2:
                raise self._unavailable(e2) from e2
        except (TimeoutError, OSError) as e:
            raise self._unavailable(e) from e
        try:
            await self._migrate()
            async with self._connection() as conn, conn.cursor() as cur:
                await cur.execute("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment")
                mode, increment = await cur.fetchone()
                self._consecutive_ids = int(mode) in (0, 1) and int(increment) == 1
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            await pool.wait_closed()

    async def ping(self) -> None:
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT 1")
            await cur.fetchall()

    def session_ids(self) -> list[int]:
        """The server's ids of this store's connections, so another replica can end them if this one hangs."""
        pool = self._pool
        if pool is None:
            return []
        return sorted(conn.thread_id() for conn in (*pool._free, *pool._used))

    async def kill_sessions(self, ids: Iterable[int]) -> None:
        """End these server sessions (a hung replica's): their open transactions roll back and release
        their row locks. A session that is gone already is fine."""
        for thread_id in ids:
            try:
                async with self._connection() as conn, conn.cursor() as cur:
                    await cur.execute(f"KILL CONNECTION {int(thread_id)}")
            except aiomysql.OperationalError as e:
                if _error_code(e) != _ER_NO_SUCH_THREAD:
                    raise self._unavailable(e) from e

    async def _create_pool(self) -> Any:
        u = self._url
        # MySQL 8 and MariaDB >= 11.1 call it transaction_isolation, older MariaDB only tx_isolation.
        for variable in ("transaction_isolation", "tx_isolation"):
            setup = f"SET SESSION {variable} = 'READ-COMMITTED'"
            if self._lock_wait_timeout is not None:
                setup += f", innodb_lock_wait_timeout = {int(self._lock_wait_timeout)}"
            try:
                return await aiomysql.create_pool(
                    minsize=1, maxsize=self._pool_size, host=u.host, port=u.port, user=u.user,
                    password=u.password, db=u.database, charset="utf8mb4", autocommit=True,
                    connect_timeout=self._connect_timeout, init_command=setup, pool_recycle=3600)
            except aiomysql.OperationalError as e:
                if _error_code(e) != _ER_UNKNOWN_SYSTEM_VARIABLE or variable == "tx_isolation":
                    raise
        raise AssertionError("unreachable")

    async def _create_missing_database(self) -> None:
        u = self._url
        try:
            conn = await aiomysql.connect(host=u.host, port=u.port, user=u.user, password=u.password,
                                          charset="utf8mb4", autocommit=True,
                                          connect_timeout=self._connect_timeout)
        except (TimeoutError, aiomysql.OperationalError, OSError) as e:
            raise self._unavailable(e) from e
        try:
            async with conn.cursor() as cur:
                name = u.database.replace("`", "``")
                await cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` "
                                  "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()

    async def _migrate(self) -> None:
        """Apply the migrations not applied yet; a named lock keeps concurrent starters apart."""
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT GET_LOCK('im_schema_migrations', 60)")
            (locked,) = await cur.fetchone()
            if locked != 1:
                raise Unavailable(f"{self.where}: timed out waiting for the migration lock")
            try:
                await cur.execute("SHOW TABLES LIKE 'schema_migrations'")
                if not await cur.fetchall():
                    await cur.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, "
                        f"name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) {_TABLE}")
                await cur.execute("SELECT version FROM schema_migrations")
                applied = {int(v) for (v,) in await cur.fetchall()}
                for version, name, statements in MIGRATIONS:
                    if version in applied:
                        continue
                    log.info("%s: applying migration %d (%s)", self.where, version, name)
                    # DDL commits implicitly: a migration cut off half way must be able to run again.
                    for step in statements:
                        await _run_step(cur, step)
                    await cur.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                                      "VALUES (%s, %s, %s)", (version, name, _now_ms()))
            finally:
                await cur.execute("SELECT RELEASE_LOCK('im_schema_migrations')")
                await cur.fetchall()

    # -- plumbing ----------------------------------------------------------------------------------

    def _unavailable(self, error: BaseException) -> Unavailable:
        return Unavailable(f"MySQL at {self._url.host}:{self._url.port} unavailable: {error}")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise Unavailable(f"{self.where}: store is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except aiomysql.OperationalError as e:
            if _error_code(e) in _CONNECTION_ERRORS:
                raise self._unavailable(e) from e
            raise
        except aiomysql.InterfaceError as e:  # "(0, '')": the connection was already broken
            raise self._unavailable(e) from e
        except (TimeoutError, OSError) as e:
            raise self._unavailable(e) from e

    async def _transaction(self, work: Callable[[Any], Awaitable[T]], *, rerun_if_lost: bool = False) -> T:
        """Run `work(cursor)` in a transaction; run it again on deadlock, lock wait timeout and (if
        `rerun_if_lost`: work whose second run is harmless) a connection lost mid-way."""
        delay = self._retry_delay
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._connection() as conn:
                    await conn.begin()
                    try:
                        async with conn.cursor() as cur:
                            result = await work(cur)
                        await conn.commit()
                        return result
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await conn.rollback()
                        raise
            except aiomysql.OperationalError as e:
                if _error_code(e) not in _RETRYABLE:
                    raise
                if attempt == self._max_attempts:  # contention, not the data: the caller may try later
                    raise Unavailable(f"{self.where}: {attempt} attempts met lock contention: {e}") from e
                log.info("%s: transaction attempt %d failed (%s), retrying", self.where, attempt, e)
            except Unavailable as e:
                lost = _error_code(e.__cause__) if e.__cause__ is not None else None
                if not rerun_if_lost or lost not in _LOST or attempt >= 2:
                    raise
                log.info("%s: connection lost (%s), retrying on a fresh one", self.where, e)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_retry_delay)
        raise AssertionError("unreachable")

    async def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def work(cur: Any) -> list[tuple[Any, ...]]:
            await cur.execute(sql, args)
            return list(await cur.fetchall())

        return await self._transaction(work, rerun_if_lost=True)

    # -- users --------------------------------------------------------------------------------------

    async def create_user(self, email: str, password_hash: str, nickname: str) -> User:
        async def work(cur: Any) -> int:
            await cur.execute("INSERT INTO users (email, password_hash, nickname, created_at) "
                              "VALUES (%s, %s, %s, %s)", (email, password_hash, nickname, _now_ms()))
            user_id = int(cur.lastrowid)
            # Created here so that a batch finds it and only has to lock.
            await cur.execute("INSERT IGNORE INTO inbox_counters (user_id, last_seq) VALUES (%s, %s)",
                              (user_id, 0))
            return user_id

        try:
            user_id = await self._transaction(work)
        except aiomysql.IntegrityError as e:
            if _error_code(e) == _ER_DUP_ENTRY:
                raise Conflict("this email is already registered") from None
            raise
        return User(id=user_id, email=email, nickname=nickname)

    async def credentials(self, email: str) -> UserCredentials | None:
        rows = await self._read("SELECT id, email, nickname, password_hash FROM users WHERE email = %s",
                                (email,))
        if not rows:
            return None
        user_id, stored_email, nickname, password_hash = rows[0]
        return UserCredentials(User(int(user_id), stored_email, nickname), password_hash)

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]:
        ids = valid_ids(user_ids)
        if not ids:
            return set()
        return {int(r[0]) for r in await self._read(f"SELECT id FROM users WHERE id IN ({_ints(ids)})")}

    async def user(self, user_id: int) -> User | None:
        if not fits(user_id):
            return None
        rows = await self._read("SELECT id, email, nickname FROM users WHERE id = %s", (user_id,))
        return User(int(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    async def profiles(self, user_ids: Iterable[int]) -> list[Profile]:
        ids = valid_ids(user_ids)
        if not ids:
            return []
        rows = await self._read(f"SELECT id, nickname FROM users WHERE id IN ({_ints(ids)}) ORDER BY id")
        return [Profile(int(i), nickname) for i, nickname in rows]

    async def find_user(self, email: str) -> Profile | None:
        rows = await self._read("SELECT id, nickname FROM users WHERE email = %s", (email,))
        return Profile(int(rows[0][0]), rows[0][1]) if rows else None

    async def set_nickname(self, user_id: int, nickname: str) -> User:
        async def work(cur: Any) -> User:
            if fits(user_id):
                await cur.execute("UPDATE users SET nickname = %s WHERE id = %s", (nickname, user_id))
                await cur.execute("SELECT id, email, nickname FROM users WHERE id = %s", (user_id,))
                row = await cur.fetchone()
                if row is not None:
                    return User(int(row[0]), row[1], row[2])
            raise NotFound(f"no user {user_id}")

        return await self._transaction(work)

    # -- groups -------------------------------------------------------------------------------------

    async def create_group(self, name: str, owner: int) -> Group:
        if not fits(owner):
            raise NotFound(f"user {owner} does not exist")

        async def work(cur: Any) -> int:
            now = _now_ms()
            await cur.execute("INSERT INTO `groups` (name, owner_id, created_at) VALUES (%s, %s, %s)",
                              (name, owner, now))
            group_id = int(cur.lastrowid)
            await _enter_group(cur, group_id, owner, now)
            return group_id

        try:
            group_id = await self._transaction(work)
        except aiomysql.IntegrityError as e:
            if _error_code(e) == _ER_NO_REFERENCED_ROW:
                raise NotFound(f"user {owner} does not exist") from None
            raise
        return Group(id=group_id, name=name, owner=owner)

    async def group(self, group_id: int) -> Group | None:
        if not fits(group_id):
            return None
        rows = await self._read("SELECT id, name, owner_id FROM `groups` WHERE id = %s", (group_id,))
        return Group(int(rows[0][0]), rows[0][1], int(rows[0][2])) if rows else None

    async def add_member(self, group_id: int, user_id: int) -> bool:
        async def work(cur: Any) -> bool:
            group = await _lock_group(cur, group_id)
            if group is None or not fits(user_id):
                raise NotFound(f"group {group_id} or user {user_id} does not exist")
            if user_id in await _members(cur, group_id):
                return False
            await _enter_group(cur, group_id, user_id, _now_ms())
            return True

        try:
            return await self._transaction(work)
        except aiomysql.IntegrityError as e:
            if _error_code(e) == _ER_NO_REFERENCED_ROW:
                raise NotFound(f"group {group_id} or user {user_id} does not exist") from None
            raise

    async def members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = valid_ids(group_ids)
        if not ids:
            return {}
        rows = await self._read(
            "SELECT g.id, m.user_id FROM `groups` g LEFT JOIN group_members m ON m.group_id = g.id "
            f"AND m.left_at IS NULL WHERE g.id IN ({_ints(ids)}) ORDER BY g.id, m.user_id")
        result: dict[int, list[int]] = {}
        for group_id, user_id in rows:
            members = result.setdefault(int(group_id), [])
            if user_id is not None:
                members.append(int(user_id))
        return result

    async def groups_of(self, user_id: int) -> list[Group]:
        if not fits(user_id):
            return []
        rows = await self._read(
            "SELECT g.id, g.name, g.owner_id FROM group_members m JOIN `groups` g ON g.id = m.group_id "
            "WHERE m.user_id = %s AND m.left_at IS NULL ORDER BY g.id", (user_id,))
        return [Group(int(i), name, int(owner)) for i, name, owner in rows]

    async def _query(self, sql: str, args: Sequence[int]) -> list[Sequence[Any]]:
        return list(await self._read(_mysql(sql), args))

    async def _change_group(self, group_id: int, decision: GroupDecision) -> Applied | None:
        """One transaction: the group row `FOR UPDATE` (before any counter: the lock order of
        docs/storage.md), its members, the receivers' counters, the change and its event."""
        async def work(cur: Any) -> Applied | None:
            group = await _lock_group(cur, group_id)
            if group is None:
                raise NotFound(f"no group {group_id}")
            decided = decision(group, await _members(cur, group_id))
            if decided is None:
                return None
            now = _now_ms()
            writes, applied = decided.writes(await self._lock_counters(cur, decided.receivers), now)
            if decided.member is not None:
                user, action = decided.member
                if action == "joined":
                    await _enter_group(cur, group_id, user, now)
                else:
                    await cur.execute("UPDATE group_members SET left_at = %s WHERE group_id = %s AND user_id = %s",
                                      (now, group_id, user))
            else:
                await cur.execute("UPDATE `groups` SET name = %s, owner_id = %s WHERE id = %s",
                                  (decided.name or group.name, decided.owner or group.owner, group_id))
            await self._write(cur, writes)
            return applied

        return await self._transaction(work)

    # -- blocks -------------------------------------------------------------------------------------

    async def block(self, user_id: int, blocked_id: int) -> bool:
        if user_id == blocked_id:
            raise BadRequest("you cannot block yourself")

        async def work(cur: Any) -> bool:
            await cur.execute(f"SELECT COUNT(*) FROM users WHERE id IN ({_ints(valid_ids([user_id, blocked_id]))})")
            if (await cur.fetchone())[0] < 2:
                raise NotFound(f"no user {blocked_id}")
            await cur.execute("INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (%s, %s, %s) "
                              "ON DUPLICATE KEY UPDATE user_id = user_id", (user_id, blocked_id, _now_ms()))
            if cur.rowcount != 1:
                return False
            await _count_blocker(cur, blocked_id, +1)
            return True

        return await self._transaction(work)

    async def unblock(self, user_id: int, blocked_id: int) -> bool:
        if not (fits(user_id) and fits(blocked_id)):
            return False

        async def work(cur: Any) -> bool:
            await cur.execute("DELETE FROM blocks WHERE user_id = %s AND blocked_id = %s", (user_id, blocked_id))
            if cur.rowcount != 1:
                return False
            await _count_blocker(cur, blocked_id, -1)
            return True

        return await self._transaction(work)

    async def blocked(self, user_id: int) -> list[int]:
        if not fits(user_id):
            return []
        rows = await self._read("SELECT blocked_id FROM blocks WHERE user_id = %s ORDER BY blocked_id", (user_id,))
        return [int(r[0]) for r in rows]

    # -- presence -----------------------------------------------------------------------------------

    async def record_last_seen(self, seen: Mapping[int, int]) -> None:
        rows = sorted((user, int(at)) for user, at in seen.items() if fits(user))
        if not rows:
            return

        async def work(cur: Any) -> None:
            await cur.execute(f"INSERT INTO last_seen (user_id, seen_at) VALUES {_int_values(rows)} "
                              "ON DUPLICATE KEY UPDATE seen_at = GREATEST(seen_at, VALUES(seen_at))")

        await self._transaction(work, rerun_if_lost=True)

    # -- the batch ----------------------------------------------------------------------------------

    async def commit(self, batch: Sequence[BatchItem], *, edit_window_ms: int | None, recall_window_ms: int | None,
                     ) -> list[Outcome]:
        """One transaction per batch, see the module docstring.

        A run cut off by a lost connection is run again: if the first run had committed, the second
        finds every message, edit and recall stored and answers them as duplicates with their original
        ids and seqs (and a read as one that moves nothing).
        """
        if not batch:
            return []
        return await self._transaction(lambda cur: self._commit(cur, BatchPlan(
            batch, edit_window_ms=edit_window_ms, recall_window_ms=recall_window_ms)), rerun_if_lost=True)

    async def _commit(self, cur: Any, plan: BatchPlan) -> list[Outcome]:
        plan.learn_targets(await self._lock_targets(cur, plan.target_ids()))
        groups = plan.send_groups()
        existing: set[int] = set()
        if groups:
            await cur.execute(f"SELECT id FROM `groups` WHERE id IN ({_ints(groups)}) ORDER BY id LOCK IN SHARE MODE")
            existing = {int(r[0]) for r in await cur.fetchall()}
        plan.learn_groups(existing, await _memberships(cur, plan.member_groups()))
        plan.learn_holders(await _holders(cur, plan.holder_probes()))
        plan.learn_counters(await self._lock_counters(cur, plan.users()))
        plan.learn_blocks(await _blocks(cur, plan.block_pairs()))
        plan.learn_originals(await self._stored(cur, plan.send_keys()), await _stored_events(cur, plan.event_keys()))
        plan.learn_conversations(await _read_pointers(cur, plan.pointer_keys()))
        return plan.outcomes(await self._write(cur, plan.decide()))

    async def _lock_targets(self, cur: Any, ids: list[int]) -> dict[int, Target]:
        if not ids:
            return {}
        await cur.execute(f"SELECT {_MESSAGE}, e.actor_seq, e.created_at FROM messages m "
                          f"LEFT JOIN events e ON e.id = m.recall_id WHERE m.id IN ({_ints(ids)}) "
                          "ORDER BY m.id FOR UPDATE")
        targets = {}
        for row in await cur.fetchall():
            message = message_from_row(row)
            targets[message.id] = Target(message, None if row[-2] is None else (int(row[-2]), int(row[-1])))
        return targets

    async def _lock_counters(self, cur: Any, users: list[int]) -> dict[int, Counter]:
        """Lock the counter rows of the existing ones among `users` (ascending); absent: no such user."""
        if not users:
            return {}
        await cur.execute("SELECT user_id, last_seq, blocked_by FROM inbox_counters "
                          f"WHERE user_id IN ({_ints(users)}) ORDER BY user_id FOR UPDATE")
        counters = {int(u): Counter(int(s), int(b)) for u, s, b in await cur.fetchall()}
        missing = [u for u in users if u not in counters]
        if missing:
            # No such user, or one created before its counter existed (create_user makes one).
            await cur.execute(f"SELECT id FROM users WHERE id IN ({_ints(missing)})")
            missing = sorted(int(r[0]) for r in await cur.fetchall())
        if missing:
            # ON DUPLICATE KEY takes an exclusive lock right away: INSERT IGNORE would take a shared one
            # and two batches upgrading it to exclusive would deadlock each other.
            await self._insert_rows(cur, "INSERT INTO inbox_counters (user_id, last_seq) VALUES ",
                                    [(u, 0) for u in missing], " ON DUPLICATE KEY UPDATE last_seq = last_seq")
            await cur.execute("SELECT user_id, last_seq, blocked_by FROM inbox_counters "
                              f"WHERE user_id IN ({_ints(missing)}) ORDER BY user_id FOR UPDATE")
            counters.update({int(u): Counter(int(s), int(b)) for u, s, b in await cur.fetchall()})
        return counters

    async def _stored(self, cur: Any, keys: list[tuple[int, str]]) -> dict[_Key, tuple[Message, int]]:
        """The already stored messages among `(sender, cid)` keys, with the sender's seq of each."""
        found: dict[_Key, tuple[Message, int]] = {}
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            await cur.execute(f"SELECT {_MESSAGE}, m.sender_seq FROM messages m "
                              f"WHERE (m.sender_id, m.cid) IN ({_values(cur.connection, chunk)})")
            for row in await cur.fetchall():
                message = message_from_row(row)
                found[(message.sender, message.cid)] = (message, int(row[MESSAGE_WIDTH]))
        return found

    async def _write(self, cur: Any, writes: Writes) -> list[int]:
        """Insert and update everything `writes` holds; the new messages' ids, in order."""
        message_ids = await self._insert_messages(cur, writes)
        event_ids = await self._insert_events(cur, writes)
        await self._insert_rows(cur, "INSERT INTO inbox (user_id, seq, message_id, event_id, conv_type, conv_id) "
                                "VALUES ", writes.resolved_inbox(message_ids, event_ids))
        for message_id, change in writes.message_changes.items():
            await cur.execute("UPDATE messages SET content = %s, edited_at = %s, recall_id = COALESCE(%s, recall_id) "
                              "WHERE id = %s", (change.content, change.edited_at,
                                                None if change.recall is None else event_ids[change.recall],
                                                message_id))
        activity = [(*key, None if c.last_message is None else message_ids[c.last_message], c.last_seq,
                     c.updated_at, c.unread) for key, c in writes.conversations.items() if c.updated_at or c.unread]
        await self._insert_rows(
            cur, "INSERT INTO conversations (user_id, conv_type, conv_id, last_message_id, last_seq, updated_at, "
            "unread) VALUES ", activity,
            " ON DUPLICATE KEY UPDATE last_message_id = COALESCE(VALUES(last_message_id), last_message_id), "
            "last_seq = COALESCE(VALUES(last_seq), last_seq), updated_at = GREATEST(updated_at, VALUES(updated_at)), "
            "unread = unread + VALUES(unread)")
        reads = {key: (c.read_from, c.read_up_to) for key, c in writes.conversations.items()
                 if c.read_up_to is not None}
        if reads:
            read = await _count_read(cur, reads)
            # A read moves the pointer of an existing row: the inserted values are never used.
            await self._insert_rows(
                cur, "INSERT INTO conversations (user_id, conv_type, conv_id, updated_at, read_up_to, unread) VALUES ",
                [(*key, 0, up_to, read.get(key, 0)) for key, (_, up_to) in reads.items()],
                " ON DUPLICATE KEY UPDATE read_up_to = VALUES(read_up_to), "
                "unread = GREATEST(unread - VALUES(unread), 0)")
        await self._insert_rows(cur, "INSERT INTO inbox_counters (user_id, last_seq) VALUES ", writes.counters(),
                                " ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq)")
        return message_ids

    async def _insert_messages(self, cur: Any, writes: Writes) -> list[int]:
        """Insert as multi-row statements and return the ids in order.

        Not `executemany`: it splits long batches into several statements silently, and `lastrowid`
        then only describes the last one.
        """
        ids: list[int] = []
        rows = [(m.sender, m.to, m.group, m.content, m.cid, m.ts, m.sender_seq) for m in writes.messages]
        prefix = ("INSERT INTO messages "
                  "(sender_id, to_user_id, group_id, content, cid, created_at, sender_seq) VALUES ")
        for chunk in _chunks_by_size(rows, lambda r: 4 * (len(r[3]) + len(r[4])) + 96):
            await cur.execute(prefix + _values(cur.connection, chunk))
            if self._consecutive_ids and cur.rowcount == len(chunk):
                first = int(cur.lastrowid)
                ids.extend(range(first, first + len(chunk)))
            else:
                stored = await self._stored(cur, [(r[0], r[4]) for r in chunk])
                ids.extend(stored[(r[0], r[4])][0].id for r in chunk)
        return ids

    async def _insert_events(self, cur: Any, writes: Writes) -> list[int]:
        """Like `_insert_messages`; events are read back by (actor, actor_seq)."""
        ids: list[int] = []
        for chunk in _chunks_by_size(writes.events, lambda e: 4 * (len(e.name or "") + len(e.cid or "")) + 160):
            await cur.execute(f"INSERT INTO events ({EVENT_INSERT_COLUMNS}) VALUES "
                              + _values(cur.connection, [e.values() for e in chunk]))
            if self._consecutive_ids and cur.rowcount == len(chunk):
                first = int(cur.lastrowid)
                ids.extend(range(first, first + len(chunk)))
            else:
                keys = [(e.actor, e.actor_seq) for e in chunk]
                await cur.execute("SELECT actor_id, actor_seq, id FROM events WHERE (actor_id, actor_seq) IN "
                                  f"({_int_values(keys)})")
                found = {(int(a), int(s)): int(i) for a, s, i in await cur.fetchall()}
                ids.extend(found[key] for key in keys)
        return ids

    async def _insert_rows(self, cur: Any, prefix: str, rows: Sequence[tuple[int | None, ...]], suffix: str = "",
                           ) -> None:
        """Multi-row INSERTs of int rows, 5,000 rows a statement."""
        for start in range(0, len(rows), 5000):
            await cur.execute(prefix + _int_values(rows[start:start + 5000]) + suffix)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


async def _lock_group(cur: Any, group_id: int) -> Group | None:
    if not fits(group_id):
        return None
    await cur.execute("SELECT id, name, owner_id FROM `groups` WHERE id = %s FOR UPDATE", (group_id,))
    row = await cur.fetchone()
    return None if row is None else Group(int(row[0]), row[1], int(row[2]))


async def _members(cur: Any, group_id: int) -> list[int]:
    await cur.execute("SELECT user_id FROM group_members WHERE group_id = %s AND left_at IS NULL ORDER BY user_id",
                      (group_id,))
    return [int(r[0]) for r in await cur.fetchall()]


async def _memberships(cur: Any, group_ids: list[int]) -> dict[int, list[tuple[int, bool]]]:
    """(user, is a member now) of each group, former members included: one query."""
    if not group_ids:
        return {}
    await cur.execute(f"SELECT group_id, user_id, left_at FROM group_members WHERE group_id IN ({_ints(group_ids)}) "
                      "ORDER BY group_id, user_id")
    found: dict[int, list[tuple[int, bool]]] = {}
    for group, user, left_at in await cur.fetchall():
        found.setdefault(int(group), []).append((int(user), left_at is None))
    return found


async def _enter_group(cur: Any, group_id: int, user_id: int, now: int) -> None:
    """Make `user_id` a member (again) and give it the group's conversation row."""
    await cur.execute("INSERT INTO group_members (group_id, user_id, joined_at) VALUES (%s, %s, %s) "
                      "ON DUPLICATE KEY UPDATE left_at = NULL, joined_at = VALUES(joined_at)", (group_id, user_id, now))
    await cur.execute("INSERT INTO conversations (user_id, conv_type, conv_id, updated_at) VALUES (%s, 2, %s, %s) "
                      "ON DUPLICATE KEY UPDATE updated_at = GREATEST(updated_at, VALUES(updated_at))",
                      (user_id, group_id, now))


async def _count_blocker(cur: Any, blocked_id: int, delta: int) -> None:
    await cur.execute("INSERT INTO inbox_counters (user_id, last_seq, blocked_by) VALUES (%s, 0, %s) "
                      "ON DUPLICATE KEY UPDATE blocked_by = blocked_by + VALUES(blocked_by)", (blocked_id, delta))


async def _holders(cur: Any, probes: list[tuple[int, int, int]]) -> set[tuple[int, int]]:
    if not probes:
        return set()
    await cur.execute("SELECT user_id, message_id FROM inbox WHERE (user_id, conv_type, conv_id, message_id) IN "
                      f"({_int_values((u, GROUP, g, m) for u, g, m in probes)})")
    return {(int(u), int(m)) for u, m in await cur.fetchall()}


async def _blocks(cur: Any, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    if not pairs:
        return set()
    await cur.execute(f"SELECT user_id, blocked_id FROM blocks WHERE (user_id, blocked_id) IN ({_int_values(pairs)})")
    return {(int(a), int(b)) for a, b in await cur.fetchall()}


async def _stored_events(cur: Any, keys: list[tuple[int, str]]) -> dict[_Key, tuple[InboxEvent, int]]:
    if not keys:
        return {}
    await cur.execute(f"SELECT e.actor_seq, e.cid, {EVENT_COLUMNS}, {message_columns('em')} FROM events e "
                      "LEFT JOIN messages em ON em.id = e.message_id WHERE (e.actor_id, e.cid) IN "
                      f"({_values(cur.connection, keys)})")
    found: dict[_Key, tuple[InboxEvent, int]] = {}
    for row in await cur.fetchall():
        actor = int(row[3])
        cid = row[1].decode() if isinstance(row[1], bytes | bytearray) else str(row[1])
        found[(actor, cid)] = (event_from_row(row[2:12], row[12:12 + MESSAGE_WIDTH], actor), int(row[0]))
    return found


async def _read_pointers(cur: Any, keys: list[ConvKey]) -> dict[ConvKey, tuple[int | None, int | None]]:
    if not keys:
        return {}
    await cur.execute("SELECT user_id, conv_type, conv_id, last_message_id, read_up_to FROM conversations "
                      f"WHERE (user_id, conv_type, conv_id) IN ({_int_values(keys)})")
    return {(int(u), int(t), int(c)): (_int_or_none(last), _int_or_none(up_to))
            for u, t, c, last, up_to in await cur.fetchall()}


async def _count_read(cur: Any, moves: dict[ConvKey, tuple[int, int]]) -> dict[ConvKey, int]:
    """The messages that counted as unread each pointer moved over, `(from, to]`: one query, a bounded
    range of index inbox_conversation each."""
    counts: dict[ConvKey, int] = {}
    keys = sorted(moves)
    for start in range(0, len(keys), 200):
        ranges = " OR ".join(
            f"(i.user_id = {_ints([u])} AND i.conv_type = {_ints([t])} AND i.conv_id = {_ints([c])} "
            f"AND i.message_id > {_ints([moves[(u, t, c)][0]])} AND i.message_id <= {_ints([moves[(u, t, c)][1]])})"
            for u, t, c in keys[start:start + 200])
        await cur.execute("SELECT i.user_id, i.conv_type, i.conv_id, COUNT(*) FROM inbox i "
                          f"JOIN messages m ON m.id = i.message_id WHERE ({ranges}) AND {COUNTS_AS_UNREAD} "
                          "GROUP BY i.user_id, i.conv_type, i.conv_id")
        counts.update({(int(u), int(t), int(c)): int(n) for u, t, c, n in await cur.fetchall()})
    return counts


async def _run_step(cur: Any, step: str | Unless | ByUsers) -> None:
    if isinstance(step, ByUsers):
        await cur.execute("SELECT MIN(user_id), MAX(user_id) FROM inbox")
        low, high = await cur.fetchone()
        for first in range(int(low or 0), int(high or -1) + 1, USERS_PER_STEP):
            await cur.execute(step.statement, (first, first + USERS_PER_STEP - 1))
        return
    if isinstance(step, Unless):
        await cur.execute(step.probe)
        if await cur.fetchall():
            return
        step = step.statement
    await cur.execute(step)


def _chunks_by_size(rows: list[T], size: Callable[[T], int]) -> Iterable[list[T]]:
    chunk: list[T] = []
    total = 0
    for row in rows:
        n = size(row)
        if chunk and total + n > _MAX_STATEMENT_BYTES:
            yield chunk
            chunk, total = [], 0
        chunk.append(row)
        total += n
    if chunk:
        yield chunk


def _now_ms() -> int:
    return int(time.time() * 1000)
