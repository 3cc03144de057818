"""`RedisSessions` against the real server, under a key prefix of each test's own."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from im.backends.sessions.redis import RedisSessions
from im.protocol.errors import Unavailable
from tests.support.private_servers import private_redis

from .conftest import REDIS_URL
from .proxy import Proxy


@pytest.fixture
async def sessions(redis_prefix: str) -> AsyncIterator[RedisSessions]:
    started = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=30)
    await started.start()
    yield started
    await started.close()


async def test_bind_locate_unbind(sessions: RedisSessions) -> None:
    await sessions.bind(1, "gw-a")
    await sessions.bind(1, "gw-b")
    await sessions.bind(2, "gw-a")
    assert await sessions.locate([1, 2, 3]) == {1: {"gw-a", "gw-b"}, 2: {"gw-a"}}
    await sessions.unbind(1, "gw-a")
    await sessions.unbind(2, "gw-a")
    await sessions.unbind(3, "gw-a")  # not bound: nothing happens
    assert await sessions.locate([1, 2, 3]) == {1: {"gw-b"}}
    assert await sessions.locate([]) == {}


async def test_a_burst_of_binds_larger_than_the_pool_waits_instead_of_failing(redis_prefix: str) -> None:
    small = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=30, max_connections=4)
    await small.start()
    try:
        await asyncio.gather(*(small.bind(user, "gw-a") for user in range(1, 201)))
        assert set(await small.locate(range(1, 201))) == set(range(1, 201))
    finally:
        await small.close()


async def test_locate_and_refresh_take_one_round_trip_for_many_users(
    sessions: RedisSessions, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = sessions._client
    assert client is not None
    commands: list[object] = []
    send = client.execute_command

    async def counting(*args: object, **options: object) -> object:
        commands.append(args[0])
        return await send(*args, **options)

    monkeypatch.setattr(client, "execute_command", counting)
    await sessions.refresh(range(0, 1000, 2), "gw-a")
    await sessions.refresh(range(0, 1000, 3), "gw-b")
    found = await sessions.locate(range(1000))
    assert found == {u: {g for g, step in (("gw-a", 2), ("gw-b", 3)) if u % step == 0}
                     for u in range(1000) if u % 2 == 0 or u % 3 == 0}
    assert len(commands) == 3, commands


async def test_many_users_are_split_into_script_calls_sent_together(redis_prefix: str) -> None:
    sessions = RedisSessions(REDIS_URL, key_prefix=redis_prefix, max_keys_per_script=7)
    await sessions.start()
    try:
        await sessions.refresh(range(100), "gw-a")
        await sessions.bind(1000, "gw-b")
        found = await sessions.locate([*range(0, 200, 2), 1000])
        assert found == {**{u: {"gw-a"} for u in range(0, 100, 2)}, 1000: {"gw-b"}}
        await sessions.refresh([], "gw-c")
        assert await sessions.gateway_alive("gw-c")
    finally:
        await sessions.close()


async def test_entries_expire_unless_refreshed(redis_prefix: str) -> None:
    short = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=0.3)
    await short.start()
    try:
        await short.bind(1, "gw-a")
        await short.bind(2, "gw-a")
        await short.bind(2, "gw-b")
        assert await short.gateway_alive("gw-a")
        for _ in range(4):  # gw-b keeps refreshing user 2, gw-a has died
            await asyncio.sleep(0.15)
            await short.refresh([2], "gw-b")
        assert await short.locate([1, 2]) == {2: {"gw-b"}}
        assert not await short.gateway_alive("gw-a")
        assert await short.gateway_alive("gw-b")
        await asyncio.sleep(0.4)
        assert await short.locate([1, 2]) == {}
    finally:
        await short.close()
    client = aioredis.from_url(REDIS_URL)
    try:  # nothing is left behind by users nobody refreshes
        assert [key async for key in client.scan_iter(match=redis_prefix + "u:*")] == []
    finally:
        await client.aclose()


async def test_a_short_ttl_refresh_does_not_cut_a_longer_entry(redis_prefix: str) -> None:
    long = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=30)
    short = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=0.2)
    await long.start()
    await short.start()
    try:
        await long.bind(1, "gw-long")
        await short.bind(1, "gw-short")
        await asyncio.sleep(0.4)
        assert await long.locate([1]) == {1: {"gw-long"}}
    finally:
        await long.close()
        await short.close()


async def test_an_unreachable_redis_is_unavailable() -> None:
    sessions = RedisSessions("redis://127.0.0.1:1/0", socket_timeout=0.5)
    with pytest.raises(Unavailable):
        await sessions.start()
    with pytest.raises(Unavailable):
        await sessions.locate([1])


def test_a_malformed_url_names_the_setting() -> None:
    with pytest.raises(ValueError, match="IM_REDIS_URL"):
        RedisSessions("localhost:6379")


async def test_a_server_that_goes_away_is_unavailable_until_it_comes_back(redis_prefix: str) -> None:
    proxy = await Proxy("127.0.0.1", urlsplit(REDIS_URL).port or 6379).start()
    sessions = RedisSessions(f"redis://127.0.0.1:{proxy.port}/0", key_prefix=redis_prefix, socket_timeout=1)
    try:
        await sessions.start()
        await sessions.bind(1, "gw-a")
        await proxy.cut()
        with pytest.raises(Unavailable):
            await sessions.locate([1])
        with pytest.raises(Unavailable):
            await sessions.refresh([1], "gw-a")
        proxy.restore()
        assert await sessions.locate([1]) == {1: {"gw-a"}}
    finally:
        await sessions.close()
        await proxy.close()


async def test_a_redis_that_lost_its_data_is_noticed_in_seconds_and_the_gateway_called(redis_prefix: str) -> None:
    watched = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=30, watch_seconds=0.1)
    await watched.start()
    resets = 0

    async def rebind() -> None:
        nonlocal resets
        resets += 1
        await watched.refresh([1, 2], "gw-a")

    watched.on_reset(rebind)
    try:
        await watched.bind(1, "gw-a")
        await asyncio.sleep(0.3)
        assert resets == 0, "nothing happens while Redis keeps our data"
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=redis_prefix + "*")]
        await client.delete(*keys)  # as if Redis restarted empty
        await client.aclose()
        for _ in range(50):
            if resets:
                break
            await asyncio.sleep(0.05)
        assert resets == 1
        assert await watched.locate([1, 2]) == {1: {"gw-a"}, 2: {"gw-a"}}, "re-registered"
    finally:
        await watched.close()


async def test_while_redis_does_not_answer_locate_fails_at_once_and_recovers(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        watched = RedisSessions(server.url, ttl_seconds=30, socket_timeout=0.5, watch_seconds=0.1)
        await watched.start()
        back = asyncio.Event()

        async def on_reset() -> None:
            back.set()

        watched.on_reset(on_reset)
        assert server.process is not None
        try:
            await watched.bind(1, "gw-a")
            os.kill(server.process.pid, signal.SIGSTOP)  # stalled: connections open, nothing answers
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while True:  # once the watchdog's check timed out (0.5 s), look-ups fail at once
                started = loop.time()
                with pytest.raises(Unavailable):
                    await watched.locate([1])
                if loop.time() - started < 0.1:
                    break
                assert loop.time() < deadline, "look-ups keep waiting out their timeout"
            os.kill(server.process.pid, signal.SIGCONT)
            await asyncio.wait_for(back.wait(), 5)
            assert await watched.locate([1]) == {1: {"gw-a"}}
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
            await watched.close()


async def heard_within(heard: list[list[int]], seconds: float) -> list[list[int]]:
    for _ in range(int(seconds / 0.02)):
        if heard:
            break
        await asyncio.sleep(0.02)
    return heard


async def test_announcements_reach_every_process_of_the_prefix_only(redis_prefix: str) -> None:
    one = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=30)
    two = RedisSessions(REDIS_URL, key_prefix=redis_prefix, ttl_seconds=30)
    other = RedisSessions(REDIS_URL, key_prefix=redis_prefix + "other:", ttl_seconds=30)
    heard: dict[str, list[list[int]]] = {"one": [], "two": [], "other": []}
    for name, sessions in (("one", one), ("two", two), ("other", other)):
        await sessions.start()
        sessions.on_announce(heard[name].append)
    try:
        await asyncio.sleep(0.3)  # subscribed
        await one.announce([5, 7, 5])
        assert await heard_within(heard["two"], 3) == [[5, 7]]
        assert await heard_within(heard["one"], 3) == [[5, 7]], "its own announcements too"
        await asyncio.sleep(0.2)
        assert heard["other"] == []
    finally:
        for sessions in (one, two, other):
            await sessions.close()


async def test_announcements_are_heard_again_after_redis_restarts_empty(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        speaker = RedisSessions(server.url, ttl_seconds=30, watch_seconds=0.1)
        listener = RedisSessions(server.url, ttl_seconds=30, watch_seconds=0.1)
        heard: list[list[int]] = []
        for sessions in (speaker, listener):
            await sessions.start()
        listener.on_announce(heard.append)
        try:
            await asyncio.to_thread(server.kill)
            await asyncio.to_thread(server.start)
            for _ in range(100):  # the listener subscribes again within a moment
                await speaker.announce([3])
                if await heard_within(heard, 0.1):
                    break
            assert heard and heard[0] == [3]
        finally:
            for sessions in (speaker, listener):
                await sessions.close()
