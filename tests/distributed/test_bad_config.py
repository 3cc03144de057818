"""A bad setting stops `im-logic` / `im-gateway` at start, within seconds, with one line naming it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.cluster import Backends, isolated_backends
from tests.support.processes import BIN, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECRET = "s" * 40
EXIT_WITHIN = 12.0
"""Seconds: the longest connect timeout of a backend (RabbitMQ's, 10 s) plus start-up."""

# Placeholders filled per test: {mysql} {redis} {amqp} a working isolated setup, {closed} a port nobody
# listens on, {silent} a port that accepts TCP connections and never says a word.
LOGIC = {"IM_MYSQL_URL": "{mysql}", "IM_REDIS_URL": "{redis}", "IM_RABBITMQ_URL": "{amqp}",
         "IM_JWT_SECRET": SECRET, "IM_GRPC_PORT": "{free}", "IM_METRICS_PORT": "0"}
GATEWAY = {"IM_REDIS_URL": "{redis}", "IM_RABBITMQ_URL": "{amqp}", "IM_JWT_SECRET": SECRET,
           "IM_LOGIC_ADDR": "127.0.0.1:{closed}", "IM_PORT": "{free}", "IM_METRICS_PORT": "0",
           "IM_GATEWAY_ID": "badconfig"}

CASES = [
    # (program, changes to its environment (None = unset), "bad setting" or "cannot start", setting)
    pytest.param("im-logic", {"IM_MYSQL_URL": None}, "bad setting", "IM_MYSQL_URL", id="logic-missing-mysql"),
    pytest.param("im-logic", {"IM_JWT_SECRET": None}, "bad setting", "IM_JWT_SECRET", id="logic-missing-secret"),
    pytest.param("im-gateway", {"IM_LOGIC_ADDR": None}, "bad setting", "IM_LOGIC_ADDR", id="gateway-missing-logic"),
    pytest.param("im-gateway", {"IM_REDIS_URL": None}, "bad setting", "IM_REDIS_URL", id="gateway-missing-redis"),
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql//root@localhost/db"}, "bad setting", "IM_MYSQL_URL",
                 id="logic-malformed-mysql"),
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql://root:@127.0.0.1:99999/db"}, "bad setting",
                 "IM_MYSQL_URL", id="logic-mysql-port-out-of-range"),
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql://root:@127.0.0.1:3306"}, "bad setting", "IM_MYSQL_URL",
                 id="logic-mysql-without-database"),
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql://127.0.0.1:3306/db"}, "bad setting", "IM_MYSQL_URL",
                 id="logic-mysql-without-user"),
    pytest.param("im-logic", {"IM_RABBITMQ_URL": "http://127.0.0.1:5672/"}, "bad setting", "IM_RABBITMQ_URL",
                 id="logic-malformed-amqp"),
    pytest.param("im-gateway", {"IM_REDIS_URL": "127.0.0.1:6379"}, "bad setting", "IM_REDIS_URL",
                 id="gateway-malformed-redis"),
    pytest.param("im-gateway", {"IM_LOGIC_ADDR": "logic-without-port"}, "bad setting", "IM_LOGIC_ADDR",
                 id="gateway-malformed-logic-addr"),
    pytest.param("im-logic", {"IM_GRPC_PORT": "fifty"}, "bad setting", "IM_GRPC_PORT", id="logic-port-not-int"),
    pytest.param("im-gateway", {"IM_JWT_SECRET": "short"}, "bad setting", "IM_JWT_SECRET",
                 id="gateway-short-secret"),
    pytest.param("im-gateway", {"IM_SHARDS": "0"}, "bad setting", "IM_SHARDS", id="gateway-zero-shards"),
    pytest.param("im-logic", {"IM_PREFETCH": "0"}, "bad setting", "IM_PREFETCH", id="logic-zero-prefetch"),
    pytest.param("im-logic", {"IM_MYSQL_POOL_SIZE": "0"}, "bad setting", "IM_MYSQL_POOL_SIZE",
                 id="logic-zero-pool"),
    pytest.param("im-logic", {"IM_BATCH_MAX_SIZE": "0"}, "bad setting", "IM_BATCH_MAX_SIZE",
                 id="logic-zero-batch"),
    pytest.param("im-gateway", {"IM_RATE_BURST": "-1"}, "bad setting", "IM_RATE_BURST",
                 id="gateway-negative-burst"),
    # wrong credentials
    pytest.param("im-logic", {"IM_MYSQL_URL": "{mysql_wrong_password}"}, "cannot start", "IM_MYSQL_URL",
                 id="logic-wrong-mysql-password"),
    pytest.param("im-gateway", {"IM_RABBITMQ_URL": "{amqp_wrong_password}"}, "cannot start", "IM_RABBITMQ_URL",
                 id="gateway-wrong-rabbitmq-password"),
    pytest.param("im-logic", {"IM_RABBITMQ_URL": "{amqp_unknown_vhost}"}, "cannot start", "IM_RABBITMQ_URL",
                 id="logic-unknown-vhost"),
    # nobody listens
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql://root:@127.0.0.1:{closed}/db"}, "cannot start",
                 "IM_MYSQL_URL", id="logic-mysql-refused"),
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql://root:@no-such-host.invalid:3306/db"}, "cannot start",
                 "IM_MYSQL_URL", id="logic-mysql-unknown-host"),
    pytest.param("im-logic", {"IM_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:{closed}/"}, "cannot start",
                 "IM_RABBITMQ_URL", id="logic-rabbitmq-refused"),
    pytest.param("im-logic", {"IM_REDIS_URL": "redis://127.0.0.1:{closed}/0"}, "cannot start", "IM_REDIS_URL",
                 id="logic-redis-refused"),
    pytest.param("im-gateway", {"IM_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:{closed}/"}, "cannot start",
                 "IM_RABBITMQ_URL", id="gateway-rabbitmq-refused"),
    pytest.param("im-gateway", {"IM_REDIS_URL": "redis://no-such-host.invalid:6379/0"}, "cannot start",
                 "IM_REDIS_URL", id="gateway-redis-unknown-host"),
    # someone listens and never answers (a hung server, a black-holing firewall)
    pytest.param("im-logic", {"IM_MYSQL_URL": "mysql://root:@127.0.0.1:{silent}/db"}, "cannot start",
                 "IM_MYSQL_URL", id="logic-mysql-silent"),
    pytest.param("im-gateway", {"IM_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:{silent}/"}, "cannot start",
                 "IM_RABBITMQ_URL", id="gateway-rabbitmq-silent"),
    pytest.param("im-gateway", {"IM_REDIS_URL": "redis://127.0.0.1:{silent}/0"}, "cannot start", "IM_REDIS_URL",
                 id="gateway-redis-silent"),
]


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    with isolated_backends() as backends:
        yield backends


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A listening socket nobody accepts from: connections complete, then nothing is ever said."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    credentials, host = rest.split("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:{password}@{host}"


