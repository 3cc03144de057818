"""`RabbitMqBus` against the real broker, in a vhost of this module's own."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aio_pika
import pytest

from im.backends.bus.rabbitmq import RabbitMqBus, shard_of
from im.contracts.envelopes import Ack, Downlink, Uplink
from im.protocol.errors import Unavailable

from .conftest import eventually
from .proxy import Proxy

SHARDS = 4
BusFactory = Callable[..., Awaitable[RabbitMqBus]]


def uplink(sender: int, to: int, cid: str) -> Uplink:
    return Uplink(sender=sender, cid=cid, to=to, group=None, content=f"m {cid}", gateway="gw", conn=1,
                  accepted_at=1.0)


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[BusFactory]:
    """Makes started buses on a vhost whose uplink queues are empty; closes them after the test."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for shard in range(SHARDS):
            await channel.queue_delete(f"im.uplink.{shard}")
    made: list[RabbitMqBus] = []

    async def make(url: str = amqp_url, **kwargs: object) -> RabbitMqBus:
        options: dict[str, object] = {"shards": SHARDS, "retry_delay": 0.05, **kwargs}
        started = RabbitMqBus(url, **options)  # type: ignore[arg-type]
        await started.start()
        made.append(started)
        return started

    yield make
    for started in made:
        await started.close()


async def test_uplinks_of_a_conversation_reach_the_handler_in_publish_order(bus: BusFactory) -> None:
    gateway = await bus()
    logic = await bus(prefetch=8)
    calls: list[Uplink] = []

    async def handler(uplinks: list[Uplink]) -> None:
        calls.extend(uplinks)  # call order is what must follow publish order
        await asyncio.sleep(random.random() * 0.01)  # several calls in flight, finishing out of order

    await logic.consume(handler)
    rng = random.Random(1)
    published: list[Uplink] = []
    for i in range(120):
        batch = [uplink(rng.randrange(1, 6), rng.randrange(6, 9), f"{i}.{j}") for j in range(rng.randrange(1, 5))]
        published.extend(batch)
        await gateway.publish(batch)
    await eventually(lambda: len(calls) >= len(published))
    assert len(calls) == len(published)
    for conversation in {u.conversation for u in published}:
        assert [u.cid for u in calls if u.conversation == conversation] == \
            [u.cid for u in published if u.conversation == conversation]


async def test_one_publish_is_one_amqp_message_per_shard(bus: BusFactory) -> None:
    gateway = await bus()
    logic = await bus()
    calls: list[list[Uplink]] = []

    async def handler(uplinks: list[Uplink]) -> None:
        calls.append(uplinks)

    await logic.consume(handler)
    batch = [uplink(s, 100 + s, f"c{i}") for i in range(50) for s in range(1, 7)]
    await gateway.publish(batch)
    await eventually(lambda: sum(map(len, calls)) == len(batch))
    assert len(calls) == len({shard_of(u.conversation, SHARDS) for u in batch})


async def test_concurrent_publishes_share_amqp_messages_and_keep_each_callers_order(bus: BusFactory) -> None:
    gateway = await bus(max_publishes_in_flight=2)
    logic = await bus()
    calls: list[list[Uplink]] = []

    async def handler(uplinks: list[Uplink]) -> None:
        calls.append(uplinks)

    await logic.consume(handler)

    async def client(sender: int) -> None:  # one connection: sends one message after the other
        for i in range(30):
            await gateway.publish([uplink(sender, 1000 + sender, f"{sender}.{i}")])

    await asyncio.gather(*(client(sender) for sender in range(1, 41)))
    await eventually(lambda: sum(map(len, calls)) == 40 * 30)
    received = [u for call in calls for u in call]
    for sender in range(1, 41):
        assert [u.cid for u in received if u.sender == sender] == [f"{sender}.{i}" for i in range(30)]
    assert len(calls) < 40 * 30 / 2  # coalesced


