"""Two gateways and one logic over the real MySQL, Redis and RabbitMQ of this machine."""

import asyncio
import itertools

import pytest

from im.client import ChatConnection, HttpClient, Login
from tests.support.cluster import LocalCluster

pytestmark = pytest.mark.integration

_emails = itertools.count()


async def signup(http: HttpClient) -> Login:
    return await http.signup(f"d{next(_emails)}@example.test")


async def drain_frames(connection: ChatConnection, wait: float = 0.3) -> list[dict]:  # type: ignore[type-arg]
    await asyncio.sleep(wait)
    frames = []
    while not connection.frames.empty():
        frames.append(connection.frames.get_nowait())
    return frames


async def test_users_on_different_gateways_chat_both_ways(cluster: LocalCluster) -> None:
    cluster.start_logic()
    one, two = cluster.start_gateway(), cluster.start_gateway()
    http1, http2 = HttpClient(one.url), HttpClient(two.url)
    alice, bob = await signup(http1), await signup(http2)
    a = await ChatConnection.open(http1.ws_url, alice.token)
    b = await ChatConnection.open(http2.ws_url, bob.token)
    for i in range(5):
        await a.send(f"a{i}", f"a says {i}", to=bob.user_id)
        await b.send(f"b{i}", f"b says {i}", to=alice.user_id)
    a_frames = [await a.next() for _ in range(10)]
    b_frames = [await b.next() for _ in range(10)]
    assert sorted(f["cid"] for f in a_frames if f["type"] == "ack") == [f"a{i}" for i in range(5)]
    assert [f["content"] for f in a_frames if f["type"] == "msg"] == [f"b says {i}" for i in range(5)]
    assert [f["content"] for f in b_frames if f["type"] == "msg"] == [f"a says {i}" for i in range(5)]
    seqs = sorted(f["seq"] for f in a_frames)
    assert seqs == list(range(1, 11)), "alice's inbox is gapless across both directions"
    await a.close()
    await b.close()


async def test_a_group_spread_over_both_gateways_reaches_every_member_once(cluster: LocalCluster) -> None:
    cluster.start_logic()
    gateways = [cluster.start_gateway(), cluster.start_gateway()]
    clients = [HttpClient(g.url) for g in gateways]
    users = [await signup(clients[i % 2]) for i in range(8)]
    group = await clients[0].create_group(users[0].token, "spread")
    for user in users[1:]:
        await clients[0].add_member(users[0].token, group, user.user_id)
    connections = [await ChatConnection.open(clients[i % 2].ws_url, u.token) for i, u in enumerate(users)]
    await asyncio.sleep(0.2)
    for index in (0, 3, 6):
        await connections[index].send(f"g{index}", f"from {index}", group=group)
        await asyncio.sleep(0.1)
    for index, connection in enumerate(connections):
        frames = await drain_frames(connection, 0.5 if index == 0 else 0)
        messages = [f["content"] for f in frames if f["type"] == "msg"]
        assert messages == [f"from {s}" for s in (0, 3, 6) if s != index], index
        assert [f["cid"] for f in frames if f["type"] == "ack"] == ([f"g{index}"] if index in (0, 3, 6) else [])
    for connection in connections:
        await connection.close()


async def test_a_user_on_both_gateways_gets_every_message_on_both(cluster: LocalCluster) -> None:
    cluster.start_logic()
    one, two = cluster.start_gateway(), cluster.start_gateway()
    http1 = HttpClient(one.url)
    alice, bob = await signup(http1), await signup(http1)
    phone = await ChatConnection.open(HttpClient(one.url).ws_url, alice.token)
    laptop = await ChatConnection.open(HttpClient(two.url).ws_url, alice.token)
    b = await ChatConnection.open(HttpClient(two.url).ws_url, bob.token)
    await asyncio.sleep(0.2)
    for i in range(5):
        await b.send(f"x{i}", f"to both {i}", to=alice.user_id)
    for device in (phone, laptop):
        received = [await device.expect("msg") for _ in range(5)]
        assert [m["content"] for m in received] == [f"to both {i}" for i in range(5)]
    await phone.send("p", "from phone", to=bob.user_id)
    await phone.expect("ack")
    assert (await laptop.expect("msg"))["content"] == "from phone"
    for connection in (phone, laptop, b):
        await connection.close()
