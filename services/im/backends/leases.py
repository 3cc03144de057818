"""Shard leases in Redis: which logic replica consumes which uplink queue (docs/architecture.md, "Shards").

Keys, all under `key_prefix`:
- `lease:<shard>` = `"<replica id>|<lead shard>"` with a TTL: the replica that consumes that shard's
  queue, and its *lead* queue, where gateways send the uplinks of every shard it owns
  (`im.backends.bus.routes`);
- `replicas`: a sorted set of the live replicas, scored with when each registration expires (Redis
  server time, ms);
- `fence:<replica id>`: that replica's store sessions (MySQL connection ids), rewritten every round.

Every `renew_seconds` each replica runs one script (one round trip) that registers it, renews the
leases of the shards whose consumer is making progress, takes free shards up to its fair share
(`shards / replicas`, the first `shards % replicas` replicas in id order one more), gives back what
it holds beyond it (after its consumer drained), and returns the table. A shard whose lease went to
another replica is stopped at once, before its consumer takes another delivery. A replica that stops
renewing (it hangs, or its consumer stalls) loses its leases after `ttl_seconds`; one whose RabbitMQ
connection is gone (its presence queue vanished, see `ShardConsumers.replica_present`) has them taken
over on the next round. Single-active-consumer on every queue still guarantees one consumer at a
time: leases only decide who subscribes, so a replica that cannot reach Redis keeps consuming what
it has (nobody can take it over meanwhile), and a lease moving never lets two consumers interleave.

A replica that hangs may hang inside a transaction, holding the row locks of the users in its batch:
every other replica's batches for those users would wait for it. So the replica that notices a
replica gone (its registration lapsed, or its RabbitMQ connection vanished) first ends that
replica's store sessions (`Fencing.kill_sessions`): its transaction rolls back, the locks are free,
and its messages, never acknowledged, come again from the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from im import metrics
from im.protocol.errors import Unavailable

__all__ = ["Fencing", "ShardConsumers", "ShardLeases", "ShardRoutes", "new_replica_id"]

log = logging.getLogger(__name__)

_FAILURES = (RedisError, OSError, asyncio.TimeoutError)

# KEYS: the replicas set, this replica's fence key, then one lease key per shard.
# ARGV: replica id, ttl ms, lead shard, dead replicas (space separated), this replica's store sessions
# (comma separated), then one action per shard:
#   "k" keep (renew; take it back if it lapsed), "a" acquire if free, "r" release if mine,
#   "s<replica>" steal from that (gone) replica, "f<replica>" free it from that replica, "" nothing.
# Returns: the lease values per shard (false if none), then the live replica ids.
_ROUND = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local me, ttl, lead = ARGV[1], tonumber(ARGV[2]), ARGV[3]
for dead in string.gmatch(ARGV[4], '%S+') do redis.call('ZREM', KEYS[1], dead) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, me)
if ARGV[5] ~= '' then redis.call('SET', KEYS[2], ARGV[5], 'PX', 4 * ttl) end
local mine = me .. '|' .. lead
local values = {}
for i = 3, #KEYS do
  local key, action = KEYS[i], ARGV[i + 3]
  local value = redis.call('GET', key)
  local owner = value and string.match(value, '^[^|]*')
  if action == 'k' then
    if owner == me or not value then redis.call('SET', key, mine, 'PX', ttl) end
  elseif action == 'a' then
    if not value then redis.call('SET', key, mine, 'PX', ttl) end
  elseif action == 'r' then
    if owner == me then redis.call('DEL', key) end
  elseif string.sub(action, 1, 1) == 's' then
    if owner == string.sub(action, 2) then redis.call('SET', key, mine, 'PX', ttl) end
  elseif string.sub(action, 1, 1) == 'f' then
    if owner == string.sub(action, 2) then redis.call('DEL', key) end
  end
  values[#values + 1] = redis.call('GET', key) or false
end
values[#values + 1] = redis.call('ZRANGE', KEYS[1], 0, -1)
return values
"""


def new_replica_id() -> str:
    """Unique per process: the host name (the pod's, on Kubernetes) and a random part."""
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname()) or "logic"
    return f"{host}-{secrets.token_hex(3)}"


