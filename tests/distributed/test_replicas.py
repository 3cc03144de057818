"""Two logic replicas over the shared MySQL, Redis and RabbitMQ: order per conversation, and failover of
the shards when the active consumer dies."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import time
import urllib.request
from urllib.parse import unquote, urlsplit

import pytest

from im.client import HttpClient
from tests.support.cluster import LocalCluster
from tests.support.processes import ManagedProcess, free_port
from tests.support.resending_client import ResendingClient, check_conversation

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

_emails = itertools.count()
GATEWAY_ENV = {"IM_RATE_LIMIT": "0"}


def persisted(logic: ManagedProcess) -> float:
    url = f"http://127.0.0.1:{logic.env['IM_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=3) as response:
        found = re.search(r"^im_messages_persisted_total (\S+)$", response.read().decode(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def active_consumers(cluster: LocalCluster) -> int:
    """Uplink shards that have an active consumer, as RabbitMQ sees it."""
    vhost = unquote(urlsplit(cluster.backends.rabbitmq_url).path.lstrip("/"))
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_consumers", "-p", vhost, "queue_name", "active", "--formatter", "json"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    return sum(1 for c in json.loads(listed or "[]")
               if c["queue_name"].startswith("im.uplink.") and c["active"] in (True, "true"))


async def wait_for_active_consumers(cluster: LocalCluster, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (found := await asyncio.to_thread(active_consumers, cluster)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{found} of {count} shards have an active consumer")
        await asyncio.sleep(0.2)


async def test_one_conversation_arrives_in_send_order_with_two_replicas(cluster: LocalCluster) -> None:
    cluster.start_logic()
    second = cluster.start_logic()
    gateway = cluster.start_gateway(second, **GATEWAY_ENV)
    http = HttpClient(gateway.url)
    alice = ResendingClient(await http.signup(f"r{next(_emails)}@example.test"), [gateway.ws_url])
    bob = ResendingClient(await http.signup(f"r{next(_emails)}@example.test"), [gateway.ws_url])
    await alice.connect()
    await bob.connect()
    await asyncio.sleep(0.2)
    to_bob = [f"ab{i}" for i in range(100)]
    to_alice = [f"ba{i}" for i in range(100)]
    for a, b in zip(to_bob, to_alice, strict=True):
        await alice.send(a, a, to=bob.user_id)
        await bob.send(b, b, to=alice.user_id)
    await asyncio.gather(alice.settle(30), bob.settle(30))
    for sender, recipient, cids in ((alice, bob, to_bob), (bob, alice, to_alice)):
        received = await check_conversation(http, sender, recipient, cids)
        assert [m["cid"] for m in received] == cids, "stored in send order"
        assert [m["cid"] for m in recipient.pushed] == cids, "pushed in send order"
    for client in (alice, bob):
        await client.disconnect()


async def test_killing_the_active_consumer_moves_the_shards_to_the_other_replica(cluster: LocalCluster) -> None:
    active = cluster.start_logic(IM_METRICS_PORT=str(free_port()), IM_BATCH_MAX_DELAY_MS="20")
    await wait_for_active_consumers(cluster, cluster.shards)  # `active` holds every shard
    standby = cluster.start_logic(IM_METRICS_PORT=str(free_port()), IM_BATCH_MAX_DELAY_MS="20")
    gateway = cluster.start_gateway(standby, **GATEWAY_ENV)
    http = HttpClient(gateway.url)
    alice = ResendingClient(await http.signup(f"r{next(_emails)}@example.test"), [gateway.ws_url])
    bob = ResendingClient(await http.signup(f"r{next(_emails)}@example.test"), [gateway.ws_url])
    await alice.connect()
    await bob.connect()
    await asyncio.sleep(0.2)
    cids = [f"m{i}" for i in range(300)]

    async def stream() -> None:
        for cid in cids:
            await alice.send(cid, cid, to=bob.user_id)
            await alice.pump(0.005)

    streaming = asyncio.create_task(stream())
    while len(alice.acks) < 80:
        await asyncio.sleep(0.01)
    stored_by_active = persisted(active)
    active.kill()
    assert stored_by_active > 0 and persisted(standby) == 0, "the first replica was the active consumer"
    assert len(alice.acks) < len(cids), "killed mid-stream"
    await streaming
    await alice.settle(60)
    assert persisted(standby) > 0, "the standby took the shards over"
    await bob.settle()
    received = await check_conversation(http, alice, bob, cids)
    assert [m["cid"] for m in received] == cids, "the conversation keeps its order across the failover"
    pushed = [m["cid"] for m in bob.pushed]
    assert pushed == sorted(pushed, key=cids.index), "pushes never go backwards"
    for client in (alice, bob):
        await client.disconnect()