async def test_an_uplink_is_delivered_again_when_the_handler_raises(bus: BusFactory) -> None:
    gateway = await bus()
    logic = await bus(prefetch=4)
    handled: list[str] = []
    failures = {"3": 2}  # cid "3" fails twice

    async def handler(uplinks: list[Uplink]) -> None:
        for u in uplinks:
            if failures.get(u.cid, 0) > 0:
                failures[u.cid] -= 1
                raise RuntimeError("database down")
        await asyncio.sleep(0.001)
        handled.extend(u.cid for u in uplinks)

    await logic.consume(handler)
    for i in range(10):
        await gateway.publish([uplink(1, 2, str(i))])
    await eventually(lambda: "9" in handled and "3" in handled)
    # Messages after the failed one may have been handled before the failure showed: they come again
    # (the store would recognise them), but each first handling follows publish order.
    first_seen = list(dict.fromkeys(handled))
    assert first_seen == [str(i) for i in range(10)]
    assert failures["3"] == 0


async def test_an_uplink_is_delivered_again_when_its_consumer_dies_before_acking(
    amqp_url: str, bus: BusFactory,
) -> None:
    gateway = await bus()
    doomed = await bus()
    taken = asyncio.Event()
    release = asyncio.Event()

    async def stuck(uplinks: list[Uplink]) -> None:
        taken.set()
        await release.wait()

    await doomed.consume(stuck)
    await gateway.publish([uplink(1, 2, "a"), uplink(1, 2, "b")])
    await asyncio.wait_for(taken.wait(), 5)

    survivor = await bus()  # waits behind the single active consumer
    handled: list[str] = []

    async def handler(uplinks: list[Uplink]) -> None:
        handled.extend(u.cid for u in uplinks)

    await survivor.consume(handler)
    await asyncio.sleep(0.2)
    assert handled == []
    connection = doomed._connection
    assert connection is not None
    await connection.close()  # the process dies: no ack was sent
    release.set()
    await eventually(lambda: handled == ["a", "b"])


async def test_a_downlink_reaches_the_subscribed_gateway_only(bus: BusFactory) -> None:
    logic = await bus()
    one = await bus(gateway_id="one")
    two = await bus(gateway_id="two")
    got: dict[str, list[Downlink]] = {"one": [], "two": []}

    async def on_one(d: Downlink) -> None:
        got["one"].append(d)

    async def on_two(d: Downlink) -> None:
        got["two"].append(d)

    await one.subscribe("one", on_one)
    await two.subscribe("two", on_two)
    for i in range(20):
        await logic.deliver(Downlink("one", acks=[Ack(conn=7, cid=str(i), id=i, seq=i, ts=5)]))
    await logic.deliver(Downlink("nobody", acks=[Ack(1, "x", 1, 1, 1)]))  # dropped, no error
    await eventually(lambda: len(got["one"]) == 20)
    await asyncio.sleep(0.1)
    assert got["two"] == []
    assert [d.acks[0].cid for d in got["one"]] == [str(i) for i in range(20)]
    assert got["one"][0] == Downlink("one", acks=[Ack(conn=7, cid="0", id=0, seq=0, ts=5)])


async def _queue_exists(amqp_url: str, name: str) -> bool:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def test_the_downlink_queue_of_a_closed_gateway_goes_away(amqp_url: str, bus: BusFactory) -> None:
    async def ignore(d: Downlink) -> None:
        pass

    closing = await bus()
    await closing.subscribe("closing", ignore)
    assert await _queue_exists(amqp_url, "im.downlink.closing")
    await closing.close()
    assert not await _queue_exists(amqp_url, "im.downlink.closing")

    crashing = await bus(downlink_expiry=0.3)
    await crashing.subscribe("crashing", ignore)
    connection = crashing._connection
    assert connection is not None
    await connection.close()  # no clean-up: the queue expires by itself
    await asyncio.sleep(1.0)  # not polled: looking at a queue (passive declare) renews its lease
    assert not await _queue_exists(amqp_url, "im.downlink.crashing")


async def test_ping_says_whether_the_bus_can_carry_messages(amqp_url: str, bus: BusFactory) -> None:
    started = await bus()
    await started.ping()
    await started.close()
    with pytest.raises(Unavailable):
        await started.ping()
    with pytest.raises(Unavailable):
        await RabbitMqBus(amqp_url).ping()


async def test_an_unreachable_broker_is_unavailable() -> None:
    unreachable = RabbitMqBus("amqp://guest:guest@127.0.0.1:1/", shards=1)
    with pytest.raises(Unavailable):
        await asyncio.wait_for(unreachable.start(), 10)


