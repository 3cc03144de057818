"""Presence end to end, the same checks against `im serve` and two distributed gateways."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from im.client import ChatConnection, HttpClient, Login
from tests.support.inbox_events import frames_until_pong, signup

__all__ = ["check_presence", "next_presence", "presence_of"]


async def next_presence(connection: ChatConnection, timeout: float = 5.0) -> dict[int, dict[str, Any]]:
    """The users of the next `presence` frame, by id (other frames are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await connection.next(timeout=max(0.01, deadline - time.monotonic()))
        if frame["type"] == "presence":
            return {user["user_id"]: user for user in frame["users"]}
        assert frame["type"] != "_closed", frame


async def presence_of(http: HttpClient, login: Login, ids: list[int]) -> dict[int, dict[str, Any]]:
    """`HttpClient.presence`, by user id."""
    return {user["user_id"]: user for user in await http.presence(login.token, ids)}


async def check_presence(here: HttpClient, there: HttpClient) -> None:
    """Alice on `here` watches Bob (on `there`), Carol (who blocked her) and Dave (never online)."""
    alice, bob, carol, dave = (await signup(here, "alice"), await signup(there, "bob"),
                               await signup(there, "carol"), await signup(here, "dave"))
    await there.block(carol.token, alice.user_id)
    a = await ChatConnection.open(here.ws_url, alice.token)
    c = await ChatConnection.open(there.ws_url, carol.token)
    await a.send_frame({"type": "presence", "watch": [bob.user_id, carol.user_id, dave.user_id, bob.user_id]})
    snapshot = await a.expect("presence")
    assert snapshot["users"] == [{"user_id": u, "online": False, "last_seen": None}
                                 for u in (bob.user_id, carol.user_id, dave.user_id)], \
        "in the order asked, once each; carol is online but blocked alice"

    started = time.monotonic()
    b = await ChatConnection.open(there.ws_url, bob.token)
    assert await next_presence(a) == {bob.user_id: {"user_id": bob.user_id, "online": True, "last_seen": None}}
    assert time.monotonic() - started < 5

    before_close = int(time.time() * 1000)
    await b.close()
    went = await next_presence(a)
    assert list(went) == [bob.user_id] and went[bob.user_id]["online"] is False
    assert went[bob.user_id]["last_seen"] >= before_close - 1000

    # A reconnect within the coalescing window flips nothing for the watchers.
    b = await ChatConnection.open(there.ws_url, bob.token)
    assert (await next_presence(a))[bob.user_id]["online"] is True
    await b.close()
    b = await ChatConnection.open(there.ws_url, bob.token)
    await asyncio.sleep(1.5)
    assert await frames_until_pong(a) == [], "a disconnect and reconnect within the window is no change"
    await b.close()
    assert (await next_presence(a))[bob.user_id]["online"] is False

    deadline = time.monotonic() + 5
    while True:  # last_seen is stored by logic moments after the close
        over_http = await presence_of(here, alice, [bob.user_id, carol.user_id, dave.user_id])
        if over_http[bob.user_id]["last_seen"] is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert over_http[bob.user_id]["online"] is False and over_http[bob.user_id]["last_seen"] >= before_close - 1000
    assert over_http[carol.user_id] == {"user_id": carol.user_id, "online": False, "last_seen": None}
    assert over_http[dave.user_id] == {"user_id": dave.user_id, "online": False, "last_seen": None}
    assert (await presence_of(there, carol, [alice.user_id]))[alice.user_id]["online"] is True, \
        "carol blocking alice hides carol from alice, not alice from carol"

    await a.send_frame({"type": "presence", "watch": []})
    assert (await a.expect("presence"))["users"] == []
    b = await ChatConnection.open(there.ws_url, bob.token)
    await asyncio.sleep(1.5)
    assert await frames_until_pong(a) == [], "an empty watch set watches nobody"
    for connection in (a, b, c):
        await connection.close()
