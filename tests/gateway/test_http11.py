"""The HTTP layer without sockets: bytes fed to `RequestReader` and to `HttpConnection` over a fake transport."""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from im.gateway.http import Request, Response, json_response
from im.gateway.http11 import (
    ContinueExpected,
    Phase,
    Rejected,
    RequestReader,
    RequestReady,
    Upgrade,
    client_address,
)
from im.gateway.http_connection import HttpConnection
from im.gateway.routes import Router
from im.gateway.settings import EdgeLimits, GatewaySettings
from im.protocol.errors import ImError, Unavailable
from tests.gateway.test_http_edge import CASES

LIMITS = EdgeLimits()


def read(*chunks: bytes, limits: EdgeLimits = LIMITS) -> list[Any]:
    reader = RequestReader(limits, "192.0.2.1")
    events: list[Any] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    return events


def test_every_corpus_case_is_refused_by_the_reader_with_its_code() -> None:
    for name, data, status, code in CASES:
        if status == 413 and b"Expect" in data:
            continue
        events = read(data)
        refusals = [e for e in events if isinstance(e, Rejected)]
        assert refusals, f"{name}: {events}"
        assert (refusals[0].error.http_status, refusals[0].error.code) == (status, code), name
        assert not any(isinstance(e, RequestReady) for e in events), name


def test_a_request_in_pieces_is_one_request_with_its_body() -> None:
    data = b"POST /api/v1/login?x=%C3%A9&x=2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}"
    events = read(*(data[i:i + 3] for i in range(0, len(data), 3)))
    assert len(events) == 1 and isinstance(events[0], RequestReady)
    request = events[0].request
    assert (request.method, request.path, request.version, request.body) == ("POST", "/api/v1/login", "1.1", b"{}")
    assert request.query == {"x": "2"} and request.headers["x-a"] == "1, 2" and request.keep_alive
    assert request.client_address == "192.0.2.1"


def test_pipelined_requests_come_out_in_order_and_chunked_bodies_are_joined() -> None:
    events = read(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /c HTTP/1.0\r\n\r\n")
    assert [(e.request.path, e.request.body, e.request.keep_alive) for e in events] == [
        ("/a", b"", True), ("/b", b"abcde", True), ("/c", b"", False)]


def test_the_path_stays_raw_and_the_connection_tokens_decide_keep_alive() -> None:
    [ready] = read(b"GET /api/v1/groups/1%2Fmembers HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Close\r\n\r\n")
    assert ready.request.path == "/api/v1/groups/1%2Fmembers" and not ready.request.keep_alive
    [absolute] = read(b"GET http://h/x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (absolute.request.path, absolute.request.query) == ("/x", {"y": "1"})


def test_the_head_limit_holds_on_every_read_even_for_a_line_still_arriving() -> None:
    limits = EdgeLimits(max_head_bytes=2048)
    reader = RequestReader(limits, "192.0.2.1")
    assert reader.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ") == []
    events: list[Any] = []
    for _ in range(10):
        events += reader.feed(b"a" * 500)
        if events:
            break
    assert isinstance(events[0], Rejected) and events[0].error.code == "head_too_large"
    assert reader.phase is Phase.DONE and reader.feed(b"more") == []
    # A head just under the limit, sent in pieces, is fine.
    head = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 90) for i in range(18)) + b"\r\n"
    assert len(head) < 2048
    assert [type(e) for e in read(*(head[i:i + 100] for i in range(0, len(head), 100)), limits=limits)] == [
        RequestReady]


def test_expect_100_continue_is_an_event_before_the_body() -> None:
    reader = RequestReader(LIMITS, "192.0.2.1")
    head = reader.feed(b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert [type(e) for e in head] == [ContinueExpected] and reader.phase is Phase.BODY
    assert [type(e) for e in reader.feed(b"{}")] == [RequestReady]
    old = read(b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}")
    assert [type(e) for e in old] == [RequestReady], "HTTP/1.0 clients do not wait for 100"


def test_an_upgrade_hands_over_the_bytes_after_the_head() -> None:
    [upgrade] = read(b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85abc")
    assert isinstance(upgrade, Upgrade) and upgrade.request.path == "/ws" and upgrade.trailing == b"\x81\x85abc"


def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() -> None:
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address("10.1.2.3", "203.0.113.5, 10.9.9.9", trusted) == "203.0.113.5"
    assert client_address("10.1.2.3", "198.51.100.1, 203.0.113.5", trusted) == "203.0.113.5"
    assert client_address("192.0.2.7", "203.0.113.5", trusted) == "192.0.2.7"
    assert client_address("10.1.2.3", "not-an-address", trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", None, trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", "203.0.113.5", ()) == "10.1.2.3"


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = self.eof = self.paused = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.1", 4242) if name == "peername" else default

    def abort(self) -> None:
        self.closed = True


class FakeHost:
    """The gateway as `HttpConnection` sees it, with a router holding a few routes."""

    def __init__(self, settings: GatewaySettings = GatewaySettings(access_log=False)) -> None:
        self.settings = settings
        self.draining = False
        self.clock = 100.0
        self.timers: dict[int, float] = {}
        self.tasks: list[asyncio.Task[Any]] = []
        self.refuse: ImError | None = None
        self.router = Router()
        self.seen: list[Request] = []

        async def echo(request: Request) -> Response:
            self.seen.append(request)
            return json_response(200, {"path": request.path, "body": request.body.decode()})

        self.router.add("GET", "/echo", echo)
        self.router.add("POST", "/echo", echo)

    def now(self) -> float:
        return self.clock

    def schedule(self, connection_id: int, delay_seconds: float) -> None:
        self.timers[connection_id] = self.clock + delay_seconds

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coroutine))

    def admit(self, connection: HttpConnection, peer: str) -> ImError | None:
        return self.refuse

    def forget(self, connection_id: int) -> None:
        pass

    async def respond(self, request: Request) -> Response:
        return await self.router.dispatch(request)

    def upgrade(self, connection_id: int, request: Request) -> Response | asyncio.Protocol:
        return json_response(401, {"error": {"code": "unauthorized", "message": "no"}})

    async def settle(self) -> None:
        while self.tasks:
            await self.tasks.pop(0)


