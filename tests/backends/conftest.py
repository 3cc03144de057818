"""Isolated places on the real servers: a database, a key prefix, a vhost per test (module for vhosts).

Server addresses come from `IM_TEST_MYSQL_URL` (without a database), `IM_TEST_REDIS_URL`,
`IM_TEST_RABBITMQ_URL` (without a vhost) and default to the local servers. A server that cannot be
reached skips its tests, unless `IM_TEST_REQUIRE_SERVERS=1` makes that a failure (CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support import servers
from tests.support.servers import MYSQL_URL, RABBITMQ_URL, REDIS_URL

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


@contextlib.contextmanager
def mysql_database() -> Iterator[str]:
    """`mysql://.../im_test_<random>`: a database that exists inside the `with` only."""
    _require(MYSQL_URL, 3306, "MySQL")
    with servers.mysql_database() as url:
        yield url


@pytest.fixture
def mysql_url() -> Iterator[str]:
    with mysql_database() as url:
        yield url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix; its keys are deleted after the test."""
    _require(REDIS_URL, 6379, "Redis")
    with servers.redis_prefix() as prefix:
        yield prefix


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """`amqp://.../<vhost>`: a vhost that exists for this test module only."""
    _require(RABBITMQ_URL, 5672, "RabbitMQ")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create a test vhost")
    with servers.rabbitmq_vhost() as url:
        yield url


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
