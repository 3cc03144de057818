"""Conversation list latency on MySQL: a user with 1,000 conversations in a database of 1,000,000 messages.

    .venv/bin/python benchmarks/conversations.py [--mysql-url mysql://root:@127.0.0.1:3306]
        [--database NAME] [--keep] [--messages 1000000] [--conversations 1000] [--requests 2000]

How the database is filled (once; `--database NAME --keep` fills it on the first run and only measures
on the next ones):
- 10,000 background users exchange private messages between random pairs, inserted as the store
  stores them (messages, two inbox rows with their conversation, the seq counters) by multi-row INSERTs
  straight from this script, because a million messages through the batch transaction would take
  minutes on a shared machine; their conversation rows are then built with the same statement the
  schema migration uses for old inboxes (one row per user and peer, about 2 million rows);
- then the measured user gets `--conversations` peers, three messages with each (two from the peer,
  one reply), sent through `MySqlStore.commit` in 500-item batches like logic sends them, so its
  conversation rows are the ones the store maintains; and a read in every other conversation.

Then it times `MySqlStore.conversations(user, limit)`: the first page, and pages after every cursor
of a full walk through the list, `--requests` calls in all, and prints p50 / p90 / p99 / max and the
query plan (EXPLAIN). The target (issue 9) is p99 <= 20 ms for the HTTP call; this is the store's
part of it, measured in-process, so the driver's decoding is in the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from typing import Any

import aiomysql

from im.backends.base import Applied, BatchItem, Read, Send, Store
from im.backends.store.mysql import MIGRATIONS, ByUsers, MySqlStore, _run_step, parse_mysql_url
from im.backends.store.rows import CONVERSATIONS_SQL
from im.contracts.records import ConversationCursor, Message

BACKGROUND_USERS = 10_000
T0 = 1_700_000_000_000
CHUNK = 5_000
_BACKFILL = next(step for step in MIGRATIONS[1][2]
                 if isinstance(step, ByUsers) and step.statement.lstrip().startswith("INSERT INTO conversations"))


async def admin(server: str, database: str | None = None) -> Any:
    url = parse_mysql_url(server.rstrip("/") + "/" + (database or "x"))
    return await aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                  db=database, autocommit=True, charset="utf8mb4")


async def fill(server: str, database: str, messages: int, conversations: int) -> int:
    """Fill `database` (created by the store); returns the measured user's id."""
    store = MySqlStore(f"{server.rstrip('/')}/{database}", pool_size=4)
    await store.open()
    conn = await admin(server, database)
    started = time.perf_counter()
    try:
        async with conn.cursor() as cur:
            for start in range(1, BACKGROUND_USERS + 2, CHUNK):
                ids = range(start, min(start + CHUNK, BACKGROUND_USERS + 2))
                await cur.execute("INSERT INTO users (id, email, password_hash, nickname, created_at) VALUES "
                                  + ",".join(f"({i},'u{i}@bench','h','user {i}',{T0})" for i in ids))
            me = BACKGROUND_USERS + 1
            rng = random.Random(9)
            seqs = [0] * (BACKGROUND_USERS + 2)
            background = messages - 3 * conversations
            for start in range(0, background, CHUNK):
                rows, inbox = [], []
                for message_id in range(start + 1, min(start + CHUNK, background) + 1):
                    a = rng.randrange(1, BACKGROUND_USERS + 1)
                    b = rng.randrange(1, BACKGROUND_USERS)
                    b += b >= a
                    seqs[a] += 1
                    seqs[b] += 1
                    rows.append(f"({message_id},{a},{b},'a message of ordinary length, about forty',"
                                f"'b{message_id}',{T0 + message_id},{seqs[a]})")
                    inbox.append(f"({a},{seqs[a]},{message_id},1,{b}),({b},{seqs[b]},{message_id},1,{a})")
                await cur.execute("INSERT INTO messages (id, sender_id, to_user_id, content, cid, created_at, "
                                  "sender_seq) VALUES " + ",".join(rows))
                await cur.execute("INSERT INTO inbox (user_id, seq, message_id, conv_type, conv_id) VALUES "
                                  + ",".join(inbox))
            await cur.execute("INSERT INTO inbox_counters (user_id, last_seq) VALUES "
                              + ",".join(f"({u},{s})" for u, s in enumerate(seqs) if u))
            await _run_step(cur, _BACKFILL)
            print(f"filled {background:,} background messages in {time.perf_counter() - started:.0f} s")
        peers = random.Random(3).sample(range(1, BACKGROUND_USERS + 1), conversations)
        await converse(store, me, peers, T0 + messages + 1000)
        async with conn.cursor() as cur:
            await cur.execute("CREATE TABLE bench_info (user_id BIGINT NOT NULL)")
            await cur.execute("INSERT INTO bench_info VALUES (%s)", (me,))
            await cur.execute("SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM inbox), "
                              "(SELECT COUNT(*) FROM conversations)")
            counted = await cur.fetchone()
            print(f"database: {counted[0]:,} messages, {counted[1]:,} inbox rows, {counted[2]:,} conversation rows; "
                  f"filled in {time.perf_counter() - started:.0f} s")
        return me
    finally:
        conn.close()
        await store.close()


