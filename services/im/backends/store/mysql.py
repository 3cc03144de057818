"""`Store` on MySQL / MariaDB through an aiomysql pool.

A batch is one transaction (ARCHITECTURE section 3):

1. lock the counter rows of every user the batch touches, ascending by user id (`SELECT ... FOR UPDATE`);
   a user without a counter row gets one first. Every message locks its sender's counter, so once the
   locks are held no other transaction can be storing a message of these senders;
2. look the batch's `(sender, cid)` pairs up: those already stored are duplicates (so is a repeat
   inside the batch). This read happens under the locks of step 1, so it cannot miss a concurrent
   insert of the same pair;
3. give each recipient the next seq in batch order, insert messages and inbox rows as multi-row
   INSERTs (one statement per few MiB, never one per row), write the counters back, COMMIT.
   Message ids come from the statement's first auto-increment id when the server hands out
   consecutive ids (`innodb_autoinc_lock_mode` 0 or 1), otherwise they are read back by (sender, cid).

The VALUES lists are built here rather than by `executemany`: integers are written as literals and
strings go through the driver's escaping, which is what `executemany` would do, minus its per-value
overhead that cost more than the server's own work (3x persist throughput) and minus its silent
statement splitting that makes `lastrowid` describe only the last part.

The counter locks are held to COMMIT, so the commit order of batches that share a user equals the order
of that user's seqs: a reader never sees seq n+1 before n. Deadlocks (1213) and lock wait timeouts
(1205) roll the transaction back and run it again after a backoff.

Connections run in READ COMMITTED: no gap locks, and each statement sees what committed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiomysql

from im.backends.base import NewMessage, Persisted, UserCredentials
from im.contracts.records import Group, InboxPage, Message, User
from im.protocol.errors import Conflict, NotFound, Unavailable

__all__ = ["MIGRATIONS", "MySqlStore", "MySqlUrl", "parse_mysql_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_Key = tuple[int, str]  # (sender, cid)

# MySQL error numbers this module reacts to.
_ER_DUP_ENTRY = 1062
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

# (version, name, statements). Append only: an applied migration never changes. DDL commits on its own,
# so every statement must be safe to run again after a migration was cut off half way.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
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
]

_MESSAGE_COLUMNS = "m.id, m.sender_id, m.to_user_id, m.group_id, m.content, m.cid, m.created_at"
# Bytes a statement may reach before it is split; well under MySQL's default max_allowed_packet (16 MiB
# on MariaDB 10.11, 64 MiB on MySQL 8).
_MAX_STATEMENT_BYTES = 4 * 1024 * 1024


def _message(row: Sequence[Any]) -> Message:
    cid = row[5]
    return Message(id=int(row[0]), sender=int(row[1]), to=None if row[2] is None else int(row[2]),
                   group=None if row[3] is None else int(row[3]), content=row[4],
                   cid=cid.decode() if isinstance(cid, bytes | bytearray) else cid, ts=int(row[6]))


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


def _error_code(error: BaseException) -> int | None:
    if isinstance(error, aiomysql.MySQLError) and error.args and isinstance(error.args[0], int):
        return error.args[0]
    return None


class MySqlStore:
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
                    for statement in statements:
                        await cur.execute(statement)
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
                if _error_code(e) not in _RETRYABLE or attempt == self._max_attempts:
                    raise
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

    # -- users and groups --------------------------------------------------------------------------

    async def create_user(self, email: str, password_hash: str, nickname: str) -> User:
        async def work(cur: Any) -> int:
            await cur.execute("INSERT INTO users (email, password_hash, nickname, created_at) "
                              "VALUES (%s, %s, %s, %s)", (email, password_hash, nickname, _now_ms()))
            user_id = int(cur.lastrowid)
            # Created here so that persist() finds it and only has to lock.
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
        ids = sorted(set(user_ids))
        if not ids:
            return set()
        rows = await self._read(f"SELECT id FROM users WHERE id IN ({','.join(['%s'] * len(ids))})", ids)
        return {int(r[0]) for r in rows}

    async def create_group(self, name: str, owner: int) -> Group:
        async def work(cur: Any) -> int:
            now = _now_ms()
            await cur.execute("INSERT INTO `groups` (name, owner_id, created_at) VALUES (%s, %s, %s)",
                              (name, owner, now))
            group_id = int(cur.lastrowid)
            await cur.execute("INSERT INTO group_members (group_id, user_id, joined_at) VALUES (%s, %s, %s)",
                              (group_id, owner, now))
            return group_id

        try:
            group_id = await self._transaction(work)
        except aiomysql.IntegrityError as e:
            if _error_code(e) == _ER_NO_REFERENCED_ROW:
                raise NotFound(f"user {owner} does not exist") from None
            raise
        return Group(id=group_id, name=name, owner=owner)

    async def group(self, group_id: int) -> Group | None:
        rows = await self._read("SELECT id, name, owner_id FROM `groups` WHERE id = %s", (group_id,))
        return Group(int(rows[0][0]), rows[0][1], int(rows[0][2])) if rows else None

    async def add_member(self, group_id: int, user_id: int) -> bool:
        async def work(cur: Any) -> bool:
            # Not INSERT IGNORE: it would also swallow a missing group or user (and warn on a repeat).
            await cur.execute("INSERT INTO group_members (group_id, user_id, joined_at) VALUES (%s, %s, %s) "
                              "ON DUPLICATE KEY UPDATE group_id = group_id", (group_id, user_id, _now_ms()))
            return bool(cur.rowcount == 1)

        try:
            return await self._transaction(work)
        except aiomysql.IntegrityError as e:
            if _error_code(e) == _ER_NO_REFERENCED_ROW:
                raise NotFound(f"group {group_id} or user {user_id} does not exist") from None
            raise

    async def members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = sorted(set(group_ids))
        if not ids:
            return {}
        rows = await self._read(
            "SELECT g.id, m.user_id FROM `groups` g LEFT JOIN group_members m ON m.group_id = g.id "
            f"WHERE g.id IN ({','.join(['%s'] * len(ids))}) ORDER BY g.id, m.user_id", ids)
        result: dict[int, list[int]] = {}
        for group_id, user_id in rows:
            members = result.setdefault(int(group_id), [])
            if user_id is not None:
                members.append(int(user_id))
        return result

    async def groups_of(self, user_id: int) -> list[Group]:
        rows = await self._read(
            "SELECT g.id, g.name, g.owner_id FROM group_members m JOIN `groups` g ON g.id = m.group_id "
            "WHERE m.user_id = %s ORDER BY g.id", (user_id,))
        return [Group(int(i), name, int(owner)) for i, name, owner in rows]

    # -- messages ----------------------------------------------------------------------------------

    async def persist(self, batch: Sequence[NewMessage]) -> list[Persisted]:
        """One transaction per batch, see the module docstring.

        A run cut off by a lost connection is run again: if the first run had committed, the second
        finds every message stored and answers them as duplicates with their original ids and seqs.
        """
        if not batch:
            return []
        return await self._transaction(lambda cur: self._persist(cur, batch), rerun_if_lost=True)

    async def _persist(self, cur: Any, batch: Sequence[NewMessage]) -> list[Persisted]:
        users = sorted({u for m in batch for u in m.recipients} | {m.sender for m in batch})
        last_seq = await self._lock_counters(cur, users)

        keys = list(dict.fromkeys((m.sender, m.cid) for m in batch))
        stored = await self._stored(cur, keys)

        results: list[Persisted | None] = [None] * len(batch)
        first_of: dict[tuple[int, str], int] = {}  # (sender, cid) -> index of its first new message
        fresh: list[int] = []  # indices of messages to insert, in batch order
        for i, m in enumerate(batch):
            key = (m.sender, m.cid)
            if key in stored:
                message, sender_seq = stored[key]
                results[i] = Persisted(message, {m.sender: sender_seq}, duplicate=True)
            elif key in first_of:
                continue  # resolved once the first one has its id
            else:
                first_of[key] = i
                fresh.append(i)

        if fresh:
            seqs: list[dict[int, int]] = []
            for i in fresh:
                m = batch[i]
                assigned: dict[int, int] = {}
                for user in dict.fromkeys((m.sender, *m.recipients)):
                    last_seq[user] += 1
                    assigned[user] = last_seq[user]
                seqs.append(assigned)

            ids = await self._insert_messages(cur, [batch[i] for i in fresh],
                                              [s[batch[i].sender] for i, s in zip(fresh, seqs, strict=True)])
            inbox_rows: list[tuple[int, int, int]] = []
            for i, message_id, assigned in zip(fresh, ids, seqs, strict=True):
                m = batch[i]
                message = Message(message_id, m.sender, m.to, m.group, m.content, m.cid, m.ts)
                results[i] = Persisted(message, assigned)
                inbox_rows.extend((user, seq, message_id) for user, seq in assigned.items())
            await self._insert_rows(cur, "INSERT INTO inbox (user_id, seq, message_id) VALUES ", inbox_rows)
            touched = sorted({u for i in fresh for u in (batch[i].sender, *batch[i].recipients)})
            await self._insert_rows(
                cur, "INSERT INTO inbox_counters (user_id, last_seq) VALUES ",
                [(u, last_seq[u]) for u in touched], " ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq)")

        for i, m in enumerate(batch):
            if results[i] is None:
                first = results[first_of[(m.sender, m.cid)]]
                assert first is not None
                results[i] = Persisted(first.message, {m.sender: first.seqs[m.sender]}, duplicate=True)
        return [r for r in results if r is not None]

    async def _lock_counters(self, cur: Any, users: list[int]) -> dict[int, int]:
        """Lock the counter rows of `users` (ascending) and return their last seqs."""
        await cur.execute("SELECT user_id, last_seq FROM inbox_counters "
                          f"WHERE user_id IN ({_ints(users)}) ORDER BY user_id FOR UPDATE")
        last_seq = {int(u): int(s) for u, s in await cur.fetchall()}
        missing = [u for u in users if u not in last_seq]
        if missing:
            # Users created before their counter existed (create_user makes one). ON DUPLICATE KEY takes
            # an exclusive lock right away: INSERT IGNORE would take a shared one and two batches
            # upgrading it to exclusive would deadlock each other.
            await self._insert_rows(cur, "INSERT INTO inbox_counters (user_id, last_seq) VALUES ",
                                    [(u, 0) for u in missing], " ON DUPLICATE KEY UPDATE last_seq = last_seq")
            await cur.execute("SELECT user_id, last_seq FROM inbox_counters "
                              f"WHERE user_id IN ({_ints(missing)}) ORDER BY user_id FOR UPDATE")
            last_seq.update({int(u): int(s) for u, s in await cur.fetchall()})
        return last_seq

    async def _stored(self, cur: Any, keys: list[tuple[int, str]]) -> dict[_Key, tuple[Message, int]]:
        """The already stored messages among `(sender, cid)` keys, with the sender's seq of each."""
        found: dict[_Key, tuple[Message, int]] = {}
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            await cur.execute(f"SELECT {_MESSAGE_COLUMNS}, m.sender_seq FROM messages m "
                              f"WHERE (m.sender_id, m.cid) IN ({_values(cur.connection, chunk)})")
            for row in await cur.fetchall():
                message = _message(row)
                found[(message.sender, message.cid)] = (message, int(row[7]))
        return found

    async def _insert_messages(self, cur: Any, messages: list[NewMessage], sender_seqs: list[int],
                               ) -> list[int]:
        """Insert as multi-row statements and return the ids in order.

        Not `executemany`: it splits long batches into several statements silently, and `lastrowid`
        then only describes the last one.
        """
        ids: list[int] = []
        rows = [(m.sender, m.to, m.group, m.content, m.cid, m.ts, s)
                for m, s in zip(messages, sender_seqs, strict=True)]
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

    async def _insert_rows(self, cur: Any, prefix: str, rows: Sequence[tuple[Any, ...]], suffix: str = "",
                           ) -> None:
        for start in range(0, len(rows), 5000):
            await cur.execute(prefix + _values(cur.connection, rows[start:start + 5000]) + suffix)

    async def inbox(self, user_id: int, after: int, limit: int) -> InboxPage:
        if limit <= 0:
            return InboxPage([], False)
        rows = await self._read(
            f"SELECT i.seq, {_MESSAGE_COLUMNS} FROM inbox i JOIN messages m ON m.id = i.message_id "
            "WHERE i.user_id = %s AND i.seq > %s ORDER BY i.seq LIMIT %s", (user_id, after, limit + 1))
        entries = [(int(row[0]), _message(row[1:])) for row in rows[:limit]]
        return InboxPage(entries, more=len(rows) > limit)


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
