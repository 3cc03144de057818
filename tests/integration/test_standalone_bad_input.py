"""Bad input gets the right error frame, status or close code, and loses nothing else."""

import asyncio
import base64
import itertools
import os
import re
import socket
import struct
import time
import urllib.error
import urllib.request
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


async def refused_everywhere(http: HttpClient, token: str, label: str) -> None:
    """Neither the WebSocket handshake nor an HTTP call accepts `token`."""
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{http.ws_url}?token={token}")
    assert refused.value.response.status_code == 401, label
    with pytest.raises(HttpError) as http_refused:
        await http.call("GET", "/api/v1/groups", token=token)
    assert (http_refused.value.status, http_refused.value.code) == (401, "unauthorized"), label


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
        await refused_everywhere(http, token, name)
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
        assert re.fullmatch(r"[0-9a-f]{16}", caught.value.body["error"]["request_id"]), caught.value.body


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


# -- issue 14: ids, tokens, sync size, accounts --------------------------------------------------

TOO_BIG = 2**63  # one past the largest signed 64-bit id


async def test_ids_out_of_range_are_bad_frames_and_messaging_carries_on(standalone_server: Any) -> None:
    http, alice, bob, a, b = await pair(standalone_server)
    cases = {  # the JSON text as a client may write it, and the cid
        f'{{"type":"send","cid":"big-to","to":{TOO_BIG},"content":"x"}}': "big-to",
        f'{{"type":"send","cid":"big-group","group":{TOO_BIG},"content":"x"}}': "big-group",
        f'{{"type":"send","cid":"huge-to","to":{10**30},"content":"x"}}': "huge-to",
        '{"type":"send","cid":"zero-to","to":0,"content":"x"}': "zero-to",
        '{"type":"send","cid":"bool-to","to":true,"content":"x"}': "bool-to",
        '{"type":"send","cid":"float-to","to":2.0,"content":"x"}': "float-to",
        f'{{"type":"sync","after":{TOO_BIG}}}': None,
        f'{{"type":"sync","after":{10**30}}}': None,
        '{"type":"sync","after":-1}': None,
    }
    for frame, cid in cases.items():
        await a.send_frame(frame)
        error = await a.expect("error")
        assert (error["code"], error["cid"]) == ("bad_frame", cid), frame
    await a.send("after-the-bad-ones", "still flowing", to=bob.user_id)
    assert (await a.expect("ack", timeout=5))["cid"] == "after-the-bad-ones"
    assert (await b.expect("msg", timeout=5))["content"] == "still flowing"
    await a.close()
    await b.close()


NON_CANONICAL_SUBS = ["0", "-1", " 1 ", "١", "1_0", "01", "+1", str(TOO_BIG), str(10**30), "1.0"]


