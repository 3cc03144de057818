"""`Sessions` on Redis through `redis.asyncio`.

Keys (all under `key_prefix`):
- `u:<user id>`: a hash, field = gateway id, value = when that entry expires (Redis server time, unix
  ms). A gateway binds a user when the user connects and keeps refreshing the entries of everyone
  connected to it; a gateway that dies stops refreshing and its entries lapse after `ttl_seconds`.
  The key itself expires with its longest-lived entry, so a user nobody refreshes leaves nothing behind.
- `gw:<gateway id>`: a gateway's liveness key, rewritten with the same TTL on every `refresh`.
- `marker:<random>`: one per process, set when it starts and checked every `watch_seconds`.
- `presence` (a pub/sub channel, not a key): announcements that users may have come online or gone
  offline, a JSON array of user ids per message; every process listens, re-subscribing after
  Redis comes back (what was announced meanwhile is lost: gateways re-check what they watch).

Every operation is one round trip: a Lua script does the expiry arithmetic on the server's clock (so
gateways with skewed clocks agree) and `locate` drops lapsed entries while it reads.

Losing Redis is noticed in seconds, not at the next refresh: a watchdog checks the marker every
`watch_seconds`. When Redis stops answering, `locate` fails at once instead of waiting out its
timeout on every call (logic then leaves delivery to the clients' sync); when it answers again, or
when the marker is gone (Redis restarted empty or was flushed), the callbacks given to `on_reset` run
at once, so a gateway re-registers all its sessions and pushes resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from im.protocol.errors import Unavailable

__all__ = ["RedisSessions"]

log = logging.getLogger(__name__)

# KEYS: user keys..., then the gateway's liveness key; ARGV: gateway id, ttl ms.
_REFRESH = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
local expires = now + ttl
local users = #KEYS - 1
for i = 1, users do
  redis.call('HSET', KEYS[i], ARGV[1], expires)
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
redis.call('SET', KEYS[#KEYS], expires, 'PX', ttl)
return users
"""

