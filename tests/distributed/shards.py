"""What the distributed tests read from the outside: the shard lease table, process metrics, and
a load spread evenly over the shards, checked message by message."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable

import redis

from im.backends.bus.rabbitmq import shard_of
from im.client import HttpClient
from tests.support.cluster import LocalCluster
from tests.support.processes import ManagedProcess
from tests.support.resending_client import ResendingClient, check_conversation

_emails = itertools.count()


def owners(cluster: LocalCluster) -> list[str | None]:
    """The replica holding each shard's lease, as Redis has it."""
    client = redis.Redis.from_url(cluster.backends.redis_url)
    try:
        keys = [f"{cluster.backends.redis_prefix}lease:{s}" for s in range(cluster.shards)]
        return [value.decode().partition("|")[0] if value else None for value in client.mget(keys)]
    finally:
        client.close()


def metric(process: ManagedProcess, name: str, labels: str = "") -> float:
    url = f"http://127.0.0.1:{process.env['IM_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=3) as response:
        text = response.read().decode()
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def persisted(process: ManagedProcess) -> float:
    return metric(process, "im_messages_persisted_total")


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def fair(cluster: LocalCluster, replicas: list[str]) -> bool:
    """Every shard has one of `replicas` as owner, each within one shard of shards / replicas."""
    table = owners(cluster)
    if any(owner not in replicas for owner in table):
        return False
    counts = Counter(table)
    share = cluster.shards / len(replicas)
    return all(abs(counts[r] - share) < 1 for r in replicas)


class EvenLoad:
    """Users talking in pairs, chosen so that every shard carries the same number of conversations."""

    def __init__(self, http: HttpClient, clients: list[ResendingClient], pairs: list[tuple[int, int]]) -> None:
        self.http = http
        self.clients = clients
        self.pairs = pairs
        self.sent: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(clients))}
        """Per sender index: (cid, recipient user id)."""

    @classmethod
    async def open(cls, http: HttpClient, ws_urls: list[str], shards: int, per_shard: int,
                   users: int = 10) -> EvenLoad:
        logins = [await http.signup(f"even{next(_emails)}-{time.time_ns()}@example.test") for _ in range(users)]
        clients = [ResendingClient(login, ws_urls[i % len(ws_urls):] + ws_urls[:i % len(ws_urls)])
                   for i, login in enumerate(logins)]
        by_shard: dict[int, list[tuple[int, int]]] = {s: [] for s in range(shards)}
        for a, b in itertools.combinations(range(users), 2):
            low, high = sorted((logins[a].user_id, logins[b].user_id))
            by_shard[shard_of(f"p{low}:{high}", shards)].append((a, b))
        if min(len(p) for p in by_shard.values()) < per_shard:
            raise ValueError(f"{users} users do not give {per_shard} conversations on every shard: use more")
        pairs = [pair for found in by_shard.values() for pair in found[:per_shard]]
        for client in clients:
            await client.connect()
        await asyncio.sleep(0.3)  # the sessions are recorded
        return cls(http, clients, pairs)

    async def run(self, rounds: int, tag: str, gap: float = 0.01) -> None:
        """Each pair exchanges `rounds` messages each way, then every message is acked."""
        for r in range(rounds):
            for a, b in self.pairs:
                for sender, recipient in ((a, b), (b, a)):
                    cid = f"{tag}-{r}-{sender}-{recipient}"
                    to = self.clients[recipient].user_id
                    self.sent[sender].append((cid, to))
                    await self.clients[sender].send(cid, cid, to=to)
            for client in self.clients:
                await client.pump(gap)
        await asyncio.gather(*(client.settle(60) for client in self.clients))

    async def check(self) -> None:
        """Acked = stored once for sender and recipient, with the acked seq; every inbox gapless;
        every message reached its recipient (pushed at most once, seen after sync)."""
        for client in self.clients:
            await client.sync()
        by_user = {client.user_id: client for client in self.clients}
        for index, client in enumerate(self.clients):
            history = await self.http.history(client.login.token)
            seqs = [m["seq"] for m in history]
            assert seqs == list(range(1, len(seqs) + 1)), f"user {client.user_id}: inbox not gapless"
            mine = Counter(m["cid"] for m in history if m["from"] == client.user_id)
            for cid, to in self.sent[index]:
                acked = client.acks.get(cid)
                assert acked and len(set(acked)) == 1, f"{cid}: acks {acked}"
                assert mine[cid] == 1, f"{cid} stored {mine[cid]} times for its sender"
                recipient = by_user[to]
                copies = [m for m in recipient.messages.values() if m["cid"] == cid and m["from"] == client.user_id]
                assert len(copies) == 1, f"{cid} reached its recipient {len(copies)} times"
            pushed = Counter((m["from"], m["cid"]) for m in client.pushed)
            assert max(pushed.values(), default=1) == 1, "pushed twice"

    async def close(self) -> None:
        for client in self.clients:
            await client.disconnect()


async def exchange_in_order(http: HttpClient, alice_url: str, bob_url: str, messages: int) -> None:
    """Two users send `messages` each to the other, interleaved and without waiting for acks; both
    conversations are stored once and pushed in send order."""
    alice = ResendingClient(await http.signup(f"x{next(_emails)}-{time.time_ns()}@example.test"), [alice_url])
    bob = ResendingClient(await http.signup(f"x{next(_emails)}-{time.time_ns()}@example.test"), [bob_url])
    await alice.connect()
    await bob.connect()
    await asyncio.sleep(0.2)  # the sessions are recorded
    to_bob = [f"ab{i}" for i in range(messages)]
    to_alice = [f"ba{i}" for i in range(messages)]
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
