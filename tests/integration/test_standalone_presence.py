"""Presence on a real `im serve`: snapshot, changes, blocks, coalescing, last_seen over HTTP and
after a restart; malformed watch frames and queries get a clear error."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from im.client import ChatConnection, HttpClient
from im.client.http import HttpError
from tests.support.inbox_events import frames_until_pong, signup
from tests.support.presence_checks import check_presence, presence_of

pytestmark = pytest.mark.integration


async def test_presence_snapshot_changes_blocks_and_last_seen(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    await check_presence(http, http)


async def test_last_seen_survives_a_restart(server_factory: Any) -> None:
    server = server_factory()
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    before = int(time.time() * 1000)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await frames_until_pong(b)
    await b.close()
    seen = None
    for _ in range(50):
        seen = (await presence_of(http, alice, [bob.user_id]))[bob.user_id]["last_seen"]
        if seen is not None:
            break
        await asyncio.sleep(0.1)
    assert seen is not None and seen >= before - 1000
    assert await asyncio.to_thread(server.stop) == 0
    await asyncio.to_thread(server.start)
    assert (await presence_of(http, alice, [bob.user_id]))[bob.user_id] == {
        "user_id": bob.user_id, "online": False, "last_seen": seen}


@pytest.mark.parametrize("frame", [
    {"type": "presence"},
    {"type": "presence", "watch": 5},
    {"type": "presence", "watch": [0]},
    {"type": "presence", "watch": ["1"]},
    {"type": "presence", "watch": list(range(1, 502))},
    {"type": "presence", "watch": [1], "extra": 1},
], ids=["no-watch", "not-a-list", "id-zero", "id-string", "too-many", "unknown-field"])
async def test_malformed_presence_frames_get_a_clear_error(standalone_server: Any, frame: dict[str, Any]) -> None:
    http = HttpClient(standalone_server.url)
    alice = await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    await a.send_frame(frame)
    assert (await a.expect("error"))["code"] == "bad_frame"
    assert await frames_until_pong(a) == []
    await a.close()


@pytest.mark.parametrize("ids", ["", "abc", "0", "1,,2", ",".join(map(str, range(1, 502)))],
                         ids=["empty", "word", "zero", "empty-part", "too-many"])
async def test_malformed_presence_queries_are_400(standalone_server: Any, ids: str) -> None:
    http = HttpClient(standalone_server.url)
    alice = await signup(http)
    with pytest.raises(HttpError) as refused:
        await http.call("GET", f"/api/v1/presence?ids={ids}", None, alice.token)
    assert refused.value.status == 400
