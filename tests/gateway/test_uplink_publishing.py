"""The gateway hands sends to the bus in rounds: a linger gathers the sends of many connections."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from im import metrics
from im.backends.sessions.memory import MemorySessions
from im.contracts.envelopes import Downlink, Uplink
from im.gateway.server import Gateway, GatewaySettings
from im.protocol.errors import Unavailable
from im.protocol.tokens import TokenCodec

SECRET = "s" * 40


class RecordingBus:
    def __init__(self) -> None:
        self.rounds: list[list[Uplink]] = []

    async def publish(self, uplinks: list[Uplink]) -> None:
        self.rounds.append(list(uplinks))

    async def subscribe(self, gateway: str, handler: Any) -> None:
        pass

    async def deliver(self, downlink: Downlink) -> None:
        pass


async def start_gateway(linger: float) -> tuple[Gateway, RecordingBus, TokenCodec]:
    bus, tokens = RecordingBus(), TokenCodec(SECRET)
    gateway = Gateway(
        api=None, tokens=tokens, bus=bus, sessions=MemorySessions(),  # type: ignore[arg-type]
        settings=GatewaySettings(gateway_id="g1", uplink_linger_seconds=linger, serve_web=False),
    )
    await gateway.start("127.0.0.1", 0)
    return gateway, bus, tokens


@pytest.fixture
async def lingering() -> AsyncIterator[tuple[Gateway, RecordingBus, TokenCodec]]:
    gateway, bus, tokens = await start_gateway(linger=0.2)
    yield gateway, bus, tokens
    await gateway.close()


async def test_sends_within_the_linger_go_to_the_bus_in_one_round(
    lingering: tuple[Gateway, RecordingBus, TokenCodec],
) -> None:
    gateway, bus, tokens = lingering
    url = f"ws://127.0.0.1:{gateway.ports[0]}/ws"
    clients = [await connect(f"{url}?token={tokens.issue(user, int(time.time()))[0]}") for user in (1, 2, 3)]
    for user, client in zip((1, 2, 3), clients, strict=True):
        await client.send(orjson.dumps({"type": "send", "cid": f"c{user}", "to": 9, "content": "hi"}).decode())
    await asyncio.sleep(0.5)
    assert [[(u.sender, u.cid) for u in round_] for round_ in bus.rounds] == [[(1, "c1"), (2, "c2"), (3, "c3")]]
    assert all(u.gateway == "g1" and u.to == 9 for u in bus.rounds[0])
    for client in clients:
        await client.close()


async def test_without_a_linger_each_send_can_go_at_once() -> None:
    gateway, bus, tokens = await start_gateway(linger=0)
    url = f"ws://127.0.0.1:{gateway.ports[0]}/ws?token={tokens.issue(1, int(time.time()))[0]}"
    async with connect(url) as client:
        for i in range(3):
            await client.send(orjson.dumps({"type": "send", "cid": f"c{i}", "to": 9, "content": "hi"}).decode())
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
    await gateway.close()
    assert [[u.cid for u in round_] for round_ in bus.rounds] == [["c0"], ["c1"], ["c2"]]


class OutageBus(RecordingBus):
    """A bus whose broker is down for the first `failures` publishes, and says so when pinged."""

    def __init__(self, failures: int, *, knows_it_is_down: bool) -> None:
        super().__init__()
        self.failures = failures
        self.knows_it_is_down = knows_it_is_down
        self.down = False

    async def publish(self, uplinks: list[Uplink]) -> None:
        self.down = self.failures > 0
        if self.down:
            self.failures -= 1
            raise Unavailable("RabbitMQ at test: publish not confirmed within 10.0s")
        await super().publish(uplinks)

    async def ping(self) -> None:
        if self.down and self.knows_it_is_down:
            raise Unavailable("RabbitMQ at test: not connected")


@pytest.mark.parametrize(("knows_it_is_down", "level"), [(True, logging.INFO), (False, logging.WARNING)])
async def test_a_publish_failing_in_an_outage_the_bus_reported_is_retried_without_a_second_warning(
    caplog: pytest.LogCaptureFixture, knows_it_is_down: bool, level: int,
) -> None:
    bus, tokens = OutageBus(2, knows_it_is_down=knows_it_is_down), TokenCodec(SECRET)
    gateway = Gateway(
        api=None, tokens=tokens, bus=bus, sessions=MemorySessions(),  # type: ignore[arg-type]
        settings=GatewaySettings(gateway_id="g1", uplink_linger_seconds=0, serve_web=False),
    )
    await gateway.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{gateway.ports[0]}/ws?token={tokens.issue(1, int(time.time()))[0]}"
    with caplog.at_level(logging.INFO, logger="im.gateway.server"):
        async with connect(url) as client:
            await client.send(orjson.dumps({"type": "send", "cid": "c0", "to": 9, "content": "hi"}).decode())
            for _ in range(50):
                if bus.rounds:
                    break
                await asyncio.sleep(0.05)
        await gateway.close()
    assert [[u.cid for u in round_] for round_ in bus.rounds] == [["c0"]], "published once the bus was back"
    failures = [r for r in caplog.records if "publishing 1 uplinks failed" in r.getMessage()]
    assert [r.levelno for r in failures] == [level, level]


async def test_every_accepted_send_is_counted_by_the_time_its_round_is_published(
    lingering: tuple[Gateway, RecordingBus, TokenCodec],
) -> None:
    """Sends that arrive during the linger are counted with their round, not at the next wake-up."""
    gateway, bus, tokens = lingering
    before = metrics.MESSAGES_RECEIVED._value.get()
    url = f"ws://127.0.0.1:{gateway.ports[0]}/ws?token={tokens.issue(1, int(time.time()))[0]}"
    async with connect(url) as client:
        for i in range(3):
            await client.send(orjson.dumps({"type": "send", "cid": f"c{i}", "to": 9, "content": "hi"}).decode())
            await asyncio.sleep(0.05)  # within the 0.2 s linger of the first
        for _ in range(50):
            if sum(len(r) for r in bus.rounds) == 3:
                break
            await asyncio.sleep(0.02)
        assert [[u.cid for u in r] for r in bus.rounds] == [["c0", "c1", "c2"]]
        assert metrics.MESSAGES_RECEIVED._value.get() - before == 3
