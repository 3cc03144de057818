"""Edits, recalls and reads through a distributed cluster (gateway, logic, MySQL, RabbitMQ, Redis):
the same end-to-end checks as on `im serve`, refusals with a tiny window, and a kill -9 of logic
in the middle of a mix of sends, edits and reads that leaves every inbox gapless and nothing doubled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from im.client import ChatConnection, HttpClient
from tests.support.cluster import Backends, LocalCluster, local_cluster
from tests.support.inbox_events import check_edit_recall_read_and_sync, signup
from tests.support.servers import MYSQL_URL, RABBITMQ_URL, REDIS_URL, mysql_database, rabbitmq_vhost, redis_prefix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with ExitStack() as stack:
        database, prefix = stack.enter_context(mysql_database(MYSQL_URL)), stack.enter_context(redis_prefix(REDIS_URL))
        backends = Backends(database, REDIS_URL, prefix, stack.enter_context(rabbitmq_vhost(RABBITMQ_URL)))
        yield stack.enter_context(local_cluster(tmp_path, backends))


async def test_edit_recall_and_read_reach_every_device_and_sync_returns_every_kind(cluster: LocalCluster) -> None:
    cluster.start_logic()
    gateway = cluster.start_gateway()
    await check_edit_recall_read_and_sync(HttpClient(gateway.url))


async def test_an_edit_past_the_window_and_by_another_is_refused(cluster: LocalCluster) -> None:
    cluster.start_logic(IM_EDIT_WINDOW_SECONDS="1")
    gateway = cluster.start_gateway()
    http = HttpClient(gateway.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await a.send("m1", "mine", to=bob.user_id)
    message_id = (await a.expect("ack"))["id"]
    await b.expect("msg")
    await b.send_frame({"type": "edit", "cid": "theirs", "id": message_id, "content": "x"})
    theirs = await b.expect("error")
    assert (theirs["code"], theirs["cid"]) == ("forbidden", "theirs")
    await asyncio.sleep(1.2)
    await a.send_frame({"type": "edit", "cid": "late", "id": message_id, "content": "too late"})
    late = await a.expect("error")
    assert (late["code"], late["cid"]) == ("forbidden", "late")
    assert [e["content"] for e in await a.sync_all()] == ["mine"]
    for connection in (a, b):
        await connection.close()


async def test_kill_9_of_logic_amid_sends_edits_and_reads_loses_and_doubles_nothing(cluster: LocalCluster) -> None:
    logic = cluster.start_logic(IM_BATCH_MAX_DELAY_MS="30")
    gateway = cluster.start_gateway(IM_RATE_LIMIT="0")
    http = HttpClient(gateway.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await asyncio.sleep(0.2)
    count = 120
    acks: dict[str, dict[str, Any]] = {}
    edits_sent = reads_sent = 0
    killed = False
    for i in range(count):
        await a.send(f"k{i}", f"content {i}", to=bob.user_id)
        # Take what has come: an ack lets an edit of that message go out, every 10th a read by bob.
        while not a.frames.empty():
            frame = a.frames.get_nowait()
            if frame["type"] != "ack":
                continue
            acks[frame["cid"]] = frame
            if frame["cid"].startswith("k"):
                n = int(frame["cid"][1:])
                if n % 2 == 0:
                    await a.send_frame({"type": "edit", "cid": f"e{n}", "id": frame["id"], "content": f"edited {n}"})
                    edits_sent += 1
                if n % 10 == 9:
                    await b.send_frame({"type": "read", "peer": alice.user_id, "up_to": frame["id"]})
                    reads_sent += 1
        if not killed and len(acks) >= 40:
            logic.kill()
            killed = True
            await asyncio.to_thread(logic.start)
        await asyncio.sleep(0.005)
    assert killed
    while len(acks) < count + edits_sent:
        frame = await a.next(timeout=60)
        if frame["type"] == "ack":
            acks[frame["cid"]] = frame
    assert edits_sent >= 10
    await asyncio.sleep(0.5)
    inbox = await (await ChatConnection.open(http.ws_url, bob.token)).sync_all()
    assert [e["seq"] for e in inbox] == list(range(1, len(inbox) + 1)), "gapless"
    messages = [e for e in inbox if e["type"] == "msg"]
    assert [m["cid"] for m in messages] == [f"k{i}" for i in range(count)], "each once, in order"
    edited = {int(c[1:]) for c in acks if c.startswith("e")}
    assert [m["content"] for m in messages] == [f"edited {i}" if i in edited else f"content {i}" for i in range(count)]
    assert sorted(e["id"] for e in inbox if e["type"] == "edit") == sorted(acks[f"k{i}"]["id"] for i in edited), (
        "every edit once")
    assert 1 <= sum(e["type"] == "read" for e in inbox) <= reads_sent
    alice_inbox = await (await ChatConnection.open(http.ws_url, alice.token)).sync_all()
    assert [e["seq"] for e in alice_inbox] == list(range(1, len(alice_inbox) + 1))
    assert {acks[f"e{i}"]["seq"] for i in edited} == {e["seq"] for e in alice_inbox if e["type"] == "edit"}
    for connection in (a, b):
        await connection.close()
