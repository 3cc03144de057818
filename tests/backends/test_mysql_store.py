"""What `MySqlStore` does beyond the shared contract: URLs, migrations, failures, id assignment."""

from __future__ import annotations

import asyncio

import aiomysql
import pytest

from benchmarks.store_persist import private_batches
from im.backends.base import Send
from im.backends.store.mysql import MIGRATIONS, MySqlStore, parse_mysql_url
from im.protocol.errors import NotFound, Unavailable
from tests.support.stores import commit_sends

from .conftest import MYSQL_URL, mysql_database
from .proxy import Proxy


def private(sender: int, to: int, cid: str, content: str = "hello") -> Send:
    return Send(sender, cid, content, 1, to=to)


def test_a_url_is_parsed_with_its_escapes_and_default_port() -> None:
    url = parse_mysql_url("mysql://im%40app:p%40ss:w@db.example:3307/chat")
    assert (url.user, url.password, url.host, url.port, url.database) == ("im@app", "p@ss:w", "db.example", 3307,
                                                                          "chat")
    assert parse_mysql_url("mysql://root@localhost/im").port == 3306
    assert "p@ss" not in repr(url)


@pytest.mark.parametrize("url", [
    "", "localhost", "postgres://u:p@h/db", "mysql://u:p@h:3306", "mysql://u:p@h:3306/", "mysql://h/db",
    "mysql://u:p@h:notaport/db", "mysql://u:p@:3306/db", "mysql://u:p@h/db?ssl=1",
])
def test_a_malformed_url_names_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="IM_MYSQL_URL"):
        MySqlStore(url)


async def test_an_unreachable_server_is_unavailable() -> None:
    store = MySqlStore("mysql://root:@127.0.0.1:1/im", connect_timeout=1)
    with pytest.raises(Unavailable, match="127.0.0.1:1"):
        await store.open()
    with pytest.raises(Unavailable):
        await store.ping()


async def test_a_wrong_password_is_unavailable_with_the_reason(mysql_url: str) -> None:
    store = MySqlStore(mysql_url.replace("root:@", "root:wrong@").replace("root@", "root:wrong@"))
    with pytest.raises(Unavailable, match="[Aa]ccess denied"):
        await store.open()