async def test_a_token_whose_sub_is_not_a_canonical_id_is_refused(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    await signup(http)
    secret = read_secret(standalone_server)
    for sub in NON_CANONICAL_SUBS:
        await refused_everywhere(http, forged(secret, sub=sub), sub)


async def test_token_errors_carry_no_library_text(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    secret = read_secret(standalone_server)
    tokens = {"garbage": "garbage", "sub-text": forged(secret, sub="one"), "no-exp": jwt.encode(
        {"sub": "1"}, secret, algorithm="HS256"), "expired": forged(secret, exp=int(time.time()) - 5)}
    messages = set()
    for name, token in tokens.items():
        with pytest.raises(HttpError) as refused:
            await http.call("GET", "/api/v1/groups", token=token)
        assert refused.value.status == 401, name
        messages.add(refused.value.body["error"]["message"])
    assert messages == {"invalid token", "token expired"}


async def test_a_sync_answer_is_bounded_in_bytes_and_never_closes_a_fast_reader(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "0")
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    nuls = "\x00" * 4000  # 6 bytes per character once escaped as \u0000
    for i in range(500):
        await a.send(f"n{i}", nuls, to=bob.user_id)
    for _ in range(500):
        await a.expect("ack", timeout=30)
    b = await ChatConnection.open(http.ws_url, bob.token, max_size=None)
    seen: list[int] = []
    pages = 0
    after = 0
    while True:
        await b.send_frame({"type": "sync", "after": after, "limit": 500})
        page = await b.expect("sync")
        pages += 1
        assert len(orjson.dumps(page)) <= 256 * 1024
        seen.extend(m["seq"] for m in page["messages"])
        if not page["more"]:
            break
        after = page["messages"][-1]["seq"]
    assert seen == list(range(1, 501)) and pages > 1
    assert b.close_code is None
    await a.close()
    await b.close()


NOT_EMAILS = ["a@b", "a b@c d", "<script>@x", "two@@example.com", "@example.com", "ann@", "ann@exa mple.com"]


async def test_register_refuses_what_is_not_an_email_address(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    for email in NOT_EMAILS:
        with pytest.raises(HttpError) as refused:
            await http.register(email, "correct horse", "n")
        assert (refused.value.status, refused.value.code) == (400, "bad_request"), email


async def test_emails_are_one_account_whatever_their_case(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    user_id = await http.register("Ann.Case@Example.COM", "correct horse", "Ann")
    assert (await http.login("ann.case@example.com", "correct horse")).user_id == user_id
    assert (await http.login("ANN.CASE@EXAMPLE.COM", "correct horse")).user_id == user_id
    with pytest.raises(HttpError) as taken:
        await http.register("ann.case@example.com", "correct horse", "Ann again")
    assert taken.value.status == 409


async def test_failed_logins_are_throttled_per_account(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    await http.register("victim@example.com", "correct horse", "v")
    statuses = []
    for _ in range(30):
        try:
            await http.login("victim@example.com", "wrong password")
        except HttpError as error:
            statuses.append(error.status)
            if error.status == 429:
                assert error.code == "rate_limited"
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert statuses.count(401) <= 10
    status, headers, body = await asyncio.to_thread(
        post, f"{standalone_server.url}/api/v1/login", {"email": "victim@example.com", "password": "wrong password"})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) == body["error"]["retry_after"] >= 1


def post(url: str, body: Any) -> tuple[int, Any, Any]:
    """status, headers and JSON body of a POST, whatever the status (the headers matter here)."""
    request = urllib.request.Request(url, data=orjson.dumps(body), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, orjson.loads(error.read())


# -- issue 14: acks before any policy close, the per-user rate -----------------------------------


def masked_text(payload: bytes) -> bytes:
    """One client-to-server text frame (clients must mask theirs)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def sends(to: int, cids: list[str]) -> bytes:
    return b"".join(masked_text(orjson.dumps({"type": "send", "cid": cid, "to": to, "content": f"flood {cid}"}))
                    for cid in cids)


async def test_a_flood_of_300_sends_in_one_write_gets_every_committed_message_acked(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice, bob = await signup(http), await signup(http)
    sock = await asyncio.to_thread(raw_websocket, standalone_server.port, alice.token)
    cids = [f"f{i}" for i in range(300)]
    await asyncio.to_thread(sock.sendall, sends(bob.user_id, cids))
    frames = await asyncio.to_thread(read_frames, sock, 3)
    sock.close()
    answers = [orjson.loads(payload) for opcode, payload in frames if opcode == 0x1]
    acked = [a["cid"] for a in answers if a["type"] == "ack"]
    limited = [a["cid"] for a in answers if a["type"] == "error" and a["code"] == "rate_limited"]
    stored = [m["cid"] for m in await http.history(bob.token)]
    assert sorted(stored) == sorted(acked), "every committed message is acked on the connection that sent it"
    assert len(acked) >= 100 and sorted(acked + limited) == sorted(cids)
    assert [opcode for opcode, _ in frames if opcode == 0x8] == [], "rate_limited answers are no misbehaviour"


async def test_the_4029_close_comes_after_the_acks_of_what_was_committed(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice, bob = await signup(http), await signup(http)
    sock = await asyncio.to_thread(raw_websocket, standalone_server.port, alice.token)
    cids = [f"v{i}" for i in range(80)]
    garbage = b"".join(masked_text(b"garbage") for _ in range(60))
    await asyncio.to_thread(sock.sendall, sends(bob.user_id, cids) + garbage)
    frames = await asyncio.to_thread(read_frames, sock, 10)
    sock.close()
    answers = [orjson.loads(payload) for opcode, payload in frames if opcode == 0x1]
    assert [a["code"] for a in answers if a["type"] == "error"] == ["bad_frame"] * 50
    assert sorted(a["cid"] for a in answers if a["type"] == "ack") == sorted(cids)
    assert frames[-1][0] == 0x8 and struct.unpack("!H", frames[-1][1][:2])[0] == 4029
    assert sorted(m["cid"] for m in await http.history(bob.token)) == sorted(cids)


async def test_the_send_rate_of_a_user_holds_over_all_their_connections(server_factory: Any) -> None:
    server = server_factory("--rate-limit", "1000", "--rate-burst", "1000",
                            "--user-rate-limit", "0.5", "--user-rate-burst", "30")
    http = HttpClient(server.url)
    alice, bob = await signup(http), await signup(http)
    devices = [await ChatConnection.open(http.ws_url, alice.token) for _ in range(3)]
    for d, device in enumerate(devices):
        for i in range(20):
            await device.send(f"d{d}.{i}", "from one of three devices", to=bob.user_id)
    answers = [await device.next() for device in devices for _ in range(20)]
    acked = [a for a in answers if a["type"] == "ack"]
    limited = [a for a in answers if a["type"] == "error" and a["code"] == "rate_limited"]
    assert 30 <= len(acked) <= 32 and len(acked) + len(limited) == 60
    assert all("over all your connections" in a["message"] for a in limited)
    for device in devices:
        await device.close()