def open_connection(host: FakeHost) -> tuple[HttpConnection, FakeTransport]:
    connection, transport = HttpConnection(host, 1), FakeTransport()
    connection.connection_made(transport)
    return connection, transport


async def test_pipelined_requests_are_answered_in_order_with_reading_paused_between() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    connection.data_received(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\nPOST /echo HTTP/1.1\r\nHost: h\r\n"
                             b"Content-Length: 3\r\n\r\nabcHEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n")
    assert transport.paused
    await host.settle()
    await host.settle()
    await host.settle()
    responses = bytes(transport.written).split(b"HTTP/1.1 ")[1:]
    assert [r.split(b"\r\n")[0] for r in responses] == [b"200 OK"] * 3
    assert responses[1].endswith(b'{"path":"/echo","body":"abc"}')
    assert responses[2].endswith(b"\r\n\r\n") and b"Content-Length: 26" in responses[2], "HEAD: length, no body"
    assert not transport.paused and not transport.closed


async def test_a_refusal_is_answered_then_the_connection_half_closes_and_drains() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    connection.data_received(b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 400 Bad Request") and b"Connection: close" in transport.written
    assert transport.eof and not transport.closed
    connection.data_received(b"whatever the client still sends is read and dropped")
    assert connection.on_timer(host.clock + host.settings.close_timeout_seconds) is None and transport.closed
    assert host.seen == []


async def test_the_head_deadline_does_not_move_when_bytes_trickle_in() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    head_timeout = host.settings.edge.head_timeout_seconds
    connection.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
    for _ in range(int(head_timeout) * 2 - 1):
        host.clock += 0.5
        connection.data_received(b"a")
        assert connection.on_timer(host.clock) is not None
    host.clock += 0.6
    assert connection.on_timer(host.clock) is None
    assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout")
    assert b'"request_timeout"' in transport.written


async def test_the_body_deadline_runs_from_the_end_of_the_head() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    connection.data_received(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
    host.clock += host.settings.edge.body_timeout_seconds - 1
    connection.data_received(b"cd")
    assert connection.on_timer(host.clock) == pytest.approx(1.0)
    host.clock += 1
    assert connection.on_timer(host.clock) is None and b"408" in transport.written.split(b"\r\n")[0]


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    connection.data_received(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
    await host.settle()
    idle = host.settings.edge.idle_timeout_seconds
    assert connection.on_timer(host.clock + idle - 1) == pytest.approx(1.0)
    assert connection.on_timer(host.clock + idle) is None and transport.closed


async def test_expect_100_continue_is_written_before_the_body_arrives() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    connection.data_received(b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert bytes(transport.written) == b"HTTP/1.1 100 Continue\r\n\r\n"
    connection.data_received(b"ok")
    await host.settle()
    assert transport.written.endswith(b'{"path":"/echo","body":"ok"}')


async def test_a_refused_admission_is_answered_at_once() -> None:
    host = FakeHost()
    host.refuse = Unavailable("full")
    _, transport = open_connection(host)
    assert transport.written.startswith(b"HTTP/1.1 503 Service Unavailable") and transport.eof


async def test_nothing_raises_out_of_data_received_whatever_the_bytes() -> None:
    rng = random.Random(8)
    pieces = [case[1] for case in CASES] + [b"\r\n", b"\x00", b"GET / HTTP/1.1\r\n", b":", b" ", b"\xff"]
    for _ in range(300):
        host = FakeHost()
        connection, transport = open_connection(host)
        for _ in range(rng.randint(1, 6)):
            piece = rng.choice(pieces)
            cut = rng.randint(0, len(piece))
            connection.data_received(piece[:cut])
            connection.data_received(piece[cut:])
        await host.settle()
        assert transport.written == b"" or transport.written.startswith(b"HTTP/1.1 ")


async def test_a_client_that_half_closes_after_its_request_still_gets_the_answer() -> None:
    host = FakeHost()
    connection, transport = open_connection(host)
    connection.data_received(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
    assert connection.eof_received() is True, "the transport stays open for the answer"
    await host.settle()
    assert transport.written.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in transport.written
    assert transport.eof
