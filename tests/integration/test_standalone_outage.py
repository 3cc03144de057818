"""A store that cannot write pauses the pipeline, says so on /readyz, and never keeps SIGTERM waiting.

The outage is real: another process holds SQLite's write lock on the server's database file, so every
write waits out the busy timeout and fails with "database is locked" while reads still work.
"""

import asyncio
import contextlib
import itertools
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from im.client import ChatConnection, HttpClient, Login

pytestmark = pytest.mark.integration

_emails = itertools.count()


async def signup(http: HttpClient) -> Login:
    return await http.signup(f"outage{next(_emails)}@example.test")


@contextlib.contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Hold the database's write lock from another connection (another writer, as far as SQLite knows)."""
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def readyz(server: Any) -> int:
    try:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        body = orjson.loads(error.read())
        # The client port is public: why the server is not ready is in its log, under the request id.
        assert set(body) == {"status", "request_id"} and body["request_id"] in server.log(), body
        return error.code


async def wait_for_readyz(server: Any, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await asyncio.to_thread(readyz, server)) != status:
        assert time.monotonic() < deadline, f"/readyz stayed {got}, expected {status}"
        await asyncio.sleep(0.2)


async def test_while_the_store_cannot_write_readyz_fails_and_messages_wait_then_commit(server_factory: Any) -> None:
    server = server_factory()
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    assert await asyncio.to_thread(readyz, server) == 200
    with write_lock(server.data_dir / "im.sqlite3"):
        await a.send("during", "written once the store is back", to=bob.user_id)
        await wait_for_readyz(server, 503)
        for _ in range(3):
            await asyncio.sleep(0.5)
            assert await asyncio.to_thread(readyz, server) == 503
        assert a.frames.empty(), "nothing may be acked while the store cannot write"
    ack = await a.expect("ack", timeout=30)
    assert ack["cid"] == "during"
    await wait_for_readyz(server, 200)
    assert [m["cid"] for m in await http.history(bob.token)] == ["during"]
    await a.close()


async def test_sigterm_during_an_outage_refuses_what_is_unwritten_and_exits_in_bounded_time(
    server_factory: Any,
) -> None:
    drain, flush = 4.0, 1.0
    server = server_factory("--drain-seconds", str(drain), "--flush-timeout-seconds", str(flush))
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send("before", "committed before the outage", to=bob.user_id)
    await a.expect("ack")
    with write_lock(server.data_dir / "im.sqlite3"):
        await a.send("stuck", "cannot be written", to=bob.user_id)
        await wait_for_readyz(server, 503)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        frames = []
        while (frame := await a.next(timeout=30))["type"] != "_closed":
            frames.append(frame)
        refused = [f for f in frames if f["type"] == "error"]
        assert [(f["code"], f["cid"]) for f in refused] == [("unavailable", "stuck")], frames
        assert server.process is not None
        code = await asyncio.to_thread(server.process.wait, 60)
        took = time.monotonic() - started
        server.process = None
    assert code == 0
    # drain window + flush timeout + the store's 5 s busy wait finishing on its thread + margin
    assert took < drain + flush + 5 + 10, took
    server.start()
    assert [m["cid"] for m in await http.history(bob.token)] == ["before"]
