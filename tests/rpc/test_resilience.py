"""Deadlines, retries and restarts: a slow or restarting logic costs the gateway time, not wrong answers."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from im.contracts.records import EventPage, Group
from im.protocol.errors import Unavailable
from im.rpc.server import drain, serve_logic
from tests.rpc.conftest import as_user

if TYPE_CHECKING:
    from tests.rpc.conftest import ClientFactory, FakeLogic, LogicServer


async def test_a_slow_logic_is_unavailable_once_the_deadline_passes(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target, timeout=0.3)
    fake.delay = 5
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer within 0.3 s"):
        await client.my_groups(as_user(1))
    assert 0.25 < time.monotonic() - started < 0.8


async def test_the_deadline_covers_every_attempt(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target, timeout=0.5, max_attempts=100, backoff=0.01, max_backoff=0.01)
    fake.fail_with = Unavailable("database is down")
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await client.sync(as_user(1), 0, 10)
    assert time.monotonic() - started < 0.8
    assert fake.calls["sync"] > 2


async def test_nobody_listening_is_unavailable_within_the_deadline(
    logic: LogicServer, make_client: ClientFactory
) -> None:
    await logic.stop()
    client = await make_client(logic.target, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await client.login("ann@example.com", "pw", "10.1.2.3")
    assert 0.45 < time.monotonic() - started < 1.0


async def test_a_read_retries_while_logic_reports_itself_unavailable(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target, backoff=0.05)
    fake.fail_with = Unavailable("database is down")

    async def recover() -> None:
        await asyncio.sleep(0.2)
        fake.fail_with = None

    recovering = asyncio.create_task(recover())
    assert await client.sync(as_user(1), 0, 10) == EventPage(entries=[], more=False)
    await recovering
    assert fake.calls["sync"] >= 2


async def test_a_write_that_reached_logic_is_not_retried(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target)
    fake.fail_with = Unavailable("database is down")
    with pytest.raises(Unavailable):
        await client.create_group(as_user(1), "team")
    with pytest.raises(Unavailable):
        await client.register("ann@example.com", "pw", "Ann")
    assert fake.calls["create_group"] == 1
    assert fake.calls["register"] == 1


async def test_a_read_survives_logic_restarting_mid_call(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target, timeout=5)
    fake.groups[100] = Group(id=100, name="team", owner=1)
    fake.members[100] = [1]
    fake.delay = 0.5
    call = asyncio.create_task(client.my_groups(as_user(1)))
    await asyncio.sleep(0.2)
    assert fake.calls["my_groups"] == 1 and not call.done()

    await logic.stop()  # the call in flight fails with UNAVAILABLE
    fake.delay = 0
    await asyncio.sleep(0.3)
    await logic.start()  # same port, same data: a restarted logic pod

    assert await call == [Group(id=100, name="team", owner=1)]
    assert fake.calls["my_groups"] == 2


async def test_a_write_in_flight_when_logic_goes_away_is_reported_not_repeated(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target, timeout=5)
    fake.delay = 0.5
    call = asyncio.create_task(client.create_group(as_user(1), "team"))
    await asyncio.sleep(0.2)
    await logic.stop()
    await logic.start()
    with pytest.raises(Unavailable):
        await call
    assert fake.calls["create_group"] == 1


async def test_calls_wait_for_a_logic_that_is_starting(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    """A request that never left the gateway cannot have run: even a write may wait for logic."""
    await logic.stop()
    client = await make_client(logic.target, timeout=5)
    calls = asyncio.gather(client.register("ann@example.com", "pw", "Ann"), client.my_groups(as_user(1)))
    await asyncio.sleep(0.3)
    await logic.start()
    user, groups = await calls
    assert user.email == "ann@example.com" and groups == []
    assert fake.calls["register"] == 1


async def test_draining_lets_calls_in_flight_finish(
    logic: LogicServer, fake: FakeLogic, make_client: ClientFactory
) -> None:
    client = await make_client(logic.target)
    fake.delay = 0.3
    call = asyncio.create_task(client.create_group(as_user(1), "team"))
    await asyncio.sleep(0.1)
    assert logic.server is not None
    await drain(logic.server, grace=2)
    logic.server = None
    assert (await call).name == "team"


async def test_a_taken_port_is_refused(logic: LogicServer, fake: FakeLogic) -> None:
    with pytest.raises(OSError, match="cannot listen"):
        await serve_logic(fake, "127.0.0.1", logic.port, verify_token=fake.verify_token)