async def test_wrong_credentials_are_unavailable(amqp_url: str) -> None:
    wrong = RabbitMqBus(amqp_url.replace("guest:guest@", "guest:wrong@"), shards=1)
    with pytest.raises(Unavailable):
        await asyncio.wait_for(wrong.start(), 10)


def test_a_malformed_url_names_the_setting() -> None:
    with pytest.raises(ValueError, match="IM_RABBITMQ_URL"):
        RabbitMqBus("http://localhost")


async def test_both_sides_carry_on_after_the_broker_drops_their_connections(
    amqp_url: str, bus: BusFactory,
) -> None:
    gateway = await bus(reconnect_interval=0.2, publish_timeout=3)
    logic = await bus(reconnect_interval=0.2)
    handled: list[str] = []

    async def handler(uplinks: list[Uplink]) -> None:
        handled.extend(u.cid for u in uplinks)

    await logic.consume(handler)
    downlinks: list[Downlink] = []

    async def on_downlink(d: Downlink) -> None:
        downlinks.append(d)

    await gateway.subscribe("gw", on_downlink)

    async def send(cid: str) -> None:
        for _ in range(50):  # what a gateway does: retry what was not confirmed
            try:
                await gateway.publish([uplink(1, 2, cid)])
                return
            except Unavailable:
                await asyncio.sleep(0.1)
        raise AssertionError(f"{cid} never published")

    for i in range(5):
        await send(str(i))
    await eventually(lambda: len(set(handled)) == 5)
    vhost = amqp_url.rsplit("/", 1)[1]
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test: broker restart")
    assert await process.wait() == 0
    for i in range(5, 10):
        await send(str(i))
    await eventually(lambda: len(set(handled)) == 10, timeout=15)
    assert list(dict.fromkeys(handled)) == [str(i) for i in range(10)]
    for _ in range(50):  # downlinks are best effort: the ones sent while reconnecting may be lost
        await logic.deliver(Downlink("gw", acks=[Ack(1, "after", 1, 1, 1)]))
        if downlinks:
            break
        await asyncio.sleep(0.1)
    assert downlinks and downlinks[0].acks[0].cid == "after"
    await gateway.ping()
    await logic.ping()



async def test_a_broker_that_goes_away_is_unavailable_until_it_comes_back(amqp_url: str, bus: BusFactory) -> None:
    parts = urlsplit(amqp_url)
    proxy = await Proxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    proxied = amqp_url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    try:
        gateway = await bus(url=proxied, reconnect_interval=0.1, publish_timeout=1)
        logic = await bus(url=proxied, reconnect_interval=0.1)
        handled: list[str] = []

        async def handler(uplinks: list[Uplink]) -> None:
            handled.extend(u.cid for u in uplinks)

        await logic.consume(handler)
        await gateway.publish([uplink(1, 2, "before")])
        await eventually(lambda: handled == ["before"])
        await proxy.cut()
        with pytest.raises(Unavailable):
            await gateway.publish([uplink(1, 2, "during")])
        with pytest.raises(Unavailable):
            await gateway.ping()
        proxy.restore()
        for _ in range(100):
            try:
                await gateway.publish([uplink(1, 2, "during")])
                break
            except Unavailable:
                await asyncio.sleep(0.1)
        await eventually(lambda: handled[-1:] == ["during"], timeout=10)
        await gateway.ping()
        await logic.ping()
    finally:
        await proxy.close()


async def _dead_letters(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(amqp_url)
    found = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("im.dead-letter", durable=True)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
    return found


async def _publish_raw(amqp_url: str, body: bytes, shard: int) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("im.messages")
        await exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                               routing_key=str(shard))


async def test_an_undecodable_uplink_is_dead_lettered_never_acked_away(amqp_url: str, bus: BusFactory) -> None:
    gateway = await bus()
    logic = await bus()
    await _dead_letters(amqp_url)  # empty it
    handled: list[str] = []

    async def handler(uplinks: list[Uplink]) -> None:
        handled.extend(u.cid for u in uplinks)

    await logic.consume(handler)
    conversation_shard = shard_of(uplink(1, 2, "x").conversation, SHARDS)
    await gateway.publish([uplink(1, 2, "before")])
    await _publish_raw(amqp_url, b'{"v": 99, "uplinks": []}', conversation_shard)  # a newer release's
    await gateway.publish([uplink(1, 2, "after")])
    await eventually(lambda: handled == ["before", "after"])
    dead = await _dead_letters(amqp_url)
    assert [m.body for m in dead] == [b'{"v": 99, "uplinks": []}']
    assert dead[0].headers["x-im-source-queue"] == f"im.uplink.{conversation_shard}"
    assert "version" in str(dead[0].headers["x-im-reason"])


