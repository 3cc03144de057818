"""Typing frames end to end, the same checks against `im serve` and two distributed gateways."""

from __future__ import annotations

import asyncio

from im.client import ChatConnection, HttpClient
from tests.support.inbox_events import frames_until_pong, signup

__all__ = ["check_typing"]


async def check_typing(here: HttpClient, there: HttpClient, *, interval_seconds: float) -> None:
    """Alice on `here` (a second device on `there`), Bob and Carol on `there`, Dave outside the group,
    Bob blocks Dave. Typing reaches the recipients only, once per interval, and is never stored."""
    alice, bob, carol, dave = (await signup(here, "alice"), await signup(there, "bob"),
                               await signup(there, "carol"), await signup(here, "dave"))
    group = await here.create_group(alice.token, "typists")
    for member in (bob, carol):
        await here.add_member(alice.token, group, member.user_id)
    await there.block(bob.token, dave.user_id)
    a = await ChatConnection.open(here.ws_url, alice.token)
    a2 = await ChatConnection.open(there.ws_url, alice.token)
    b = await ChatConnection.open(there.ws_url, bob.token)
    c = await ChatConnection.open(there.ws_url, carol.token)
    d = await ChatConnection.open(here.ws_url, dave.token)
    await asyncio.sleep(0.3)  # sessions recorded (distributed: in Redis)

    started = asyncio.get_running_loop().time()
    await a.send_frame({"type": "typing", "to": bob.user_id})
    assert await asyncio.wait_for(b.next(), 5) == {"type": "typing", "from": alice.user_id, "to": bob.user_id}
    await a.send_frame({"type": "typing", "to": bob.user_id})  # within the interval: dropped
    await a.send_frame({"type": "typing", "group": group})
    expected_group = {"type": "typing", "from": alice.user_id, "group": group}
    assert await asyncio.wait_for(b.next(), 5) == expected_group, "the second private typing was throttled"
    assert await asyncio.wait_for(c.next(), 5) == expected_group

    await d.send_frame({"type": "typing", "to": bob.user_id})  # bob blocks dave
    await d.send_frame({"type": "typing", "group": group})  # dave is no member
    await c.send_frame({"type": "typing", "to": alice.user_id})
    assert await asyncio.wait_for(a.next(), 5) == {"type": "typing", "from": carol.user_id, "to": alice.user_id}
    assert await asyncio.wait_for(a2.next(), 5) == {"type": "typing", "from": carol.user_id, "to": alice.user_id}
    for connection in (a, a2, b, c, d):
        assert await frames_until_pong(connection) == [], "nobody else is told, nor the sender, nor a blocked one"

    await asyncio.sleep(max(0.0, started + interval_seconds + 0.2 - asyncio.get_running_loop().time()))
    await a.send_frame({"type": "typing", "to": bob.user_id})
    assert await asyncio.wait_for(b.next(), 5) == {"type": "typing", "from": alice.user_id, "to": bob.user_id}

    for login in (alice, bob, carol, dave):
        probe = await ChatConnection.open(here.ws_url, login.token)
        assert [e for e in await probe.sync_all() if e["type"] not in ("member", "group")] == [], "nothing stored"
        await probe.close()
    for connection in (a, a2, b, c, d):
        await connection.close()
