"""A private corner of each shared server for one test run: a MySQL database, a Redis key prefix,
a RabbitMQ vhost, each created for the run and removed after it.

Addresses come from `IM_TEST_MYSQL_URL` (without a database), `IM_TEST_REDIS_URL` and
`IM_TEST_RABBITMQ_URL` (without a vhost) and default to the servers on this machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pymysql
import redis

MYSQL_URL = os.environ.get("IM_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306")
REDIS_URL = os.environ.get("IM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("IM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def _mysql_admin(url: str = MYSQL_URL) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", autocommit=True)


@contextlib.contextmanager
def mysql_database(server_url: str = MYSQL_URL) -> Iterator[str]:
    """`mysql://.../im_test_<random>`, dropped afterwards."""
    name = unique("im_test_")
    admin = _mysql_admin(server_url)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"{server_url.rstrip('/')}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@contextlib.contextmanager
def redis_prefix(url: str = REDIS_URL) -> Iterator[str]:
    """A random key prefix whose keys are deleted afterwards."""
    prefix = unique("im_test_") + ":"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def rabbitmq_vhost(url: str = RABBITMQ_URL) -> Iterator[str]:
    """`amqp://.../<vhost>` for a new vhost, deleted afterwards."""
    vhost = unique("im_test_")
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, urlsplit(url).username or "guest", ".*", ".*", ".*")
        yield f"{url.rstrip('/')}/{quote(vhost, safe='')}"
    finally:
        rabbitmqctl("delete_vhost", vhost)
