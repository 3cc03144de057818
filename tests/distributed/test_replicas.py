"""Logic replicas over the shared MySQL, Redis and RabbitMQ: they share the shards fairly and all do
work, a replica joining takes its share, one that dies or hangs has its shards taken over, and no
conversation loses its order on the way.

Replicas are named (`IM_REPLICA_ID`) so the lease table in Redis says which process owns what.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import time
from urllib.parse import unquote, urlsplit

import pytest

from im.backends.bus.rabbitmq import shard_of
from im.client import HttpClient
from tests.distributed.shards import EvenLoad, eventually, exchange_in_order, fair, metric, owners, persisted
from tests.support.cluster import LocalCluster
from tests.support.processes import ManagedProcess, free_port
from tests.support.resending_client import ResendingClient, check_conversation

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

_emails = itertools.count()
GATEWAY_ENV = {"IM_RATE_LIMIT": "0"}


def start_logic(cluster: LocalCluster, name: str, **env: str) -> ManagedProcess:
    return cluster.start_logic(IM_REPLICA_ID=name, IM_METRICS_PORT=str(free_port()), **env)


def active_consumers(cluster: LocalCluster) -> dict[str, int]:
    """Per uplink queue, how many consumers RabbitMQ counts as active (single-active-consumer: at most 1)."""
    vhost = unquote(urlsplit(cluster.backends.rabbitmq_url).path.lstrip("/"))
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_consumers", "-p", vhost, "queue_name", "active", "--formatter", "json"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    found: dict[str, int] = {}
    for consumer in json.loads(listed or "[]"):
        queue = consumer["queue_name"]
        if queue.startswith("im.uplink."):
            found[queue] = found.get(queue, 0) + (consumer["active"] in (True, "true"))
    return found


def within_a_quarter(shares: list[float]) -> bool:
    mean = sum(shares) / len(shares)
    return all(abs(share - mean) <= 0.25 * mean for share in shares)


async def test_replicas_share_the_shards_evenly_and_all_persist(cluster: LocalCluster) -> None:
    """Finding 1: a second replica used to wait on every shard while the first did all the work."""
    cluster.shards = 6
    logics = [start_logic(cluster, "logic-a"), start_logic(cluster, "logic-b")]
    await eventually(lambda: fair(cluster, ["logic-a", "logic-b"]), 30, "two replicas own 3 shards each")
    gateway = cluster.start_gateway(**GATEWAY_ENV)
    http = HttpClient(gateway.url)
    load = await EvenLoad.open(http, [gateway.ws_url], cluster.shards, per_shard=3)
    before = [persisted(logic) for logic in logics]
    await load.run(rounds=4, tag="two")
    shares = [persisted(logic) - b for logic, b in zip(logics, before, strict=True)]
    assert min(shares) > 0 and within_a_quarter(shares), f"persisted per replica: {shares}"
    assert all(n == 1 for n in (await asyncio.to_thread(active_consumers, cluster)).values())
    assert [metric(logic, "im_logic_shards_owned") for logic in logics] == [3, 3]

    logics.append(start_logic(cluster, "logic-c"))
    took = await eventually(lambda: fair(cluster, ["logic-a", "logic-b", "logic-c"]), 30,
                            "a third replica joining gets its 2 of 6 shards")
    await asyncio.sleep(2.5)  # two of the gateway's route refreshes (every second): it sends to the new owner
    before = [persisted(logic) for logic in logics]
    await load.run(rounds=4, tag="three")
    shares = [persisted(logic) - b for logic, b in zip(logics, before, strict=True)]
    assert min(shares) > 0 and within_a_quarter(shares), f"persisted per replica: {shares} (re-balanced in {took:.1f}s)"
    await eventually(lambda: all(n == 1 for n in active_consumers(cluster).values())
                     and len(active_consumers(cluster)) == cluster.shards, 10, "one active consumer per queue")
    assert metric(logics[0], "im_logic_lease_renewals_total", '{result="released"}') >= 1
    await load.check()
    await load.close()


async def test_one_conversation_arrives_in_send_order_with_two_replicas(cluster: LocalCluster) -> None:
    start_logic(cluster, "logic-a")
    second = start_logic(cluster, "logic-b")
    gateway = cluster.start_gateway(second, **GATEWAY_ENV)
    await exchange_in_order(HttpClient(gateway.url), gateway.ws_url, gateway.ws_url, 100)


async def _failover(cluster: LocalCluster, fail: str) -> None:
    """Stream one conversation, make the replica that owns it fail (`kill` = SIGKILL, `stop` =
    SIGSTOP), and check that the other replica owns every shard within 15 s, and that the
    conversation is complete, stored once and in order."""
    logics = {"logic-a": start_logic(cluster, "logic-a", IM_BATCH_MAX_DELAY_MS="20"),
              "logic-b": start_logic(cluster, "logic-b", IM_BATCH_MAX_DELAY_MS="20")}
    await eventually(lambda: fair(cluster, list(logics)), 30, "two replicas own 2 shards each")
    # A gateway per replica for its gRPC calls (sign-up, sync): the clients use the survivor's.
    gateways = {name: cluster.start_gateway(logic, **GATEWAY_ENV) for name, logic in logics.items()}
    signup = HttpClient(gateways["logic-a"].url)
    alice_login = await signup.signup(f"r{next(_emails)}@example.test")
    bob_login = await signup.signup(f"r{next(_emails)}@example.test")
    low, high = sorted((alice_login.user_id, bob_login.user_id))
    owner = owners(cluster)[shard_of(f"p{low}:{high}", cluster.shards)]
    assert owner in logics
    survivor = next(name for name in logics if name != owner)
    doomed = logics[owner]
    gateway = gateways[survivor]
    http = HttpClient(gateway.url)
    alice = ResendingClient(alice_login, [gateway.ws_url])
    bob = ResendingClient(bob_login, [gateway.ws_url])
    await alice.connect()
    await bob.connect()
    await asyncio.sleep(0.2)
    cids = [f"m{i}" for i in range(300)]

    async def stream() -> None:
        for cid in cids:
            await alice.send(cid, cid, to=bob.user_id)
            await alice.pump(0.01)

    streaming = asyncio.create_task(stream())
    while len(alice.acks) < 80:
        await asyncio.sleep(0.01)
    assert persisted(doomed) > 0, "the conversation's owner was storing it"
    stored_by_survivor = persisted(logics[survivor])
    failed_at = time.monotonic()
    if fail == "kill":
        doomed.kill()
    else:
        assert doomed.process is not None
        os.kill(doomed.process.pid, signal.SIGSTOP)
    try:
        moved = await eventually(lambda: set(owners(cluster)) == {survivor}, 15,
                                 f"the survivor holds every shard after {fail}")
        assert len(alice.acks) < len(cids), "failed mid-stream"
        await streaming
        await alice.settle(60)
        acked_in = time.monotonic() - failed_at
        assert persisted(logics[survivor]) > stored_by_survivor, "the survivor took the conversation over"
        if fail == "stop":
            assert doomed.process is not None
            os.kill(doomed.process.pid, signal.SIGCONT)
            # Woken up, it finds its leases gone and gives the channels up at once; then it asks
            # for its share again and gets it.
            await eventually(lambda: fair(cluster, list(logics)), 30, "the woken replica gets its share back")
            assert metric(doomed, "im_logic_lease_renewals_total", '{result="lost"}') >= 1
    finally:
        if fail == "stop" and doomed.running:
            assert doomed.process is not None
            os.kill(doomed.process.pid, signal.SIGCONT)
    await bob.settle()
    received = await check_conversation(http, alice, bob, cids)
    assert [m["cid"] for m in received] == cids, "the conversation keeps its order across the failover"
    pushed = [m["cid"] for m in bob.pushed]
    assert pushed == sorted(pushed, key=cids.index), "pushes never go backwards"
    print(f"{fail}: shards moved in {moved:.1f}s, every message acked {acked_in:.1f}s after the failure")
    for client in (alice, bob):
        await client.disconnect()


async def test_kill_9_of_a_replica_moves_its_shards_to_the_other(cluster: LocalCluster) -> None:
    await _failover(cluster, "kill")


async def test_a_hung_replica_loses_its_shards_and_gives_them_up_when_it_wakes(cluster: LocalCluster) -> None:
    """Finding 2: a SIGSTOPped replica kept its shards (nobody took them over) for as long as it hung."""
    await _failover(cluster, "stop")