def _owner_and_lead(value: bytes | str | None) -> tuple[str | None, int | None]:
    if not value:
        return None, None
    text = value.decode() if isinstance(value, bytes) else value
    owner, _, lead = text.partition("|")
    return owner, int(lead) if lead.isdigit() else None


class ShardConsumers(Protocol):
    """What the leases drive: the bus's shard consumers (implemented by `RabbitMqBus`)."""

    async def start_shard(self, shard: int) -> None:
        """Subscribe to the shard's queue (returns at once; consuming goes on in the background)."""

    async def stop_shard(self, shard: int, *, drain: bool) -> None:
        """`drain`: finish and acknowledge what is in flight, then unsubscribe (the lease is given
        back afterwards). Otherwise drop the channel at once, so the broker requeues everything
        unacknowledged for the lease's new holder, in order."""

    def shard_progressing(self, shard: int) -> bool:
        """False while a delivery has waited longer than the stall limit for its handler."""

    async def replica_present(self, replica: str) -> bool | None:
        """Whether that replica's RabbitMQ connection is alive; None when this one cannot tell."""


class Fencing(Protocol):
    """What a replica's store offers so that others can cut a hung replica off (`MySqlStore`)."""

    def session_ids(self) -> list[int]: ...

    async def kill_sessions(self, ids: list[int]) -> None: ...


class _Redis:
    """A small client of our own (leases must not queue behind the session traffic)."""

    def __init__(self, url: str, key_prefix: str, shards: int, socket_timeout: float, setting: str) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{setting}: expected redis://[:password@]host:port/db")
        if shards < 1:
            raise ValueError(f"shards must be >= 1, got {shards}")
        self.url = url
        self.shards = shards
        self.socket_timeout = socket_timeout
        self.replicas_key = f"{key_prefix}replicas"
        self.lease_keys = [f"{key_prefix}lease:{s}" for s in range(shards)]
        self.fence_prefix = f"{key_prefix}fence:"
        self.client: aioredis.Redis | None = None

    @property
    def where(self) -> str:
        return "redis://" + self.url.split("@")[-1].split("://")[-1]

    def open(self) -> aioredis.Redis:
        if self.client is None:
            self.client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.socket_timeout, socket_connect_timeout=self.socket_timeout,
                max_connections=4)
        return self.client

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()