# KEYS: user keys; returns, per key, the list of live gateway ids.
_LOCATE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local found = {}
for i = 1, #KEYS do
  local entries = redis.call('HGETALL', KEYS[i])
  local live = {}
  for j = 1, #entries, 2 do
    if tonumber(entries[j + 1]) > now then
      live[#live + 1] = entries[j]
    else
      redis.call('HDEL', KEYS[i], entries[j])
    end
  end
  found[i] = live
end
return found
"""

def _parts(items: list[int], size: int) -> list[list[int]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class RedisSessions:
    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "im:",
        ttl_seconds: float = 60.0,
        socket_timeout: float = 2.0,
        max_connections: int = 32,
        max_keys_per_script: int = 1000,
        watch_seconds: float = 1.0,
        setting: str = "IM_REDIS_URL",
    ) -> None:
        """
        :param url: `redis://[:password@]host:port/db` (or `rediss://`, `unix://`).
        :param key_prefix: put before every key, so several clusters can share one Redis.
        :param ttl_seconds: how long an entry lives after its last bind / refresh; the gateway should
            refresh well within it (a third of it is a good period).
        :param socket_timeout: seconds a connect or a command may take before `Unavailable`.
        :param max_connections: size of the connection pool.
        :param max_keys_per_script: users one script call handles; more are split into several calls
            sent together (still one round trip), so one call never holds Redis for long.
        :param watch_seconds: how often the watchdog checks that Redis answers and still has our data.
        :param setting: the configuration name errors about `url` mention.
        """
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{setting}: expected redis://[:password@]host:port/db")
        try:
            aioredis.ConnectionPool.from_url(url)  # parses only: nothing connects before start()
        except ValueError as e:
            raise ValueError(f"{setting}: {e}") from None
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be > 0")
        self._url = url
        self._prefix = key_prefix
        self._ttl_ms = int(ttl_seconds * 1000)
        self._socket_timeout = socket_timeout
        self._max_connections = max_connections
        self._script_keys = max(1, max_keys_per_script)
        self._watch_seconds = watch_seconds
        self._marker = f"{key_prefix}marker:{secrets.token_hex(8)}"
        self._client: aioredis.Redis | None = None
        self._refresh: Any = None
        self._locate: Any = None
        self._watchdog: asyncio.Task[None] | None = None
        self._resets: list[Callable[[], Awaitable[None]]] = []
        self._announced: list[Callable[[list[int]], None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._channel = f"{key_prefix}presence"
        self._down = False
        self.resets = 0
        """How often Redis came back or lost our data since start (for tests and logs)."""

    @property
    def where(self) -> str:
        return "redis://" + self._url.split("@")[-1].split("://")[-1]

    def _user_key(self, user_id: int) -> str:
        return f"{self._prefix}u:{user_id}"

    def _gateway_key(self, gateway: str) -> str:
        return f"{self._prefix}gw:{gateway}"

    def _unavailable(self, error: BaseException) -> Unavailable:
        return Unavailable(f"Redis at {self.where} unavailable: {error}")

    def _require(self) -> aioredis.Redis:
        if self._client is None:
            raise Unavailable(f"Redis at {self.where}: sessions are not started")
        return self._client

    async def start(self) -> None:
        if self._client is not None:
            return
        # A blocking pool makes a burst of calls wait for a free connection instead of failing with
        # "Too many connections" (a burst of logins once lost their session entries that way).
        # A pooled connection that Redis closed (it restarted) fails its next command: every command
        # here is safe to repeat, so it is tried once more on a fresh connection before it counts
        # as failed (an unbind lost that way left a user online until the TTL).
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url, socket_timeout=self._socket_timeout, socket_connect_timeout=self._socket_timeout,
            max_connections=self._max_connections, timeout=self._socket_timeout, health_check_interval=30,
            retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
        client = aioredis.Redis.from_pool(pool)
        self._client = client
        self._refresh = client.register_script(_REFRESH)
        self._locate = client.register_script(_LOCATE)
        try:
            await self.ping()
            await self._mark(client)
        except Unavailable:
            await self.close()
            raise
        self._watchdog = asyncio.create_task(self._watch(), name="redis-sessions-watchdog")
        self._listener = asyncio.create_task(self._listen(), name="redis-presence-listener")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_UNAVAILABLE):
                await asyncio.wait_for(client.delete(self._marker), self._socket_timeout)
            await client.aclose()

    def on_reset(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call `callback` whenever Redis may have lost entries: it answers again after not answering,
        or the marker this process set is gone. A gateway re-registers its sessions there."""
        self._resets.append(callback)

    async def _mark(self, client: aioredis.Redis) -> bool:
        """Set this process's marker if missing; True if it was missing. It outlives a dead process
        only by ten times the session TTL."""
        try:
            created = await client.set(self._marker, 1, nx=True, px=10 * self._ttl_ms)
            if not created:
                await client.pexpire(self._marker, 10 * self._ttl_ms)
        except _UNAVAILABLE as e:
            raise self._unavailable(e) from e
        return bool(created)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._watch_seconds)
            client = self._client
            if client is None:
                return
            try:
                lost = await asyncio.wait_for(self._mark(client), self._socket_timeout)
            except Exception as e:  # noqa: BLE001 - whatever it is, Redis does not answer as it should
                if not self._down:
                    self._down = True
                    log.warning("Redis at %s does not answer (%s); session look-ups fail fast until it does",
                                self.where, e)
                continue
            came_back, self._down = self._down, False
            if came_back or lost:
                self.resets += 1
                log.log(logging.WARNING if lost else logging.INFO, "Redis at %s %s; re-registering sessions",
                        self.where, "lost its data" if lost else "answers again")
                for callback in self._resets:
                    try:
                        await callback()
                    except Exception:  # noqa: BLE001 - the next reset or the periodic refresh retries
                        log.exception("re-registering sessions after a Redis reset failed")

    async def ping(self) -> None:
        client = self._require()
        try:
            await client.ping()
        except _UNAVAILABLE as e:
            raise self._unavailable(e) from e

    async def bind(self, user_id: int, gateway: str) -> None:
        await self.refresh([user_id], gateway)

    async def unbind(self, user_id: int, gateway: str) -> None:
        """Forget `gateway` for the user (call it when the user's last connection there closes)."""
        client = self._require()
        try:
            await client.hdel(self._user_key(user_id), gateway)
        except _UNAVAILABLE as e:
            raise self._unavailable(e) from e

    async def refresh(self, user_ids: Iterable[int], gateway: str) -> None:
        """Bind-or-extend the entries of `user_ids` on `gateway`, and the gateway's liveness key."""
        users = list(dict.fromkeys(user_ids))
        gateway_key = self._gateway_key(gateway)
        calls = [([*(self._user_key(u) for u in part), gateway_key], [gateway, self._ttl_ms])
                 for part in _parts(users, self._script_keys)] or [([gateway_key], [gateway, self._ttl_ms])]
        await self._run(self._refresh, calls)

    async def locate(self, user_ids: Iterable[int]) -> dict[int, set[str]]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        if self._down:
            raise Unavailable(f"Redis at {self.where} does not answer")
        found = await self._run(self._locate, [([self._user_key(u) for u in part], [])
                                               for part in _parts(users, self._script_keys)])
        gateways_of = [gateways for part in found for gateways in part]
        return {user: {g.decode() for g in gateways} for user, gateways in zip(users, gateways_of, strict=True)
                if gateways}

    async def _run(self, script: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run `script` once per call, all in one round trip."""
        client = self._require()
        try:
            if len(calls) == 1:
                keys, args = calls[0]
                return [await script(keys=keys, args=args)]
            pipe = client.pipeline(transaction=False)
            for keys, args in calls:
                await script(keys=keys, args=args, client=pipe)
            return list(await pipe.execute())
        except _UNAVAILABLE as e:
            raise self._unavailable(e) from e

    async def announce(self, user_ids: Iterable[int]) -> None:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return
        client = self._require()
        try:
            await client.publish(self._channel, orjson.dumps(users))
        except _UNAVAILABLE as e:
            raise self._unavailable(e) from e

    def on_announce(self, callback: Callable[[list[int]], None]) -> None:
        self._announced.append(callback)

    async def _listen(self) -> None:
        """Hear every announcement; after a lost connection, subscribe again (a second later)."""
        while True:
            client = self._client
            if client is None:
                return
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    self._heard(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - Redis went away: listen again once it is back
                log.debug("presence channel lost: %r", e)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self._watch_seconds)

    def _heard(self, data: Any) -> None:
        try:
            users = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            return
        if isinstance(users, list):
            ids = [u for u in users if type(u) is int]
            for callback in self._announced:
                callback(ids)

    async def gateway_alive(self, gateway: str) -> bool:
        """Whether `gateway` refreshed within the TTL."""
        client = self._require()
        try:
            return bool(await client.exists(self._gateway_key(gateway)))
        except _UNAVAILABLE as e:
            raise self._unavailable(e) from e

