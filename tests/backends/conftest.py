"""Isolated places on the real servers: a database, a key prefix, a vhost per test (module for vhosts).

Server addresses come from `IM_TEST_MYSQL_URL` (without a database), `IM_TEST_REDIS_URL`,
`IM_TEST_RABBITMQ_URL` (without a vhost) and default to the local servers. A server that cannot be
reached skips its tests, unless `IM_TEST_REQUIRE_SERVERS=1` makes that a failure (CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit

import aiomysql
import pytest
import redis.asyncio as aioredis

MYSQL_URL = os.environ.get("IM_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306")
REDIS_URL = os.environ.get("IM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("IM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
REQUIRE = os.environ.get("IM_TEST_REQUIRE_SERVERS") == "1"


def _require(url: str, default_port: int, what: str) -> None:
    parts = urlsplit(url)
    try:
        address = (parts.hostname or "127.0.0.1", parts.port or default_port)
        socket.create_connection(address, timeout=2).close()
    except OSError as e:
        if REQUIRE:
            pytest.fail(f"{what} at {parts.hostname}:{parts.port} unreachable: {e}")
        pytest.skip(f"{what} at {parts.hostname}:{parts.port} unreachable: {e}")


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def mysql_database() -> AsyncIterator[str]:
    """`mysql://.../im_test_<random>`: a database that exists inside the `async with` only."""
    _require(MYSQL_URL, 3306, "MySQL")
    parts = urlsplit(MYSQL_URL)
    name = unique("im_test_")
    conn = await aiomysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                                  password=parts.password or "", autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"{MYSQL_URL.rstrip('/')}/{name}"
    finally:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
async def mysql_url() -> AsyncIterator[str]:
    async with mysql_database() as url:
        yield url


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A random key prefix; its keys are deleted after the test."""
    _require(REDIS_URL, 6379, "Redis")
    prefix = unique("im_test_") + ":"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """`amqp://.../<vhost>`: a vhost that exists for this test module only."""
    _require(RABBITMQ_URL, 5672, "RabbitMQ")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create a test vhost")
    vhost = unique("im_test_")
    _rabbitmqctl("add_vhost", vhost)
    user = urlsplit(RABBITMQ_URL).username or "guest"
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield f"{RABBITMQ_URL.rstrip('/')}/{quote(vhost, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


async def eventually(check, timeout: float = 5.0, interval: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """Wait until `check()` (sync or async) is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