async def test_migrations_run_once_and_concurrent_starters_agree(mysql_url: str) -> None:
    stores = [MySqlStore(mysql_url, pool_size=2) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        async with stores[0]._connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [v for (v,) in await cur.fetchall()] == [m[0] for m in MIGRATIONS]
            await cur.execute("SELECT ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
                              "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'messages'")
            engine, collation = await cur.fetchone()
            assert engine == "InnoDB" and collation.startswith("utf8mb4")
        await stores[0].close()
        await stores[0].open()  # again: nothing to do
        await stores[0].ping()
    finally:
        for s in stores:
            await s.close()


async def test_a_missing_database_is_created() -> None:
    with mysql_database() as url:
        missing = url + "_new"
        store = MySqlStore(missing)
        try:
            await store.open()
            await store.ping()
        finally:
            await store.close()
            async with store_connection() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{missing.rsplit('/', 1)[1]}`")


class store_connection:  # noqa: N801 - used like a function
    async def __aenter__(self) -> aiomysql.Cursor:
        url = parse_mysql_url(MYSQL_URL + "/x")
        self.conn = await aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                           autocommit=True)
        self.cur = await self.conn.cursor()
        return self.cur

    async def __aexit__(self, *exc: object) -> None:
        await self.cur.close()
        self.conn.close()


async def test_ids_are_read_back_when_they_may_not_be_consecutive(mysql_url: str) -> None:
    store = MySqlStore(mysql_url)
    await store.open()
    try:
        store._consecutive_ids = False  # as with innodb_autoinc_lock_mode = 2
        a, b = [(await store.create_user(f"{n}@x", "h", n)).id for n in "ab"]
        results = await commit_sends(store, [private(a, b, str(i)) for i in range(20)])
        page = await store.inbox(b, 0, 100)
        assert [m for _, m in page.entries] == [r.message for r in results]
    finally:
        await store.close()


async def test_long_batches_are_split_into_statements_that_keep_their_ids(
    mysql_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import im.backends.store.mysql as module

    monkeypatch.setattr(module, "_MAX_STATEMENT_BYTES", 2000)  # a few messages per statement
    store = MySqlStore(mysql_url)
    await store.open()
    try:
        a, b = [(await store.create_user(f"{n}@x", "h", n)).id for n in "ab"]
        results = await commit_sends(store, [private(a, b, str(i), "x" * 100) for i in range(50)])
        page = await store.inbox(b, 0, 100)
        assert [m for _, m in page.entries] == [r.message for r in results]
    finally:
        await store.close()


async def test_a_user_without_a_counter_row_gets_one(mysql_url: str) -> None:
    store = MySqlStore(mysql_url)
    await store.open()
    try:
        a, b = [(await store.create_user(f"{n}@x", "h", n)).id for n in "ab"]
        async with store._connection() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM inbox_counters")
        results = await asyncio.gather(*(commit_sends(store, [private(a, b, f"{i}")]) for i in range(10)))
        assert sorted(r[0].seqs[b] for r in results) == list(range(1, 11))
    finally:
        await store.close()


async def test_adding_a_member_to_a_missing_group_is_not_found(mysql_url: str) -> None:
    store = MySqlStore(mysql_url)
    await store.open()
    try:
        user = await store.create_user("a@x", "h", "a")
        with pytest.raises(NotFound):
            await store.add_member(12345, user.id)
    finally:
        await store.close()


async def test_500_message_batches_in_a_row_and_at_once_store_every_row_once(mysql_url: str) -> None:
    """The batches `benchmarks/store_persist.py` times: what they store, checked row by row."""
    store = MySqlStore(mysql_url, pool_size=4)
    await store.open()
    try:
        people = [(await store.create_user(f"{i}@x", "h", str(i))).id for i in range(200)]
        batches = private_batches(people, "t")
        results = [await commit_sends(store, batch) for batch in batches[:10]]
        results += await asyncio.gather(*(commit_sends(store, batch) for batch in batches[10:]))
        sent = [m for batch in batches for m in batch]
        assert not any(r.duplicate for batch in results for r in batch)
        async with store._connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT id, sender_id, to_user_id, cid FROM messages")
            messages = {int(i): (int(s), int(t), c.decode()) for i, s, t, c in await cur.fetchall()}
            await cur.execute("SELECT user_id, seq, message_id FROM inbox ORDER BY user_id, seq")
            inbox = [(int(u), int(s), int(m)) for u, s, m in await cur.fetchall()]
        assert sorted(messages.values()) == sorted((m.sender, m.to, m.cid) for m in sent), "each message once"
        assert {r.message.id for batch in results for r in batch} == set(messages)
        assert len(inbox) == 2 * len(sent), "one inbox row per recipient, sender included"
        by_message: dict[int, set[int]] = {}
        for user, _, message_id in inbox:
            by_message.setdefault(message_id, set()).add(user)
        assert all(by_message[i] == {s, t} for i, (s, t, _) in messages.items())
        for user in people:
            seqs = [seq for u, seq, _ in inbox if u == user]
            assert seqs == list(range(1, len(seqs) + 1)), f"user {user}'s seqs are not gapless"
    finally:
        await store.close()


async def test_a_lock_wait_timeout_runs_the_batch_again(mysql_url: str) -> None:
    store = MySqlStore(mysql_url, lock_wait_timeout=1, retry_delay=0.01)
    await store.open()
    try:
        a, b = [(await store.create_user(f"{n}@x", "h", n)).id for n in "ab"]
        async with store._connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT @@innodb_lock_wait_timeout")
            assert await cur.fetchone() == (1,)
        async with store_connection() as other:
            await other.execute(f"USE `{mysql_url.rsplit('/', 1)[1]}`")
            await other.execute("BEGIN")
            await other.execute("SELECT * FROM inbox_counters WHERE user_id = %s FOR UPDATE", (b,))
            committing = asyncio.ensure_future(commit_sends(store, [private(a, b, "x")]))
            await asyncio.sleep(1.6)  # past one lock wait timeout
            assert not committing.done()
            await other.execute("COMMIT")
            [result] = await asyncio.wait_for(committing, 5)
        assert result.seqs == {a: 1, b: 1}
    finally:
        await store.close()


async def test_the_store_carries_on_after_its_connections_are_killed(mysql_url: str) -> None:
    store = MySqlStore(mysql_url, pool_size=4)
    await store.open()
    try:
        a, b = [(await store.create_user(f"{n}@x", "h", n)).id for n in "ab"]
        await asyncio.gather(*(commit_sends(store, [private(a, b, str(i))]) for i in range(4)))  # fill the pool
        database = mysql_url.rsplit("/", 1)[1]
        async with store_connection() as admin:
            await admin.execute("SELECT id FROM information_schema.PROCESSLIST WHERE db = %s", (database,))
            ids = [row[0] for row in await admin.fetchall()]
            assert ids
            for connection_id in ids:
                await admin.execute(f"KILL {int(connection_id)}")
        [result] = await commit_sends(store, [private(a, b, "after")])
        assert result.seqs == {a: 5, b: 5} and not result.duplicate
        assert len((await store.inbox(b, 0, 10)).entries) == 5
        await store.ping()
    finally:
        await store.close()


async def test_a_server_that_goes_away_is_unavailable_until_it_comes_back(mysql_url: str) -> None:
    url = parse_mysql_url(mysql_url)
    proxy = await Proxy(url.host, url.port).start()
    store = MySqlStore(f"mysql://{url.user}:{url.password}@127.0.0.1:{proxy.port}/{url.database}",
                       connect_timeout=1)
    try:
        await store.open()
        a, b = [(await store.create_user(f"{n}@x", "h", n)).id for n in "ab"]
        await commit_sends(store, [private(a, b, "before")])
        await proxy.cut()
        with pytest.raises(Unavailable):
            await commit_sends(store, [private(a, b, "during")])
        with pytest.raises(Unavailable):
            await store.ping()
        proxy.restore()
        [result] = await commit_sends(store, [private(a, b, "during")])
        assert result.seqs == {a: 2, b: 2} and not result.duplicate
    finally:
        await store.close()
        await proxy.close()
