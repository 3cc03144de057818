"""Ceilings of the distributed backends, measured with the same client libraries the services use.

    im-bench ceilings --rabbitmq-url amqp://guest:guest@127.0.0.1:5672/VHOST \
                      --mysql-url mysql://root:@127.0.0.1:3306/DB --seconds 5 --json

- **RabbitMQ** (aio-pika): persistent messages with publisher confirms into one durable queue, with a
  window of publishes awaiting their confirms, then the same messages consumed and acked. Once with one
  item per AMQP message and once (or more) with many items per AMQP message, where an item is an
  uplink encoded exactly as our bus does it (`encode_uplinks`; consumers decode with `decode_uplinks`).
  Rates are given per AMQP message and per item.
- **MySQL** (aiomysql): multi-row INSERTs of rows shaped like our `messages` table, `rows_per_txn` rows
  per transaction, every value a `%s` parameter (`executemany` rewrites them into one statement).

Each measurement uses its own queue or table (random name) in the vhost and database it is given and
removes it afterwards. `ratios` compares what the distributed system did (an `im-bench` report) with
these numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from im.bench.report import host_cpu, host_section, machine
from im.contracts.envelopes import Uplink, decode_uplinks, encode_uplinks

__all__ = ["MysqlTarget", "build_parser", "format_text", "main", "mysql_ceiling", "parse_mysql_target",
           "rabbitmq_ceiling", "rate", "ratios", "rows", "run_ceilings", "sample_uplinks"]

ROWS_PER_PRIVATE_MESSAGE = 3
"""MySQL rows one private message costs our store: its `messages` row and one `inbox` row for each of
sender and recipient (plus an upsert of two `inbox_counters` rows, not counted)."""

INSERT_SQL = ("INSERT INTO {table} (sender_id, recipient_id, group_id, content, cid, sender_seq, created_at) "
              "VALUES (%s, %s, %s, %s, %s, %s, %s)")
CREATE_SQL = """CREATE TABLE {table} (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sender_id BIGINT NOT NULL,
    recipient_id BIGINT NULL,
    group_id BIGINT NULL,
    content TEXT NOT NULL,
    cid VARCHAR(64) NOT NULL,
    sender_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY sender_cid (sender_id, cid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


# -- pure parts ------------------------------------------------------------------------------------


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def sample_uplinks(count: int, content_size: int = 64, *, start: int = 0) -> list[Uplink]:
    """`count` private uplinks like the ones our gateways publish (`content_size` characters each)."""
    content = ("x" * content_size)[:content_size]
    now = time.time()
    return [Uplink(sender=1000 + (i % 50), cid=f"c{start + i:012d}", to=2000 + (i % 50), group=None,
                   content=content, gateway="gw-bench", conn=i % 50, accepted_at=now)
            for i in range(count)]


def rows(count: int, content_size: int = 64, *, start: int = 0) -> list[tuple[Any, ...]]:
    """`count` rows for `INSERT_SQL`; `start` keeps `(sender_id, cid)` unique across batches."""
    content = ("x" * content_size)[:content_size]
    now = int(time.time() * 1000)
    return [(1000 + (i % 50), 2000 + (i % 50), None, content, f"c{start + i:012d}", start + i, now)
            for i in range(count)]


@dataclass(frozen=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    password: str
    database: str


def parse_mysql_target(url: str) -> MysqlTarget:
    """`mysql://user:pass@host:port/db`; the database is required (the ceiling makes a table in it)."""
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise ValueError(f"expected mysql://user:pass@host:port/db, got {url!r}")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError("the MySQL URL needs a database: mysql://user:pass@host:port/db")
    return MysqlTarget(parts.hostname or "127.0.0.1", parts.port or 3306, unquote(parts.username or "root"),
                       unquote(parts.password or ""), database)


def ratios(ceilings: dict[str, Any], ours_per_second: float | None,
           rows_per_message: int = ROWS_PER_PRIVATE_MESSAGE) -> dict[str, Any]:
    """Our complete (persisted + delivered) messages/s over each ceiling, as items (or rows) per second.

    Against RabbitMQ, every client message is one item that is published and consumed once on the
    uplink (the downlink is another publish on top, not counted). Against MySQL, a private message is
    `rows_per_message` rows; both "messages over rows" and "rows over rows" are given.
    """
    out: dict[str, Any] = {"ours_messages_per_second": ours_per_second}
    if not ours_per_second:
        return out
    for item in ceilings.get("rabbitmq", []):
        n = item["items_per_message"]
        for phase in ("publish", "consume"):
            ceiling = item[phase]["items_per_second"]
            out[f"rabbitmq_{phase}_{n}_per_message"] = round(ours_per_second / ceiling, 3) if ceiling else None
    mysql = ceilings.get("mysql")
    if mysql and mysql.get("rows_per_second"):
        out["mysql_messages_over_rows"] = round(ours_per_second / mysql["rows_per_second"], 3)
        out["mysql_rows_over_rows"] = round(ours_per_second * rows_per_message / mysql["rows_per_second"], 3)
        out["mysql_rows_per_message"] = rows_per_message
    return out


def format_text(report: dict[str, Any]) -> str:
    lines = [f"im-bench ceilings  ({report['machine']['nproc']} cpus, python {report['machine']['python']})"]
    for item in report.get("rabbitmq", []):
        pub, con = item["publish"], item["consume"]
        lines.append(
            f"rabbitmq {item['items_per_message']:>4} item(s)/AMQP message ({item['body_bytes']} B): "
            f"publish {pub['messages_per_second']:.0f} msg/s = {pub['items_per_second']:.0f} items/s; "
            f"consume+ack {con['messages_per_second']:.0f} msg/s = {con['items_per_second']:.0f} items/s")
    mysql = report.get("mysql")
    if mysql:
        lines.append(f"mysql {mysql['rows_per_txn']} rows/transaction, {mysql['connections']} connection(s): "
                     f"{mysql['rows_per_second']:.0f} rows/s ({mysql['transactions']} transactions)")
    host = report.get("host")
    if host:
        lines.append(f"machine: {host['busy_cores']:.2f} of {host['cpus']:.0f} cores busy"
                     + (f", {host['others_cores']:.2f} other processes" if "others_cores" in host else ""))
    ratio = report.get("ratios")
    if ratio and ratio.get("ours_messages_per_second"):
        lines.append("ours/ceiling: " + ", ".join(f"{k} {v}" for k, v in ratio.items()
                                                 if k != "ours_messages_per_second"))
    return "\n".join(lines)


# -- measurements ----------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    return time.process_time()


async def rabbitmq_ceiling(url: str, *, items_per_message: int = 1, seconds: float = 5.0,
                           in_flight: int = 64, prefetch: int = 64, content_size: int = 64) -> dict[str, Any]:
    """Publish for `seconds` (persistent, confirmed, `in_flight` awaiting confirms), then consume them all.

    Publish and consume are measured apart, on their own channels of one connection, so each rate is
    that side alone with the broker to itself. Every published message is consumed and acked (one ack
    each, like the ENVIRONMENT probe) before the queue is deleted.
    """
    import aio_pika
    from aio_pika.abc import DeliveryMode

    template = sample_uplinks(items_per_message, content_size)
    connection = await aio_pika.connect(url, client_properties={"connection_name": "im-bench ceilings"})
    queue_name = f"im.bench.ceiling.{secrets.token_hex(4)}"
    try:
        publisher = await connection.channel(publisher_confirms=True)
        queue = await publisher.declare_queue(queue_name, durable=True)
        exchange = publisher.default_exchange
        published = 0
        cpu0, began = _cpu_seconds(), time.perf_counter()
        deadline = began + seconds

        async def publish_loop() -> None:
            nonlocal published
            while time.perf_counter() < deadline:
                # Encoded per message, as the bus does for every round.
                body = encode_uplinks(template)
                await exchange.publish(aio_pika.Message(body, delivery_mode=DeliveryMode.PERSISTENT,
                                                        content_type="application/json"),
                                       routing_key=queue_name, mandatory=True)
                published += 1

        await asyncio.gather(*(publish_loop() for _ in range(in_flight)))
        publish_seconds, publish_cpu = time.perf_counter() - began, _cpu_seconds() - cpu0

        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=prefetch)
        consume_queue = await consumer.get_queue(queue_name, ensure=False)
        consumed = 0
        items = 0
        done = asyncio.get_running_loop().create_future()

        async def on_message(message: Any) -> None:
            nonlocal consumed, items
            items += len(decode_uplinks(message.body))
            await message.ack()
            consumed += 1
            if consumed >= published and not done.done():
                done.set_result(None)

        cpu0, began = _cpu_seconds(), time.perf_counter()
        tag = await consume_queue.consume(on_message)
        if published:
            await asyncio.wait_for(done, max(60.0, seconds * 10))
        consume_seconds, consume_cpu = time.perf_counter() - began, _cpu_seconds() - cpu0
        await consume_queue.cancel(tag)
        with contextlib.suppress(Exception):
            await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return {
        "items_per_message": items_per_message,
        "body_bytes": len(encode_uplinks(template)),
        "in_flight": in_flight, "prefetch": prefetch,
        "publish": {"messages": published, "seconds": round(publish_seconds, 3),
                    "messages_per_second": rate(published, publish_seconds),
                    "items_per_second": rate(published * items_per_message, publish_seconds),
                    "client_cpu_cores": round(publish_cpu / publish_seconds, 3) if publish_seconds else None},
        "consume": {"messages": consumed, "items": items, "seconds": round(consume_seconds, 3),
                    "messages_per_second": rate(consumed, consume_seconds),
                    "items_per_second": rate(items, consume_seconds),
                    "client_cpu_cores": round(consume_cpu / consume_seconds, 3) if consume_seconds else None},
    }


async def mysql_ceiling(url: str, *, seconds: float = 5.0, rows_per_txn: int = 500, connections: int = 1,
                        content_size: int = 64) -> dict[str, Any]:
    """Multi-row INSERT transactions of `rows_per_txn` rows for `seconds`, from `connections` connections."""
    import aiomysql

    target = parse_mysql_target(url)
    table = f"bench_ceiling_{secrets.token_hex(4)}"
    pool = await aiomysql.create_pool(host=target.host, port=target.port, user=target.user,
                                      password=target.password, db=target.database, autocommit=False,
                                      minsize=connections, maxsize=connections, charset="utf8mb4")
    sql = INSERT_SQL.format(table=table)
    inserted = 0
    transactions = 0
    try:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(CREATE_SQL.format(table=table))
            await conn.commit()
        cpu0, began = _cpu_seconds(), time.perf_counter()
        deadline = began + seconds
        next_start = 0

        async def writer() -> None:
            nonlocal inserted, transactions, next_start
            async with pool.acquire() as conn, conn.cursor() as cur:
                while time.perf_counter() < deadline:
                    start, next_start = next_start, next_start + rows_per_txn
                    await cur.executemany(sql, rows(rows_per_txn, content_size, start=start))
                    await conn.commit()
                    inserted += rows_per_txn
                    transactions += 1

        await asyncio.gather(*(writer() for _ in range(connections)))
        elapsed, cpu = time.perf_counter() - began, _cpu_seconds() - cpu0
    finally:
        with contextlib.suppress(Exception):
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(f"DROP TABLE IF EXISTS {table}")
                await conn.commit()
        pool.close()
        await pool.wait_closed()
    return {"rows_per_txn": rows_per_txn, "connections": connections, "rows": inserted,
            "transactions": transactions, "seconds": round(elapsed, 3),
            "rows_per_second": rate(inserted, elapsed),
            "client_cpu_cores": round(cpu / elapsed, 3) if elapsed else None}


async def run_ceilings(*, rabbitmq_url: str | None, mysql_url: str | None, seconds: float = 5.0,
                       items_per_message: list[int] | None = None, in_flight: int = 64, prefetch: int = 64,
                       rows_per_txn: int = 500, mysql_connections: int = 1, content_size: int = 64,
                       ours_per_second: float | None = None, say: Any = None) -> dict[str, Any]:
    report: dict[str, Any] = {"scenario": "ceilings",
                              "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "machine": machine(),
                              "params": {"seconds": seconds, "items_per_message": items_per_message or [1, 64],
                                         "in_flight": in_flight, "prefetch": prefetch,
                                         "rows_per_txn": rows_per_txn, "mysql_connections": mysql_connections,
                                         "content_size": content_size}}
    cpu_start, began, own0 = host_cpu(), time.time(), _cpu_seconds()
    if rabbitmq_url:
        report["rabbitmq"] = []
        for n in items_per_message or [1, 64]:
            if say:
                say(f"[ceilings] rabbitmq, {n} item(s) per AMQP message, {seconds}s publish")
            report["rabbitmq"].append(await rabbitmq_ceiling(rabbitmq_url, items_per_message=n, seconds=seconds,
                                                             in_flight=in_flight, prefetch=prefetch,
                                                             content_size=content_size))
    if mysql_url:
        if say:
            say(f"[ceilings] mysql, {rows_per_txn} rows per transaction, {seconds}s")
        report["mysql"] = await mysql_ceiling(mysql_url, seconds=seconds, rows_per_txn=rows_per_txn,
                                              connections=mysql_connections, content_size=content_size)
    # The brokers' and the database's CPU is the point of a ceiling: "others" here is everything but
    # this process, servers included.
    report["host"] = host_section(cpu_start, host_cpu(), time.time() - began, _cpu_seconds() - own0)
    report["ratios"] = ratios(report, ours_per_second)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="im-bench ceilings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rabbitmq-url", help="amqp://user:pass@host:port/vhost (a vhost of its own is best)")
    p.add_argument("--mysql-url", help="mysql://user:pass@host:port/db (an existing database)")
    p.add_argument("--seconds", type=float, default=5.0, help="publish / insert for this long (default 5)")
    p.add_argument("--items-per-message", type=int, action="append", metavar="N",
                   help="items per AMQP message, repeatable (default: 1 and 64)")
    p.add_argument("--in-flight", type=int, default=64, help="publishes awaiting confirms (default 64)")
    p.add_argument("--prefetch", type=int, default=64, help="consumer prefetch (default 64)")
    p.add_argument("--rows-per-txn", type=int, default=500, help="rows per INSERT transaction (default 500)")
    p.add_argument("--mysql-connections", type=int, default=1, help="inserting connections (default 1)")
    p.add_argument("--size", type=int, default=64, help="characters of content per item (default 64)")
    p.add_argument("--ours", type=float, metavar="MSG_PER_S",
                   help="our complete messages/s, to report ours/ceiling ratios")
    p.add_argument("--ours-report", metavar="FILE",
                   help="an im-bench throughput JSON report to take --ours from")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not args.rabbitmq_url and not args.mysql_url:
        sys.stderr.write("im-bench ceilings: give --rabbitmq-url and/or --mysql-url\n")
        raise SystemExit(2)
    ours = args.ours
    if ours is None and args.ours_report:
        with open(args.ours_report, "rb") as f:
            ours = orjson.loads(f.read())["measured"]["rate"]["complete_per_second"]

    def say(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    from im.bench.loop import run

    try:
        report = run(run_ceilings(rabbitmq_url=args.rabbitmq_url, mysql_url=args.mysql_url, seconds=args.seconds,
                                  items_per_message=args.items_per_message, in_flight=args.in_flight,
                                  prefetch=args.prefetch, rows_per_txn=args.rows_per_txn,
                                  mysql_connections=args.mysql_connections, content_size=args.size,
                                  ours_per_second=ours, say=say))
    except ValueError as exc:
        sys.stderr.write(f"im-bench ceilings: {exc}\n")
        raise SystemExit(2) from exc
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(format_text(report) + "\n")
    sys.stdout.flush()
