"""Store throughput of plain messages: the batch transaction (`Store.commit` of sends), SQLite and MySQL.

    .venv/bin/python benchmarks/store_persist.py [--mysql-url mysql://root:@127.0.0.1:3306] [--rounds 5]

Each round uses a fresh store (a temporary SQLite file, a temporary MySQL database dropped afterwards),
200 users and one group of 100 of them, then times:

- `private`: 20 batches of 500 private messages between varying pairs, one batch after the other;
- `private x4`: the same amount as 4 batches in flight at once (MySQL only; SQLite has one writer);
- `group`: 20 batches of 20 messages to the 100-member group (2,000 inbox rows a batch);
- `reads`: 100 readers with 300 unread messages each read them one by one: 100 batches of 100 reads
  (rates are reads/s, CPU per read).

It prints messages/s per round and the median, and the CPU this process spent per message (both
threads of the SQLite store; for MySQL the server's CPU is not in it). On a shared machine the CPU
figure moves less than the rate. Run it before and after a change, back to back, and compare medians
(docs/benchmarks.md says what was measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiomysql

from im.backends.base import Applied, Read, Send, Store
from im.backends.store.mysql import MySqlStore, parse_mysql_url
from im.backends.store.sqlite import SqliteStore
from im.contracts.records import Message

USERS = 200
GROUP_SIZE = 100
BATCHES = 20
BATCH = 500
GROUP_BATCH = 20
UNREAD = 300
READ_BATCHES = 100


def private_batches(people: list[int], run: str) -> list[list[Send]]:
    batches = []
    for b in range(BATCHES):
        batch = []
        for i in range(BATCH):
            sender = people[(b * 7 + i) % USERS]
            to = people[(b * 13 + i * 3 + 1) % USERS]
            if to == sender:
                to = people[(b * 13 + i * 3 + 2) % USERS]
            batch.append(Send(sender, f"{run}.{b}.{i}", "a message of ordinary length, about forty",
                              1_700_000_000_000, to=to))
        batches.append(batch)
    return batches


def group_batches(group: int, members: list[int], run: str) -> list[list[Send]]:
    return [[Send(members[(b + i) % GROUP_SIZE], f"{run}.g{b}.{i}", "to everyone in the group", 1_700_000_000_000,
                  group=group) for i in range(GROUP_BATCH)] for b in range(BATCHES)]


Rates = dict[str, tuple[float, float]]
"""scenario -> (messages/s, CPU µs per message)"""


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, messages: int) -> tuple[float, float]:
        return (messages / (time.perf_counter() - self.wall), (time.process_time() - self.cpu) / messages * 1e6)


async def commit(store: Store, batch: list[Send]) -> None:
    await store.commit(batch, edit_window_ms=None, recall_window_ms=None)


async def measure(store: Store, concurrent: bool) -> Rates:
    await store.open()
    try:
        people = [(await store.create_user(f"{i}@bench", "h", f"user {i}")).id for i in range(USERS)]
        group = await store.create_group("bench", people[0])
        for member in people[1:GROUP_SIZE]:
            await store.add_member(group.id, member)
        rates: Rates = {}
        await commit(store, private_batches(people, "warm")[0])
        batches = private_batches(people, "seq")
        clock = Clock()
        for batch in batches:
            await commit(store, batch)
        rates["private"] = clock.rate(BATCHES * BATCH)
        if concurrent:
            batches = private_batches(people, "conc")
            clock = Clock()
            for start in range(0, BATCHES, 4):
                await asyncio.gather(*(commit(store, b) for b in batches[start:start + 4]))
            rates["private x4"] = clock.rate(BATCHES * BATCH)
        batches = group_batches(group.id, people[:GROUP_SIZE], "grp")
        clock = Clock()
        for batch in batches:
            await commit(store, batch)
        rates["group"] = clock.rate(BATCHES * GROUP_BATCH)
        rates["reads"] = await measure_reads(store, people)
        return rates
    finally:
        await store.close()


async def measure_reads(store: Store, people: list[int]) -> tuple[float, float]:
    """Each reader has `UNREAD` messages from its partner and reads them one at a time, a batch moving
    every reader's pointer by one message, `READ_BATCHES` batches one after the other."""
    readers, partners = people[:USERS // 2], people[USERS // 2:]
    ids: dict[int, list[int]] = {reader: [] for reader in readers}
    for start in range(0, UNREAD, BATCH // len(readers)):
        batch = [Send(partner, f"unread.{start + i}", "a message to be read", 1_700_000_000_000, to=reader)
                 for i in range(BATCH // len(readers)) for reader, partner in zip(readers, partners, strict=True)]
        for outcome in await store.commit(batch, edit_window_ms=None, recall_window_ms=None):
            assert isinstance(outcome, Applied) and isinstance(outcome.event, Message) and outcome.event.to
            ids[outcome.event.to].append(outcome.event.id)
    clock = Clock()
    for position in range(READ_BATCHES):
        await store.commit([Read(reader, ids[reader][position], 1_700_000_000_000, peer=partner)
                            for reader, partner in zip(readers, partners, strict=True)],
                           edit_window_ms=None, recall_window_ms=None)
    return clock.rate(READ_BATCHES * len(readers))


@contextlib.asynccontextmanager
async def mysql_database(server: str) -> AsyncIterator[str]:
    url = parse_mysql_url(server.rstrip("/") + "/x")
    name = f"im_bench_{secrets.token_hex(4)}"
    conn = await aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password,
                                  autocommit=True)
    try:
        yield f"{server.rstrip('/')}/{name}"
    finally:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


async def run_sqlite() -> Rates:
    with tempfile.TemporaryDirectory() as directory:
        return await measure(SqliteStore(Path(directory) / "bench.db"), concurrent=False)


async def run_mysql(server: str) -> Rates:
    async with mysql_database(server) as url:
        return await measure(MySqlStore(url, pool_size=4), concurrent=True)


async def rounds(name: str, run: Callable[[], Awaitable[Rates]], n: int) -> None:
    results = [await run() for _ in range(n)]
    for scenario in results[0]:
        values = [r[scenario][0] for r in results]
        cpu = [r[scenario][1] for r in results]
        print(f"{name:6} {scenario:11} median {statistics.median(values):9,.0f} msg/s "
              f"{statistics.median(cpu):7.1f} CPU µs/msg   rounds: {', '.join(f'{v:,.0f}' for v in values)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mysql-url", default="mysql://root:@127.0.0.1:3306", help="server URL, no database")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["sqlite", "mysql"])
    args = parser.parse_args()
    if args.only != "mysql":
        await rounds("sqlite", run_sqlite, args.rounds)
    if args.only != "sqlite":
        await rounds("mysql", lambda: run_mysql(args.mysql_url), args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
