"""`im-logic` during a MySQL outage: it says so (the gateways go unready), and SIGTERM ends it in
bounded time, leaving what it could not commit on RabbitMQ for the next logic."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from im.client import ChatConnection, HttpClient
from tests.support.cluster import Backends, local_cluster
from tests.support.private_servers import private_mariadb
from tests.support.servers import RABBITMQ_URL, REDIS_URL, rabbitmq_vhost, redis_prefix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

_emails = itertools.count()


def readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


async def test_sigterm_during_a_mysql_outage_exits_in_bounded_time_and_loses_nothing(tmp_path: Path) -> None:
    flush = 1.0
    with ExitStack() as stack:
        mariadb = stack.enter_context(private_mariadb(tmp_path / "mariadb"))
        backends = Backends(f"{mariadb.url}/im_test", REDIS_URL, stack.enter_context(redis_prefix(REDIS_URL)),
                            stack.enter_context(rabbitmq_vhost(RABBITMQ_URL)))
        cluster = stack.enter_context(local_cluster(tmp_path, backends))
        env = {"IM_FLUSH_TIMEOUT_SECONDS": str(flush), "IM_HEALTH_CHECK_SECONDS": "0.5"}
        logic = cluster.start_logic(**env)
        gateway = cluster.start_gateway()
        http = HttpClient(gateway.url)
        alice = await http.signup(f"outage{next(_emails)}-{time.time_ns()}@example.test")
        bob = await http.signup(f"outage{next(_emails)}-{time.time_ns()}@example.test")
        a = await ChatConnection.open(http.ws_url, alice.token)

        await asyncio.to_thread(mariadb.kill)
        await a.send("stuck", "sent while MySQL is down", to=bob.user_id)
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(readyz, gateway.url) != 503:
            assert time.monotonic() < deadline, "the gateway stayed ready while logic could not commit"
            await asyncio.sleep(0.2)

        started = time.monotonic()
        logic.send_signal(signal.SIGTERM)
        assert logic.process is not None
        code = await asyncio.to_thread(logic.process.wait, 60)
        took = time.monotonic() - started
        logic.process = None
        assert code == 0, logic.log()
        assert took < flush + 15, f"SIGTERM took {took:.1f}s"
        assert a.frames.empty(), "neither acked nor refused: it stays on RabbitMQ"

        await asyncio.to_thread(mariadb.start)
        logic.start()  # the same port: the gateway's logic comes back
        ack = await a.expect("ack", timeout=60)
        assert ack["cid"] == "stuck"
        assert [m["cid"] for m in await http.history(bob.token)] == ["stuck"]
        await a.close()