@pytest.mark.parametrize(("program", "changes", "kind", "setting"), CASES)
def test_a_bad_setting_stops_the_process_with_one_line_naming_it(
    program: str, changes: dict[str, str | None], kind: str, setting: str,
    backends: Backends, silent_port: int,
) -> None:
    amqp_root = backends.rabbitmq_url.rsplit("/", 1)[0]
    values = {
        "mysql": backends.mysql_url, "redis": backends.redis_url, "amqp": backends.rabbitmq_url,
        "mysql_wrong_password": _with_password(backends.mysql_url, "wrong-password"),
        "amqp_wrong_password": _with_password(backends.rabbitmq_url, "wrong-password"),
        "amqp_unknown_vhost": f"{amqp_root}/no_such_vhost_{free_port()}",
        "closed": str(free_port()), "free": str(free_port()), "silent": str(silent_port),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("IM_")}
    env["IM_REDIS_PREFIX"] = backends.redis_prefix
    for name, value in {**(LOGIC if program == "im-logic" else GATEWAY), **changes}.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value.format(**values)

    began = time.monotonic()
    try:
        finished = subprocess.run([str(BIN / program)], env=env, capture_output=True, text=True,
                                  timeout=EXIT_WITHIN + 2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{program} still running after {EXIT_WITHIN + 2}s with {changes}")
    took = time.monotonic() - began
    output = finished.stdout + finished.stderr

    assert finished.returncode != 0, output
    assert took < EXIT_WITHIN, f"took {took:.1f}s"
    assert "Traceback" not in output, output
    verdicts = [line for line in output.splitlines() if line.startswith(f"{program}: ")]
    assert len(verdicts) == 1, output
    assert verdicts[0].startswith(f"{program}: {kind}: {setting}"), verdicts[0]
    assert "wrong-password" not in output, "passwords are never printed"