async def test_an_undecodable_downlink_is_dead_lettered(amqp_url: str, bus: BusFactory) -> None:
    gateway = await bus()
    await _dead_letters(amqp_url)
    got: list[Downlink] = []

    async def on_downlink(d: Downlink) -> None:
        got.append(d)

    await gateway.subscribe("gw", on_downlink)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange("im.downlink")
        await exchange.publish(aio_pika.Message(b"\x00garbage"), routing_key="gw")
    logic = await bus()
    await logic.deliver(Downlink("gw", acks=[Ack(1, "ok", 1, 1, 1)]))
    await eventually(lambda: len(got) == 1)
    await eventually(lambda: _dead_letters(amqp_url), timeout=5)


async def test_uplinks_of_the_previous_envelope_version_are_consumed(amqp_url: str, bus: BusFactory) -> None:
    logic = await bus()
    handled: list[Uplink] = []

    async def handler(uplinks: list[Uplink]) -> None:
        handled.extend(uplinks)

    await logic.consume(handler)
    # What a gateway of the release before versioned envelopes published.
    await _publish_raw(amqp_url, b'[[1,"old",2,null,"hi","gw",7,1.5]]', 0)
    old_gateway = await bus(envelope_version=1)
    await old_gateway.publish([uplink(1, 2, "pinned-to-v1")])
    await eventually(lambda: len(handled) == 2)
    assert [u.cid for u in handled] == ["old", "pinned-to-v1"]


async def test_with_a_route_table_a_publish_is_one_amqp_message_per_replica(bus: BusFactory) -> None:
    leads = {s: 0 if s < 2 else 3 for s in range(SHARDS)}  # replica A owns 0-1 (lead 0), B owns 2-3 (lead 3)
    gateway = await bus(routes=leads.get)
    logic = await bus()
    calls: dict[int, list[list[Uplink]]] = {}

    async def handler(uplinks: list[Uplink]) -> None:
        calls.setdefault(len(calls), []).append(uplinks)

    await logic.consume(handler)
    batch = [uplink(s, 100 + s, f"c{i}.{s}") for i in range(20) for s in range(1, 9)]
    await gateway.publish(batch)
    await eventually(lambda: sum(len(u) for c in calls.values() for u in c) == len(batch))
    assert len(calls) == len({leads[shard_of(u.conversation, SHARDS)] for u in batch}) == 2


async def test_a_shard_given_back_finishes_first_and_one_taken_away_is_redelivered(bus: BusFactory) -> None:
    gateway = await bus()
    logic = await bus(close_timeout=5)
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(uplinks: list[Uplink]) -> None:
        await release.wait()
        handled.extend(u.cid for u in uplinks)

    logic._handler = handler  # what `consume` sets before the leases start shards
    shard = shard_of(uplink(1, 2, "x").conversation, SHARDS)
    await logic.start_shard(shard)
    await gateway.publish([uplink(1, 2, "drained")])
    await asyncio.sleep(0.3)
    stopping = asyncio.create_task(logic.stop_shard(shard, drain=True))
    await asyncio.sleep(0.2)
    assert not stopping.done(), "given back only after the call in flight finished"
    release.set()
    await stopping
    assert handled == ["drained"]

    release.clear()
    await logic.start_shard(shard)
    await gateway.publish([uplink(1, 2, "abandoned")])
    await asyncio.sleep(0.3)
    await logic.stop_shard(shard, drain=False)  # the lease moved: the channel goes at once
    other = await bus()
    again: list[Uplink] = []

    async def new_holder(uplinks: list[Uplink]) -> None:
        again.extend(uplinks)

    other._handler = new_holder
    await other.start_shard(shard)
    await eventually(lambda: [u.cid for u in again] == ["abandoned"])
    assert again[0].redelivered, "marked: its first consumer may have stored it already"
    release.set()
