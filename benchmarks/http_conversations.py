"""`GET /api/v1/conversations` latency over HTTP: a user with 1,000 conversations, on real servers.

    .venv/bin/python benchmarks/http_conversations.py [--conversations 1000] [--requests 2000] [--limit 50]
    .venv/bin/python benchmarks/http_conversations.py --mysql-database im_bench_conv   # distributed, see below

The SQLite database is filled before the server starts, through `SqliteStore.commit` in 500-item
batches as logic sends them: the measured user gets `--conversations` peers, three messages with each
(two from the peer, one reply), and a read in every other conversation. Then `im serve` runs on it
(its own process, default settings) and this script, one keep-alive HTTP/1.1 connection, times:
the first page and pages after every cursor of a full walk through the list, `--requests` calls in
all (half first pages, half a random cursor), with `GET /healthz` every tenth call as the floor of
one HTTP round trip on this machine. It prints p50 / p90 / p99 / max per kind.

With `--mysql-database NAME` it measures the distributed path instead: `im-gateway` → gRPC → `im-logic`
→ MySQL, on a database that `benchmarks/conversations.py --database NAME --keep` filled (1,000
conversations of one user among 1,000,000 messages), with Redis (a key prefix of its own) and
RabbitMQ (a vhost of its own, made and removed with `rabbitmqctl`) from `--redis-url` / `--rabbitmq-url`.

The measured time is the whole HTTP call as a client sees it: parsing, the token check, logic, the
store query and the JSON encoding of the page. The target (issue 9) is p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import aiomysql
import orjson
from conversations import converse, print_latencies  # the script next to this one

from im.backends.store.mysql import parse_mysql_url
from im.backends.store.sqlite import SqliteStore
from im.protocol.tokens import TokenCodec

BIN = Path(sys.executable).parent


async def fill(database: Path, conversations: int) -> int:
    """The measured user's id."""
    store = SqliteStore(database)
    await store.open()
    try:
        me = (await store.create_user("me@bench.test", "not a hash", "me")).id
        peers = [(await store.create_user(f"p{i}@bench.test", "not a hash", f"peer {i}")).id
                 for i in range(conversations)]
        await converse(store, me, peers, int(time.time() * 1000) - 10 * conversations)
        return me
    finally:
        await store.close()


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not get ready")


def get(connection: http.client.HTTPConnection, path: str, token: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
    return elapsed, body


def measure(port: int, token: str, requests: int, limit: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    first_page = f"/api/v1/conversations?limit={limit}"
    cursors: list[str] = []
    total, walk, cursor = 0, time.perf_counter(), None
    while True:
        path = first_page if cursor is None else f"{first_page}&{urllib.parse.urlencode({'cursor': cursor})}"
        page = orjson.loads(get(connection, path, token)[1])
        total += len(page["conversations"])
        cursor = page["next"]
        if cursor is None:
            break
        cursors.append(cursor)
    walk = time.perf_counter() - walk
    for _ in range(50):
        get(connection, first_page, token)
    first, after_cursor, floor = [], [], []
    rng = random.Random(5)
    for i in range(requests):
        if i % 2 == 0 or not cursors:
            first.append(get(connection, first_page, token)[0])
        else:
            path = f"{first_page}&{urllib.parse.urlencode({'cursor': rng.choice(cursors)})}"
            after_cursor.append(get(connection, path, token)[0])
        if i % 10 == 0:
            floor.append(get(connection, "/healthz", token)[0])
    print(f"{total} conversations, {len(cursors) + 1} pages of {limit}, whole walk {walk * 1000:.0f} ms")
    print_latencies((("first page", first), ("cursor page", after_cursor), ("all", first + after_cursor),
                     ("GET /healthz", floor)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--limit", type=int, default=50, help="conversations per page")
    parser.add_argument("--port", type=int, default=18089)
    parser.add_argument("--mysql-database", help="measure im-gateway + im-logic on this filled database")
    parser.add_argument("--mysql-url", default="mysql://root:@127.0.0.1:3306", help="server URL, no database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    secret = secrets.token_urlsafe(48)
    if args.mysql_database:
        distributed(args, secret)
        return
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        me = asyncio.run(fill(Path(data_dir) / "im.sqlite3", args.conversations))
        print(f"filled {args.conversations} conversations ({3 * args.conversations} messages) "
              f"in {time.perf_counter() - started:.1f} s")
        server = subprocess.Popen(
            [str(BIN / "im"), "serve", "--host", "127.0.0.1", "--port", str(args.port), "--data-dir", data_dir,
             "--jwt-secret", secret, "--log-level", "warning"])
        try:
            wait_ready(args.port, server)
            token, _ = TokenCodec(secret).issue(me, int(time.time()))
            measure(args.port, token, args.requests, args.limit)
        finally:
            server.terminate()
            server.wait(30)


def distributed(args: argparse.Namespace, secret: str) -> None:
    me = asyncio.run(bench_user(args.mysql_url, args.mysql_database))
    vhost = f"im-bench-http-{secrets.token_hex(3)}"
    rabbitmqctl("add_vhost", vhost)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        env = {"IM_MYSQL_URL": f"{args.mysql_url.rstrip('/')}/{args.mysql_database}", "IM_REDIS_URL": args.redis_url,
               "IM_REDIS_PREFIX": f"{vhost}:", "IM_RABBITMQ_URL": args.rabbitmq_url.rstrip("/") + "/" + vhost,
               "IM_JWT_SECRET": secret, "IM_METRICS_PORT": "0", "IM_LOG_LEVEL": "WARNING",
               "PATH": os.environ.get("PATH", "")}
        grpc_port = args.port + 1
        processes.append(subprocess.Popen([str(BIN / "im-logic"), "--grpc-host", "127.0.0.1", "--grpc-port",
                                           str(grpc_port)], env=env))
        processes.append(subprocess.Popen(
            [str(BIN / "im-gateway"), "--host", "127.0.0.1", "--port", str(args.port), "--gateway-id", vhost],
            env={**env, "IM_LOGIC_ADDR": f"127.0.0.1:{grpc_port}"}))
        wait_ready(args.port, processes[-1], timeout=60)
        token, _ = TokenCodec(secret).issue(me, int(time.time()))
        measure(args.port, token, args.requests, args.limit)
    finally:
        for process in processes[::-1]:
            process.terminate()
            process.wait(30)
        rabbitmqctl("delete_vhost", vhost)


async def bench_user(server: str, database: str) -> int:
    url = parse_mysql_url(f"{server.rstrip('/')}/{database}")
    conn = await aiomysql.connect(host=url.host, port=url.port, user=url.user, password=url.password, db=database)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT user_id FROM bench_info")
            return int((await cur.fetchone())[0])
    finally:
        conn.close()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


if __name__ == "__main__":
    main()
