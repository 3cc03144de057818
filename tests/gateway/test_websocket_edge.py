"""The WebSocket edge of a real `im serve`: what is refused with which close code, what the gauge counts."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import socket
import struct
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from im.client import HttpClient
from tests.support.raw_http import read_answer

pytestmark = pytest.mark.integration

_emails = itertools.count()


async def token_of(server: Any) -> str:
    return (await HttpClient(server.url).signup(f"ws{next(_emails)}@example.test")).token


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code_after(port: int, token: str, frames: list[bytes]) -> int | None:
    """Open a WebSocket by hand, send `frames`, return the close code the server sends."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        handshake = read_answer(sock, 5, responses=1)
        assert handshake.status == 101, handshake.raw
        rest = handshake.raw[handshake.raw.index(b"\r\n\r\n") + 4:]
        for frame in frames:
            sock.sendall(frame)
        data = rest + read_answer(sock, 5).raw
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        header = 2 if length < 126 else 4
        if length == 126:
            length = struct.unpack("!H", data[at + 2:at + 4])[0]
        if opcode == 0x8:
            return int(struct.unpack("!H", data[at + header:at + header + 2])[0])
        at += header + length
    return None


async def test_a_binary_frame_is_refused_with_close_1003(standalone_server: Any) -> None:
    token = await token_of(standalone_server)
    async with connect(f"{standalone_server.ws_url}?token={token}") as ws:
        await ws.send(b'{"type":"ping"}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    fragmented = [masked_frame(0x2, b'{"type":', fin=False), masked_frame(0x0, b'"ping"}')]
    assert await asyncio.to_thread(close_code_after, standalone_server.port, token, fragmented) == 1003


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(standalone_server: Any) -> None:
    token = await token_of(standalone_server)
    broken = [masked_frame(0x1, b'{"type":"send","cid":"c","to":1,"content":"\xff\xfe"}')]
    assert await asyncio.to_thread(close_code_after, standalone_server.port, token, broken) == 1007
    split = "é".encode()
    across_fragments = [masked_frame(0x1, b'{"type":"ping","x":"' + split[:1], fin=False),
                        masked_frame(0x0, b'"}')]
    assert await asyncio.to_thread(close_code_after, standalone_server.port, token, across_fragments) == 1007
    # Valid UTF-8 beyond ASCII is fine: an unknown field is a bad_frame error, not a close.
    async with connect(f"{standalone_server.ws_url}?token={token}") as ws:
        await ws.send('{"type":"ping","ü":"ö"}')
        assert "bad_frame" in await asyncio.wait_for(ws.recv(), 10)


def gauge(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("im_gateway_connections "):
                return float(line.split()[1])
    raise AssertionError("no im_gateway_connections in /metrics")


def failed_upgrade(port: int, token: str, headers: str) -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        return read_answer(sock, 5).status


async def test_the_connection_gauge_counts_only_completed_upgrades(server_factory: Any) -> None:
    server = server_factory()
    token = await token_of(server)
    key = base64.b64encode(os.urandom(16)).decode()
    bad_handshakes = [
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 8\r\n",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",
        f"Connection: keep-alive\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
    ]
    for headers in bad_handshakes:
        status = await asyncio.to_thread(failed_upgrade, server.port, token, headers)
        assert status is not None and 400 <= status < 500, headers
    with pytest.raises(InvalidStatus):
        await connect(f"{server.ws_url}?token=not-a-token")
    assert gauge(server.metrics_url) == 0
    async with connect(f"{server.ws_url}?token={token}") as one, connect(f"{server.ws_url}?token={token}"):
        await one.send('{"type":"ping"}')
        await one.recv()
        assert gauge(server.metrics_url) == 2
    for _ in range(400):
        if gauge(server.metrics_url) == 0:
            break
        await asyncio.sleep(0.05)
    assert gauge(server.metrics_url) == 0


async def test_metrics_are_on_the_metrics_port_only(server_factory: Any) -> None:
    server = server_factory()
    with pytest.raises(urllib.error.HTTPError) as on_client_port:
        urllib.request.urlopen(f"{server.url}/metrics", timeout=5)
    assert on_client_port.value.code == 404
    assert gauge(server.metrics_url) == 0
    with urllib.request.urlopen(f"{server.url}/", timeout=5) as page:
        assert b"<html" in page.read().lower()
