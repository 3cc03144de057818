"""When a server or a process fails, nothing acked is lost or stored twice, and the system says so.

Each test sends a known number of messages through clients that follow the client rule (resend
unacked messages with the same cid after reconnecting or a silence), then checks by `seq` that every
acked message is stored once and reached its recipient once (after `sync` where needed).
Servers that a test stops are private instances (tests/support/private_servers.py), never the shared ones.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from im.client import HttpClient, Login
from tests.support.cluster import Backends, GatewayProcess, LocalCluster, local_cluster
from tests.support.private_servers import private_mariadb, private_rabbitmq, private_redis
from tests.support.processes import free_port
from tests.support.resending_client import ResendingClient, check_conversation
from tests.support.servers import MYSQL_URL, RABBITMQ_URL, REDIS_URL, mysql_database, rabbitmq_vhost, redis_prefix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

_emails = itertools.count()

# Fast enough reactions for a test: logic checks its dependencies twice a second; no rate limit,
# since clients resend in bursts.
LOGIC_ENV = {"IM_HEALTH_CHECK_SECONDS": "0.5"}
GATEWAY_ENV = {"IM_RATE_LIMIT": "0"}


# -- helpers ----------------------------------------------------------------------------------------


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return -1


def errors_total(metrics_url: str, code: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=3) as response:
        text = response.read().decode()
    found = re.search(rf'^im_errors_total\{{code="{re.escape(code)}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.2)


async def users(http: HttpClient, count: int) -> list[Login]:
    return [await http.signup(f"f{next(_emails)}-{time.time_ns()}@example.test") for _ in range(count)]


async def send_all(sender: ResendingClient, to: int, cids: list[str], gap: float = 0.0) -> None:
    for cid in cids:
        await sender.send(cid, f"content of {cid}", to=to)
        if gap:
            await sender.pump(gap)


async def pump_all(*clients: ResendingClient, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for client in clients:
            await client.pump(0.05)


def logic_metrics_port() -> dict[str, str]:
    return {"IM_METRICS_PORT": str(free_port())}


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def cluster_on(stack: ExitStack, tmp_path: Path, *, mysql: str | None = None, redis: str | None = None,
               rabbitmq: str | None = None) -> LocalCluster:
    """A cluster on the shared servers, each in a fresh database / key prefix / vhost, except where
    a private server's URL is given: it is used as it is (a database logic creates, prefix `im:`,
    vhost `/`) and nothing is cleaned up on it, since the whole server goes away with the test (and
    may be down when the test fails)."""
    mysql_url = f"{mysql}/im_test" if mysql else stack.enter_context(mysql_database(MYSQL_URL))
    prefix = "im:" if redis else stack.enter_context(redis_prefix(REDIS_URL))
    redis = redis or REDIS_URL
    amqp = rabbitmq if rabbitmq is not None else stack.enter_context(rabbitmq_vhost(RABBITMQ_URL))
    return stack.enter_context(local_cluster(tmp_path, Backends(mysql_url, redis, prefix, amqp)))


async def chat(gateway: GatewayProcess, *more: GatewayProcess) -> tuple[HttpClient, ResendingClient, ResendingClient]:
    http = HttpClient(gateway.url)
    alice, bob = await users(http, 2)
    urls = [gateway.ws_url, *(g.ws_url for g in more)]
    sender, recipient = ResendingClient(alice, urls), ResendingClient(bob, urls)
    await sender.connect()
    await recipient.connect()
    await asyncio.sleep(0.2)  # the sessions are recorded
    return http, sender, recipient


# -- tests ------------------------------------------------------------------------------------------


async def test_while_mysql_is_down_logic_stops_acking_and_resumes_by_itself(
    tmp_path: Path, stack: ExitStack,
) -> None:
    mariadb = stack.enter_context(private_mariadb(tmp_path))
    cluster = cluster_on(stack, tmp_path, mysql=mariadb.url)
    metrics = logic_metrics_port()
    cluster.start_logic(**LOGIC_ENV, **metrics)
    metrics_url = f"http://127.0.0.1:{metrics['IM_METRICS_PORT']}/metrics"
    gateway = cluster.start_gateway(**GATEWAY_ENV)
    http, alice, bob = await chat(gateway)
    before = [f"before{i}" for i in range(10)]
    await send_all(alice, bob.user_id, before)
    await alice.settle(20)
    errors_before = errors_total(metrics_url, "unavailable")

    await asyncio.to_thread(mariadb.kill)
    during = [f"during{i}" for i in range(10)]
    await send_all(alice, bob.user_id, during)
    await pump_all(alice, bob, seconds=3)
    assert set(alice.unacked) == set(during), "nothing is acked while nothing can be committed"
    await eventually(lambda: http_status(gateway.url + "/readyz") == 503, 15, "/readyz says 503")
    assert errors_total(metrics_url, "unavailable") > errors_before, "failed commits are counted"

    await asyncio.to_thread(mariadb.start)
    await alice.settle(45)
    await eventually(lambda: http_status(gateway.url + "/readyz") == 200, 15, "/readyz says 200 again")
    await bob.settle()
    await check_conversation(http, alice, bob, before + during)


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_rabbitmq_restart_loses_nothing(tmp_path: Path, stack: ExitStack, how: str) -> None:
    """`stop` is a clean shutdown, `kill` a crash (SIGKILL): confirmed publishes survive both."""
    rabbitmq = stack.enter_context(private_rabbitmq(tmp_path))
    cluster = cluster_on(stack, tmp_path, rabbitmq=rabbitmq.url)
    cluster.start_logic(**LOGIC_ENV)
    one, two = cluster.start_gateway(**GATEWAY_ENV), cluster.start_gateway(**GATEWAY_ENV)
    http = HttpClient(one.url)
    alice_login, bob_login = await users(http, 2)
    alice = ResendingClient(alice_login, [one.ws_url, two.ws_url])
    bob = ResendingClient(bob_login, [two.ws_url, one.ws_url])
    await alice.connect()
    await bob.connect()
    await asyncio.sleep(0.2)
    before = [f"before{i}" for i in range(10)]
    await send_all(alice, bob.user_id, before)
    await alice.settle(20)

    stopping = asyncio.create_task(asyncio.to_thread(getattr(rabbitmq, how)))
    during = [f"during{i}" for i in range(20)]
    await send_all(alice, bob.user_id, during, gap=0.1)
    await stopping
    await eventually(lambda: http_status(one.url + "/readyz") == 503, 15, "/readyz says 503 without RabbitMQ")
    await pump_all(alice, bob, seconds=1)
    await asyncio.to_thread(rabbitmq.start)

    after = [f"after{i}" for i in range(10)]
    await send_all(alice, bob.user_id, after)
    await alice.settle(60)
    await eventually(lambda: http_status(one.url + "/readyz") == 200, 30, "/readyz says 200 again")
    await check_conversation(http, alice, bob, before + during + after)
    # Downlinks flow again: a message sent now is pushed to bob without a sync.
    pushed = len(bob.pushed)
    await send_all(alice, bob.user_id, ["last"])
    await alice.settle(20)
    deadline = time.monotonic() + 10
    while len(bob.pushed) == pushed and time.monotonic() < deadline:
        await bob.pump(0.2)
    assert [m["cid"] for m in bob.pushed[pushed:]] == ["last"], "both sides reconnected to RabbitMQ"


async def test_while_redis_is_down_messages_are_stored_and_delivery_falls_back_to_sync(
    tmp_path: Path, stack: ExitStack,
) -> None:
    redis_server = stack.enter_context(private_redis(tmp_path))
    cluster = cluster_on(stack, tmp_path, redis=redis_server.url)
    metrics = logic_metrics_port()
    cluster.start_logic(**LOGIC_ENV, **metrics)
    gateway = cluster.start_gateway(**GATEWAY_ENV, IM_SESSION_TTL_SECONDS="3")
    http, alice, bob = await chat(gateway)
    before = [f"before{i}" for i in range(5)]
    await send_all(alice, bob.user_id, before)
    await alice.settle(20)
    await pump_all(bob, seconds=0.5)
    assert [m["cid"] for m in bob.pushed] == before, "pushed while Redis is up"
    gateway_errors = errors_total(gateway.metrics_url, "unavailable")
    logic_errors = errors_total(f"http://127.0.0.1:{metrics['IM_METRICS_PORT']}/metrics", "unavailable")

    await asyncio.to_thread(redis_server.kill)
    await eventually(lambda: http_status(gateway.url + "/readyz") == 503, 10, "/readyz says 503 without Redis")
    during = [f"during{i}" for i in range(10)]
    await send_all(alice, bob.user_id, during)
    await alice.settle(30)  # stored and acked without Redis
    await pump_all(alice, bob, seconds=1.5)  # long enough for a failed session refresh (every 1 s)
    assert errors_total(gateway.metrics_url, "unavailable") > gateway_errors
    assert errors_total(f"http://127.0.0.1:{metrics['IM_METRICS_PORT']}/metrics", "unavailable") > logic_errors

    await asyncio.to_thread(redis_server.start)
    await eventually(lambda: http_status(gateway.url + "/readyz") == 200, 10, "/readyz says 200 again")
    await bob.reconnect()  # the rule: sync after reconnecting
    await check_conversation(http, alice, bob, before + during)


async def test_kill_9_of_logic_mid_batch_redelivers_and_stores_once(tmp_path: Path, stack: ExitStack) -> None:
    cluster = cluster_on(stack, tmp_path)
    # Batches that stay open a while, so the kill lands while one is being filled or committed.
    logic = cluster.start_logic(**LOGIC_ENV, IM_BATCH_MAX_DELAY_MS="30")
    gateway = cluster.start_gateway(**GATEWAY_ENV)
    http, alice, bob = await chat(gateway)
    cids = [f"m{i}" for i in range(300)]

    async def stream() -> None:
        await send_all(alice, bob.user_id, cids, gap=0.005)

    streaming = asyncio.create_task(stream())
    while len(alice.acks) < 60:
        await asyncio.sleep(0.01)
    logic.kill()
    assert 60 <= len(alice.acks) < len(cids), "killed mid-stream"
    await asyncio.to_thread(logic.start)
    await streaming
    await alice.settle(60)
    await bob.settle()
    received = await check_conversation(http, alice, bob, cids)
    assert [m["cid"] for m in received] == cids, "one conversation keeps its order across the crash"


async def test_kill_9_of_a_gateway_its_clients_move_to_the_other_and_sync(
    tmp_path: Path, stack: ExitStack,
) -> None:
    cluster = cluster_on(stack, tmp_path)
    cluster.start_logic(**LOGIC_ENV)
    doomed, survivor = cluster.start_gateway(**GATEWAY_ENV), cluster.start_gateway(**GATEWAY_ENV)
    http, alice, bob = await chat(doomed, survivor)
    http = HttpClient(survivor.url)
    cids = [f"m{i}" for i in range(150)]

    async def stream() -> None:
        await send_all(alice, bob.user_id, cids, gap=0.005)

    streaming = asyncio.create_task(stream())
    while len(alice.acks) < 40:
        await asyncio.sleep(0.01)
    doomed.kill()
    await streaming
    await asyncio.gather(alice.settle(60), pump_all(bob, seconds=2))
    assert alice.connects >= 2 and bob.connects >= 2, "both moved to the surviving gateway"
    received = await check_conversation(http, alice, bob, cids)
    assert [m["cid"] for m in received] == cids
