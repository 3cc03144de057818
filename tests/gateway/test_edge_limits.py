"""Edge limits of a real `im serve`: head deadlines against slowloris, connection caps, trusted proxies."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from im.client import ChatConnection, HttpClient
from tests.support.raw_http import Answer, parse_responses

pytestmark = pytest.mark.integration

_emails = itertools.count()

TRICKLERS = 300
HEAD_TIMEOUT = 2.0


async def trickle(port: int, stop: asyncio.Event, source: str = "127.0.0.1") -> tuple[float, bytes]:
    """Send a request head one byte at a time, forever; return when the server closed, and what it said."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    received = b""
    try:
        for byte in head:
            writer.write(bytes([byte]))
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                if stop.is_set():
                    break
                continue
            if not chunk:
                break
            received += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started, received


async def test_slowloris_connections_are_closed_at_the_head_deadline_while_real_users_chat(
    server_factory: Any,
) -> None:
    server = server_factory("--http-head-timeout", str(HEAD_TIMEOUT))
    stop = asyncio.Event()
    tricklers = [asyncio.create_task(trickle(server.port, stop)) for _ in range(TRICKLERS)]
    await asyncio.sleep(0.5)
    http = HttpClient(server.url)
    ann = await http.signup(f"ann{next(_emails)}@example.test")
    bob = await http.signup(f"bob{next(_emails)}@example.test")
    a = await ChatConnection.open(http.ws_url, ann.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await a.send("hello", "through the slowloris", to=bob.user_id)
    assert (await a.expect("ack"))["seq"] == 1
    assert (await b.expect("msg"))["content"] == "through the slowloris"
    results = await asyncio.wait_for(asyncio.gather(*tricklers), 60)
    stop.set()
    await a.close()
    await b.close()
    closed_after = sorted(seconds for seconds, _ in results)
    # The deadline holds per connection however slowly bytes come: closed within the deadline plus a
    # tick of the wheel, with room for a loaded machine, long before the 10 KB head would be sent.
    assert closed_after[-1] < HEAD_TIMEOUT + 8, closed_after[-5:]
    assert closed_after[0] >= HEAD_TIMEOUT - 0.5, closed_after[:5]
    statuses = {Answer(raw, True, parse_responses(raw, False)).status for _, raw in results}
    assert statuses == {408}, statuses


async def hold_open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def one_too_many(port: int, source: str, allowed: int) -> tuple[list[asyncio.StreamWriter], Answer]:
    """Hold `allowed` connections open from `source`, then open one more: what the server told it."""
    held = [(await hold_open(port, source))[1] for _ in range(allowed)]
    reader, writer = await hold_open(port, source)
    raw = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(4096), 5):
            raw += chunk
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return held, Answer(raw, True, parse_responses(raw, False))


async def test_connections_past_the_per_address_cap_get_429_and_others_are_not_affected(
    server_factory: Any,
) -> None:
    server = server_factory("--max-connections-per-address", "5")
    held, refused = await one_too_many(server.port, "127.0.0.2", 5)
    assert refused.status == 429 and refused.code == "rate_limited"
    login = await HttpClient(server.url).signup(f"cap{next(_emails)}@example.test")
    async with connect(f"{server.ws_url}?token={login.token}") as ws:
        await ws.send('{"type":"ping"}')
        assert "pong" in await ws.recv()
    for held_writer in held:
        held_writer.close()


async def test_connections_past_the_process_cap_get_503_until_others_close(server_factory: Any) -> None:
    server = server_factory("--max-connections", "20")
    held, refused = await one_too_many(server.port, "127.0.0.1", 20)
    assert refused.status == 503 and refused.code == "unavailable"
    for held_writer in held[:5]:
        held_writer.close()
    for _ in range(100):
        try:
            health = await HttpClient(server.url).call("GET", "/healthz")
            break
        except Exception:  # noqa: BLE001 - the closed ones are not gone yet
            await asyncio.sleep(0.1)
    assert health == {"status": "ok"}
    for held_writer in held[5:]:
        held_writer.close()


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_counted(server_factory: Any) -> None:
    server = server_factory("--max-connections-per-address", "1", "--trusted-proxies", "127.0.0.1/32")
    token = (await HttpClient(server.url).signup(f"xff{next(_emails)}@example.test")).token
    url = f"{server.ws_url}?token={token}"

    def via(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"198.51.100.1, {address}"}

    async with connect(url, additional_headers=via("203.0.113.7")), \
            connect(url, additional_headers=via("203.0.113.8")):
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=via("203.0.113.7"))
        assert refused.value.response.status_code == 429
    # The forwarded address is ignored from a peer that is not a trusted proxy.
    untrusted = {"local_addr": ("127.0.0.2", 0)}
    async with connect(url, additional_headers=via("203.0.113.9"), **untrusted):
        with pytest.raises(InvalidStatus) as counted_as_peer:
            await connect(url, additional_headers=via("203.0.113.10"), **untrusted)
        assert counted_as_peer.value.response.status_code == 429
    log = server.log()
    assert "203.0.113.7 GET /ws 101" in log and "203.0.113.9" not in log