class ShardLeases:
    """Logic side: hold a fair share of the shard leases and keep the bus consuming exactly those."""

    def __init__(
        self, url: str, *, shards: int, key_prefix: str = "im:", replica_id: str | None = None,
        ttl_seconds: float = 8.0, renew_seconds: float = 1.0, socket_timeout: float = 2.0,
        fencing: Fencing | None = None, setting: str = "IM_REDIS_URL",
    ) -> None:
        """
        :param url: `redis://[:password@]host:port/db`.
        :param shards: uplink shards, the same in every process.
        :param key_prefix: the same as the sessions', so one Redis can serve several clusters.
        :param replica_id: this replica's id (default: `new_replica_id()`).
        :param ttl_seconds: a lease not renewed for this long lapses; it bounds how long a hung
            replica keeps its shards.
        :param renew_seconds: seconds between rounds; well under `ttl_seconds`.
        :param socket_timeout: seconds one round may take before it counts as failed.
        :param fencing: this replica's store, to publish its sessions and end those of a gone replica.
        :param setting: the configuration name errors about `url` mention.
        """
        if not 0 < renew_seconds < ttl_seconds:
            raise ValueError("renew_seconds must be > 0 and < ttl_seconds")
        self._redis = _Redis(url, key_prefix, shards, socket_timeout, setting)
        self.shards = shards
        self.replica_id = replica_id or new_replica_id()
        self._ttl = ttl_seconds
        self._renew = renew_seconds
        self._consumers: ShardConsumers | None = None
        self._owners: list[str | None] = [None] * shards
        self._live: list[str] = []
        self._consuming: set[int] = set()
        self._draining: dict[int, asyncio.Task[None]] = {}
        self._drained: set[int] = set()
        self._lead: int | None = None
        self._written_lead: int | None = None
        self._absent: dict[str, int] = {}
        self._confirmed_at = float("-inf")
        self._redis_failing = False
        self._round_done = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warned = False
        self._fencing = fencing
        self._fenced: set[str] = set()
        self._free_rounds: dict[int, int] = {}
        """Per shard without a lease: the rounds in a row it was seen so."""
        self._given_back: dict[int, float] = {}
        """Shards this replica released for another's fair share, and when (monotonic seconds)."""

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._consuming)

    @property
    def lead(self) -> int | None:
        return self._lead

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self, consumers: ShardConsumers) -> None:
        """Take a fair share now (two rounds: see the table, then claim) and keep it in the background."""
        self._consumers = consumers
        self._redis.open()
        for _ in range(2):
            with contextlib.suppress(Unavailable):  # logged; the background rounds go on trying
                await self._round()
        self._task = asyncio.create_task(self._run(), name="shard-leases")

    async def close(self) -> None:
        """Stop renewing and give every lease back; the bus has stopped its consumers before."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in self._draining.values():
            task.cancel()
        client = self._redis.client
        if client is not None:
            with contextlib.suppress(*_FAILURES):
                await self._script(client, ["r" if owner == self.replica_id else "" for owner in self._owners])
                await client.zrem(self._redis.replicas_key, self.replica_id)
        self._consuming.clear()
        metrics.SHARDS_OWNED.set(0)
        await self._redis.close()

    # -- the consumer's side ------------------------------------------------------------------------

    def holds(self, shard: int) -> bool:
        """Whether this replica may hand the shard's next delivery to its handler, without waiting.

        False once the last successful round is older than the TTL (the process was paused, say):
        by then another replica may hold the lease, so the caller asks `confirm` first.
        """
        if shard not in self._consuming:
            return False
        return self._redis_failing or time.monotonic() - self._confirmed_at < self._ttl - self._renew

    async def confirm(self, shard: int) -> bool:
        """Run a round now and say whether the shard is still ours (True while Redis cannot answer)."""
        self._round_done.clear()
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._round_done.wait(), self._redis.socket_timeout + self._renew)
        return self.holds(shard)

    # -- rounds -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._renew)
            self._wake.clear()
            try:
                await self._round()
            except Unavailable:
                pass  # logged once per outage; a replica that cannot reach Redis keeps what it consumes
            except Exception:
                log.exception("shard lease round failed")

    async def _round(self) -> None:
        client = self._redis.open()
        try:
            await self._presence()
            actions = self._plan()
            values = await self._script(client, actions)
        except _FAILURES as e:
            self._redis_failing = True
            metrics.LEASE_ROUNDS.labels("failed").inc()
            self._round_done.set()
            if not self._warned:
                self._warned = True
                log.warning("shard leases: Redis at %s unavailable (%r); consuming shards %s until it answers",
                            self._redis.where, e, sorted(self._consuming) or "none")
            raise Unavailable(f"Redis at {self._redis.where} unavailable: {e}") from e
        if self._warned:
            self._warned = False
            log.info("shard leases: Redis at %s answers again", self._redis.where)
        await self._apply(actions, values)
        self._redis_failing = False
        self._confirmed_at = time.monotonic()
        self._round_done.set()

    async def _script(self, client: aioredis.Redis, actions: list[str]) -> list[Any]:
        dead = " ".join(r for r, n in self._absent.items() if n >= 2)
        lead = self._lead if self._lead is not None else self._first_wanted(actions)
        self._written_lead = lead
        keys = [self._redis.replicas_key, self._redis.fence_prefix + self.replica_id, *self._redis.lease_keys]
        sessions = ",".join(map(str, self._fencing.session_ids())) if self._fencing is not None else ""
        args = [self.replica_id, int(self._ttl * 1000), "" if lead is None else lead, dead, sessions, *actions]
        return list(await asyncio.wait_for(
            client.eval(_ROUND, len(keys), *keys, *args),
            self._redis.socket_timeout))

    @staticmethod
    def _first_wanted(actions: list[str]) -> int | None:
        return next((s for s, a in enumerate(actions) if a == "a" or a.startswith("s")), None)

    def _fair_share(self, live: list[str]) -> int:
        base, extra = divmod(self.shards, len(live))
        return base + (1 if live.index(self.replica_id) < extra else 0)

    def _plan(self) -> list[str]:
        """The actions of this round, from the table the last round returned."""
        assert self._consumers is not None
        me = self.replica_id
        dead = {r for r, n in self._absent.items() if n >= 2}
        live = sorted((set(self._live) - dead) | {me})
        target = self._fair_share(live)
        actions = [""] * self.shards
        keep: list[int] = []
        for shard in sorted(self._consuming):
            if shard in self._drained:
                actions[shard] = "r"
            elif self._consumers.shard_progressing(shard):
                actions[shard] = "k"  # draining ones too: nobody may subscribe before they are done
                if shard not in self._draining:
                    keep.append(shard)
        excess = len(keep) - target
        if excess > 0:
            # Give back the shards gateways route least to: never the lead while others remain.
            for shard in sorted(keep, key=lambda s: (s == self._lead, -s))[:excess]:
                self._draining[shard] = asyncio.create_task(self._drain(shard), name=f"drain-shard-{shard}")
        free = [s for s, owner in enumerate(self._owners)
                if s not in self._consuming and (owner is None or owner in dead)]
        # Start at a different place per replica, so replicas joining together rarely collide.
        offset = live.index(me) * self.shards // len(live)
        free.sort(key=lambda s: (s - offset) % self.shards)
        wanted = free[:max(0, -excess)]
        for shard in free[len(wanted):]:
            owner = self._owners[shard]
            if owner is not None:
                actions[shard] = f"f{owner}"  # a gone replica's extra shards: free for the others
            elif self._free_rounds.get(shard, 0) >= 2 and not self._gave_back_lately(shard):
                wanted.append(shard)  # lapsed (its consumer stalled) and nobody short of shards took it
        for shard in wanted:
            owner = self._owners[shard]
            actions[shard] = "a" if owner is None else f"s{owner}"
        return actions

    async def _apply(self, actions: list[str], values: list[Any]) -> None:
        assert self._consumers is not None
        me = self.replica_id
        live = [r.decode() for r in values[-1]]
        owners: list[str | None] = []
        for value in values[:-1]:
            owners.append(_owner_and_lead(value)[0])
        gone = ({owner for owner in self._owners if owner is not None and owner != me} - set(live)) | {
            replica for replica, rounds in self._absent.items() if rounds >= 2}
        self._fenced &= gone  # one that came back and goes again is fenced again
        await self._fence(gone)
        # A lease that lapsed while ours is not lost (nobody took it): it is taken back when we progress.
        lost = [s for s in self._consuming if owners[s] not in (me, None) and s not in self._drained]
        for shard in lost:
            # Before anything else: the lease's new holder may be waiting for our channel to close.
            self._consuming.discard(shard)
            await self._consumers.stop_shard(shard, drain=False)
            task = self._draining.pop(shard, None)
            if task is not None:
                task.cancel()
        if lost:
            metrics.LEASE_ROUNDS.labels("lost").inc(len(lost))
            log.warning("shard leases: lost shards %s to other replicas; stopped consuming them", sorted(lost))
        released = [s for s in self._drained if owners[s] != me]
        for shard in released:
            self._drained.discard(shard)
            self._consuming.discard(shard)
            self._given_back[shard] = time.monotonic()
        acquired = [s for s, owner in enumerate(owners) if owner == me and s not in self._consuming]
        for shard in acquired:
            self._consuming.add(shard)
            await self._consumers.start_shard(shard)
        renewed = sum(1 for s, a in enumerate(actions) if a == "k" and owners[s] == me)
        metrics.LEASE_ROUNDS.labels("renewed").inc(renewed)
        if acquired:
            metrics.LEASE_ROUNDS.labels("acquired").inc(len(acquired))
        if released:
            metrics.LEASE_ROUNDS.labels("released").inc(len(released))
        if acquired or released or lost:
            log.info("shard leases: %s consumes shards %s (%d live replicas)", me, sorted(self._consuming), len(live))
        if self._lead not in self._consuming:
            # Keep the lead written into the leases when we have it, so gateways need not move again.
            keep = self._consuming - set(self._draining)
            self._lead = self._written_lead if self._written_lead in keep else min(keep, default=None)
        self._owners = owners
        self._live = live
        self._free_rounds = {s: self._free_rounds.get(s, 0) + 1 for s, owner in enumerate(owners) if owner is None}
        for replica in list(self._absent):
            if replica not in live:
                del self._absent[replica]
        metrics.SHARDS_OWNED.set(len(self._consuming))

    def _gave_back_lately(self, shard: int) -> bool:
        """A shard released for a replica short of shards is left to it for a TTL, however slow its
        rounds are (were it taken back, it would be drained and released again)."""
        given_back = self._given_back.get(shard)
        if given_back is None:
            return False
        if time.monotonic() - given_back < self._ttl:
            return True
        del self._given_back[shard]
        return False

    async def _fence(self, gone: set[str]) -> None:
        """End the store sessions of replicas that stopped renewing or lost RabbitMQ, once each."""
        client = self._redis.client
        for replica in gone - self._fenced:
            self._fenced.add(replica)
            if self._fencing is None or client is None:
                continue
            key = self._redis.fence_prefix + replica
            try:
                value = await asyncio.wait_for(client.get(key), self._redis.socket_timeout)
                text = value.decode() if isinstance(value, bytes) else value or ""
                ids = [int(i) for i in text.split(",") if i.isdigit()]
                if ids:
                    await self._fencing.kill_sessions(ids)
                    log.warning("shard leases: replica %s is gone; ended its %d store sessions so its open "
                                "transaction cannot hold locks", replica, len(ids))
                await client.delete(key)
            except Exception as e:  # noqa: BLE001 - its sessions end when it does, or at its lock wait
                log.warning("shard leases: could not end the store sessions of gone replica %s: %r", replica, e)

    async def _drain(self, shard: int) -> None:
        assert self._consumers is not None
        try:
            await self._consumers.stop_shard(shard, drain=True)
        finally:
            self._draining.pop(shard, None)
        self._drained.add(shard)
        self._wake.set()

    async def _presence(self) -> None:
        """Count, per replica that owns shards, the rounds in a row its RabbitMQ connection was gone."""
        assert self._consumers is not None
        others = {owner for owner in self._owners if owner is not None and owner != self.replica_id}
        for replica in others:
            present = await self._consumers.replica_present(replica)
            if present is False:
                self._absent[replica] = self._absent.get(replica, 0) + 1
                if self._absent[replica] == 2:
                    log.warning("shard leases: replica %s lost its RabbitMQ connection; taking its shards over",
                                replica)
            elif present:
                self._absent.pop(replica, None)


class ShardRoutes:
    """Gateway side: reads the lease table every `refresh_seconds` and answers `wanted` for the bus.

    A gateway that cannot read it keeps the routes it has: routing only decides how uplinks are
    grouped, never whether they arrive.
    """

    def __init__(
        self, url: str, *, shards: int, key_prefix: str = "im:", refresh_seconds: float = 1.0,
        socket_timeout: float = 2.0, setting: str = "IM_REDIS_URL",
    ) -> None:
        self._redis = _Redis(url, key_prefix, shards, socket_timeout, setting)
        self._refresh = refresh_seconds
        self._leads: list[int | None] = [None] * shards
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    def wanted(self, shard: int) -> int | None:
        return self._leads[shard]

    async def start(self) -> None:
        self._redis.open()
        await self._read()
        self._task = asyncio.create_task(self._run(), name="shard-routes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            await self._read()

    async def _read(self) -> None:
        client = self._redis.open()
        try:
            values = await asyncio.wait_for(client.mget(self._redis.lease_keys), self._redis.socket_timeout)
        except _FAILURES as e:
            if not self._warned:
                self._warned = True
                log.warning("shard routes: Redis at %s unavailable (%r); keeping the routes known",
                            self._redis.where, e)
            return
        self._warned = False
        for shard, value in enumerate(values):
            lead = _owner_and_lead(value)[1]
            if lead is not None and 0 <= lead < self._redis.shards:
                self._leads[shard] = lead  # a lapsed lease keeps its last route until someone takes it
