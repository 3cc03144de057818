"""Presence across two gateways over the real Redis, RabbitMQ and MySQL: the same checks as on
`im serve`; a gateway killed with -9 (its users go offline once their sessions lapse); Redis
restarted empty (a private instance: presence is right again within 5 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from im.client import ChatConnection, HttpClient
from tests.distributed.test_failures import cluster_on
from tests.support.cluster import LocalCluster
from tests.support.inbox_events import signup
from tests.support.presence_checks import check_presence, next_presence, presence_of
from tests.support.private_servers import private_redis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TTL = 3.0


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


async def test_presence_snapshot_and_changes_cross_gateways(cluster: LocalCluster) -> None:
    cluster.start_logic()
    one, two = cluster.start_gateway(), cluster.start_gateway()
    await check_presence(HttpClient(one.url), HttpClient(two.url))


async def test_the_users_of_a_gateway_killed_9_go_offline_once_their_sessions_lapse(cluster: LocalCluster) -> None:
    cluster.start_logic()
    env = {"IM_SESSION_TTL_SECONDS": str(TTL)}
    one, two = cluster.start_gateway(**env), cluster.start_gateway(**env)
    here, there = HttpClient(one.url), HttpClient(two.url)
    alice, bob = await signup(here, "alice"), await signup(there, "bob")
    a = await ChatConnection.open(here.ws_url, alice.token)
    b = await ChatConnection.open(there.ws_url, bob.token)
    await asyncio.sleep(0.5)
    await a.send_frame({"type": "presence", "watch": [bob.user_id]})
    assert (await a.expect("presence"))["users"][0]["online"] is True

    killed = time.monotonic()
    await asyncio.to_thread(two.kill)
    went = await next_presence(a, timeout=TTL + TTL / 3 + 3)
    took = time.monotonic() - killed
    print(f"offline {took:.1f}s after the kill (session TTL {TTL}s)")
    assert went[bob.user_id]["online"] is False and went[bob.user_id]["last_seen"] is not None
    assert took <= TTL + TTL / 3 + 1.5
    assert (await presence_of(here, alice, [bob.user_id]))[bob.user_id]["online"] is False
    del b
    await a.close()


async def test_presence_is_right_again_within_5_s_of_redis_restarting_empty(tmp_path: Path, stack: ExitStack) -> None:
    redis_server = stack.enter_context(private_redis(tmp_path))
    cluster = cluster_on(stack, tmp_path, redis=redis_server.url)
    cluster.start_logic()
    one, two = cluster.start_gateway(), cluster.start_gateway()  # default TTL: a re-check every 20 s
    here, there = HttpClient(one.url), HttpClient(two.url)
    alice, bob, carol = await signup(here, "alice"), await signup(there, "bob"), await signup(there, "carol")
    a = await ChatConnection.open(here.ws_url, alice.token)
    b = await ChatConnection.open(there.ws_url, bob.token)
    await asyncio.sleep(0.5)
    await a.send_frame({"type": "presence", "watch": [bob.user_id, carol.user_id]})
    assert [u["online"] for u in (await a.expect("presence"))["users"]] == [True, False]

    await asyncio.to_thread(redis_server.kill)
    await asyncio.to_thread(redis_server.start)  # empty: no persistence
    back = time.monotonic()
    assert (await presence_of(here, alice, [bob.user_id]))[bob.user_id]["online"] in (True, False)
    deadline = back + 5
    while (await presence_of(here, alice, [bob.user_id]))[bob.user_id]["online"] is not True:
        assert time.monotonic() < deadline, "bob shown offline more than 5 s after Redis came back"
        await asyncio.sleep(0.2)
    # Changes flow again: carol comes online, bob leaves.
    c = await ChatConnection.open(there.ws_url, carol.token)
    await b.close()
    changed = time.monotonic()
    seen: dict[int, bool] = {}
    while seen != {bob.user_id: False, carol.user_id: True}:
        for user, presence in (await next_presence(a, timeout=max(0.1, changed + 5 - time.monotonic()))).items():
            seen[user] = presence["online"]
    print(f"changes seen {time.monotonic() - changed:.1f}s after they were made, "
          f"{time.monotonic() - back:.1f}s after Redis was back")
    for connection in (a, c):
        await connection.close()
