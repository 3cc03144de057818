"""Bad input gets the right error frame, status or close code, and loses nothing else."""

import asyncio
import base64
import itertools
import os
import socket
import struct
import time
from typing import Any

import jwt
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from im.client import ChatConnection, HttpClient, HttpError, Login

pytestmark = pytest.mark.integration

_emails = itertools.count()


async def signup(http: HttpClient) -> Login:
    return await http.signup(f"bad{next(_emails)}@example.test")


async def pair(server: Any) -> tuple[HttpClient, Login, Login, ChatConnection, ChatConnection]:
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    return (http, alice, bob, await ChatConnection.open(http.ws_url, alice.token),
            await ChatConnection.open(http.ws_url, bob.token))


async def test_bad_frames_get_error_frames_and_the_connection_keeps_working(standalone_server: Any) -> None:
    http, alice, bob, a, b = await pair(standalone_server)
    stranger_group = await http.create_group(bob.token, "not alice's")
    cases: list[tuple[Any, str, str | None]] = [
        ("{not json", "bad_frame", None),
        ({"type": "teleport"}, "bad_frame", None),
        ({"cid": "c"}, "bad_frame", None),
        ({"type": "send", "cid": "c1", "content": "no recipient"}, "bad_frame", "c1"),
        ({"type": "send", "cid": "c2", "to": "two", "content": "x"}, "bad_frame", "c2"),
        ({"type": "send", "cid": "c3", "to": bob.user_id, "content": 5}, "bad_frame", "c3"),
        ({"type": "send", "cid": "c4", "to": bob.user_id, "content": "x" * 4001}, "too_large", "c4"),
        ({"type": "send", "cid": "c5", "group": stranger_group, "content": "x"}, "forbidden", "c5"),
        ({"type": "send", "cid": "c6", "to": 10**9, "content": "x"}, "not_found", "c6"),
        ({"type": "send", "cid": "c7", "group": 10**9, "content": "x"}, "not_found", "c7"),
        ({"type": "send", "cid": "c8", "to": bob.user_id, "content": "x", "from": bob.user_id},
         "forbidden", "c8"),
        ({"type": "sync", "after": "yesterday"}, "bad_frame", None),
    ]
    for frame, code, cid in cases:
        await a.send_frame(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
        error = await a.expect("error")
        assert (error["code"], error["cid"]) == (code, cid), frame
        assert error["message"]
    await a.send("good", "still here", to=bob.user_id)
    assert (await a.expect("ack"))["seq"] == 1
    delivered = await b.expect("msg")
    assert (delivered["from"], delivered["content"]) == (alice.user_id, "still here")
    assert [m["cid"] for m in await b.sync_all()] == ["good"]
    await a.close()
    await b.close()


async def test_an_oversized_frame_closes_the_connection_with_1009(standalone_server: Any) -> None:
    _, _, bob, a, b = await pair(standalone_server)
    await a.send_frame("x" * (64 * 1024 + 1))
    assert (await a.expect("_closed"))["code"] == 1009
    await b.close()


async def test_flooding_past_the_rate_limit_is_refused_and_nothing_acked_is_lost(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "20", "--rate-burst", "10")
    _, _, bob, a, b = await pair(server)
    for i in range(30):
        await a.send(f"f{i}", f"flood {i}", to=bob.user_id)
    frames = [await a.next() for _ in range(30)]
    acked = {f["cid"] for f in frames if f["type"] == "ack"}
    limited = {f["cid"] for f in frames if f["type"] == "error" and f["code"] == "rate_limited"}
    assert len(acked) >= 10 and limited and acked | limited == {f"f{i}" for i in range(30)}
    await asyncio.sleep(1.0)
    for cid in sorted(limited):
        await a.send(cid, f"flood {cid[1:]}", to=bob.user_id)
        await a.expect("ack")
        await asyncio.sleep(0.06)
    stored = await HttpClient(server.url).history(bob.token)
    assert sorted(m["cid"] for m in stored) == sorted(f"f{i}" for i in range(30))
    await a.close()
    await b.close()


async def test_a_client_that_keeps_sending_bad_frames_is_closed_with_4029(standalone_server: Any) -> None:
    _, _, _, a, b = await pair(standalone_server)
    for _ in range(60):
        await a.send_frame("garbage")
    codes = []
    while True:
        frame = await a.next()
        if frame["type"] == "_closed":
            break
        codes.append(frame["code"])
    assert codes == ["bad_frame"] * 50 and frame["code"] == 4029
    await b.close()


def forged(secret: str, **claims: Any) -> str:
    return jwt.encode({"sub": "1", "exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


def read_secret(server: Any) -> str:
    return str((server.data_dir / "jwt-secret").read_text().strip())


async def test_missing_expired_wrongly_signed_and_alg_none_tokens_are_refused(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    await signup(http)
    secret = read_secret(standalone_server)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(orjson.dumps({"sub": "1", "exp": int(time.time()) + 600})).rstrip(b"=")
    bad_tokens = {
        "expired": forged(secret, exp=int(time.time()) - 5),
        "wrong-key": forged("another secret that is long enough for HS256"),
        "alg-none": f"{header}.{payload.decode()}.",
        "garbage": "garbage",
    }
    with pytest.raises(InvalidStatus) as missing:
        await connect(http.ws_url)
    assert missing.value.response.status_code == 401
    for name, token in bad_tokens.items():
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{http.ws_url}?token={token}")
        assert refused.value.response.status_code == 401, name
        with pytest.raises(HttpError) as http_refused:
            await http.call("GET", "/api/v1/groups", token=token)
        assert (http_refused.value.status, http_refused.value.code) == (401, "unauthorized"), name
    good = forged(secret)
    async with connect(f"{http.ws_url}?token={good}") as ws:
        await ws.send('{"type":"ping"}')
        assert orjson.loads(await ws.recv()) == {"type": "pong"}
    async with connect(http.ws_url, additional_headers={"Authorization": f"Bearer {good}"}) as ws:
        await ws.send('{"type":"ping"}')
        assert orjson.loads(await ws.recv()) == {"type": "pong"}


async def test_http_errors_have_the_contract_shape(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    user = await signup(http)
    cases = [
        (("POST", "/api/v1/register", {"email": "dup@example.test", "password": "longenough", "nickname": "d"}),
         None, None),
        (("POST", "/api/v1/register", {"email": "dup@example.test", "password": "longenough", "nickname": "d"}),
         409, "conflict"),
        (("POST", "/api/v1/register", {"email": "no-at-sign", "password": "longenough", "nickname": "d"}),
         400, "bad_request"),
        (("POST", "/api/v1/register", {"email": "short@example.test", "password": "x", "nickname": "d"}),
         400, "bad_request"),
        (("POST", "/api/v1/register", {"email": 5, "password": "longenough", "nickname": "d"}), 400, "bad_request"),
        (("POST", "/api/v1/login", {"email": "dup@example.test", "password": "wrong password"}),
         401, "unauthorized"),
        (("POST", "/api/v1/login", {"email": "nobody@example.test", "password": "whatever1"}),
         401, "unauthorized"),
        (("GET", "/api/v1/groups/999/members", None), 404, "not_found"),
        (("POST", "/api/v1/groups", {"name": ""}), 400, "bad_request"),
        (("GET", "/api/v1/messages?after=-1", None), 400, "bad_request"),
        (("GET", "/api/v1/nothing", None), 404, "not_found"),
    ]
    for (method, path, body), status, code in cases:
        if status is None:
            await http.call(method, path, body, user.token)
            continue
        with pytest.raises(HttpError) as caught:
            await http.call(method, path, body, user.token)
        assert (caught.value.status, caught.value.code) == (status, code), path
        assert caught.value.body["error"]["message"]


async def test_only_the_owner_adds_members_and_only_members_list_them(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    owner, other = await signup(http), await signup(http)
    group = await http.create_group(owner.token, "private club")
    for call in (http.add_member(other.token, group, other.user_id), http.members(other.token, group)):
        with pytest.raises(HttpError) as caught:
            await call
        assert (caught.value.status, caught.value.code) == (403, "forbidden")
    with pytest.raises(HttpError) as unknown_user:
        await http.add_member(owner.token, group, 10**9)
    assert unknown_user.value.status == 404


def raw_websocket(port: int, token: str, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101")
    return sock


def read_frames(sock: socket.socket, timeout: float) -> list[tuple[int, bytes]]:
    sock.settimeout(timeout)
    buffer = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            buffer += chunk
    except TimeoutError:
        pass
    data = bytes(buffer)
    frames = []
    at = 0
    while len(data) - at >= 2:
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        header = 2
        if length == 126:
            length, header = struct.unpack("!H", data[at + 2:at + 4])[0], 4
        elif length == 127:
            length, header = struct.unpack("!Q", data[at + 2:at + 10])[0], 10
        frames.append((opcode, data[at + header:at + header + length]))
        at += header + length
    return frames


async def test_a_client_that_never_answers_heartbeats_is_closed_with_4000(server_factory: Any) -> None:
    server = server_factory("--heartbeat-interval", "1", "--heartbeat-timeout", "1")
    user = await signup(HttpClient(server.url))
    sock = await asyncio.to_thread(raw_websocket, server.port, user.token)
    frames = await asyncio.to_thread(read_frames, sock, 6)
    sock.close()
    opcodes = [opcode for opcode, _ in frames]
    assert opcodes == [0x9, 0x8], frames
    assert struct.unpack("!H", frames[1][1][:2])[0] == 4000


async def test_a_reader_too_slow_is_closed_with_4008_and_server_memory_stays_bounded(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "0", "--send-queue-bytes", "65536")
    http = HttpClient(server.url)
    slow, fast = await signup(http), await signup(http)
    sock = await asyncio.to_thread(raw_websocket, server.port, slow.token, 4096)
    sender = await ChatConnection.open(http.ws_url, fast.token)
    count = 4000
    for i in range(count):
        await sender.send(f"s{i}", "x" * 4000, to=slow.user_id)
    for _ in range(count):
        await sender.expect("ack", timeout=30)
    frames = await asyncio.to_thread(read_frames, sock, 2)
    sock.close()
    assert frames[-1][0] == 0x8, "the slow reader was not closed"
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4008
    assert len([f for f in frames if f[0] == 0x1]) < count
    await sender.close()


async def test_sync_requests_share_the_rate_limit(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "5", "--rate-burst", "3")
    _, _, _, a, b = await pair(server)
    for _ in range(6):
        await a.send_frame({"type": "sync", "after": 0})
    frames = [await a.next() for _ in range(6)]
    assert sorted(f["type"] for f in frames) == ["error"] * 3 + ["sync"] * 3
    assert {f["code"] for f in frames if f["type"] == "error"} == {"rate_limited"}
    await a.close()
    await b.close()