async def converse(store: Store, me: int, peers: list[int], ts: int) -> None:
    """Three messages with each peer (theirs, mine, theirs), then my read of every other one of those
    conversations up to its last message: unread counts and read pointers both vary in the list."""
    items: list[BatchItem] = []
    for peer in peers:
        items += [Send(peer, f"m{me}.{peer}.1", "hello", ts, to=me),
                  Send(me, f"m{me}.{peer}.2", "hi", ts + 1, to=peer),
                  Send(peer, f"m{me}.{peer}.3", "how are you?", ts + 2, to=me)]
        ts += 3
    last_ids: dict[int, int] = {}
    for start in range(0, len(items), 500):
        for outcome in await store.commit(items[start:start + 500], edit_window_ms=None, recall_window_ms=None):
            assert isinstance(outcome, Applied) and isinstance(outcome.event, Message)
            message = outcome.event
            last_ids[message.sender if message.sender != me else message.to or me] = message.id
    reads: list[BatchItem] = [Read(me, last_ids[peer], ts, peer=peer) for peer in peers[::2]]
    for start in range(0, len(reads), 500):
        await store.commit(reads[start:start + 500], edit_window_ms=None, recall_window_ms=None)


def print_latencies(rows: tuple[tuple[str, list[float]], ...]) -> None:
    """One line per (name, milliseconds): n, p50, p90, p99, max."""
    for name, values in rows:
        q = statistics.quantiles(values, n=100)
        print(f"{name:12} n={len(values):5}  p50 {q[49]:6.2f} ms  p90 {q[89]:6.2f}  p99 {q[98]:6.2f}  "
              f"max {max(values):6.2f}")


async def measure(server: str, database: str, requests: int, limit: int) -> None:
    store = MySqlStore(f"{server.rstrip('/')}/{database}", pool_size=2)
    await store.open()
    conn = await admin(server, database)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT user_id FROM bench_info")
            (me,) = await cur.fetchone()
            await cur.execute("EXPLAIN " + _sql_for_explain(me, limit))
            plan = await cur.fetchall()
        cursors: list[ConversationCursor | None] = [None]
        walk = time.perf_counter()
        total = 0
        while True:
            page = await store.conversations(me, limit, cursors[-1])
            total += len(page.entries)
            if page.next is None:
                break
            cursors.append(page.next)
        walk = time.perf_counter() - walk
        for _ in range(50):
            await store.conversations(me, limit)
        first, any_page, ping = [], [], []
        for i in range(requests):
            cursor = None if i % 2 == 0 or len(cursors) == 1 else random.choice(cursors[1:])
            t = time.perf_counter()
            page = await store.conversations(me, limit, cursor)
            elapsed = (time.perf_counter() - t) * 1000
            (first if cursor is None else any_page).append(elapsed)
            assert page.entries
            if i % 10 == 0:  # the floor on this machine: one round trip that does nothing
                t = time.perf_counter()
                await store.ping()
                ping.append((time.perf_counter() - t) * 1000)
        print(f"user {me}: {total} conversations, {len(cursors)} pages of {limit}, whole walk {walk * 1000:.0f} ms")
        print_latencies((("first page", first), ("cursor page", any_page), ("all", first + any_page),
                         ("SELECT 1", ping)))
        print("plan:")
        for row in plan:
            print("  ", row)
    finally:
        conn.close()
        await store.close()


def _sql_for_explain(me: int, limit: int) -> str:
    big = 2**63 - 1
    return CONVERSATIONS_SQL.replace("?", "%s") % (me, big, big, 0, 0, 0, limit + 1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mysql-url", default="mysql://root:@127.0.0.1:3306", help="server URL, no database")
    parser.add_argument("--database", help="database to fill (if new) and measure; default a temporary one")
    parser.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--limit", type=int, default=50, help="conversations per page")
    args = parser.parse_args()
    database = args.database or f"im_bench_{secrets.token_hex(4)}"
    conn = await admin(args.mysql_url)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                              "AND TABLE_NAME = 'bench_info'", (database,))
            filled = (await cur.fetchone())[0] > 0
        if not filled:
            await fill(args.mysql_url, database, args.messages, args.conversations)
        await measure(args.mysql_url, database, args.requests, args.limit)
    finally:
        if not args.keep:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()


if __name__ == "__main__":
    asyncio.run(main())
