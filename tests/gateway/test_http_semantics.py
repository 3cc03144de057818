"""HTTP semantics a client expects of a real `im serve`: keep-alive, 100-continue, HEAD, OPTIONS, CORS."""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

import orjson
import pytest

from im.client import HttpClient
from tests.support.raw_http import exchange, read_answer, request_bytes

pytestmark = pytest.mark.integration

_emails = itertools.count()


def two_requests_on_one_connection(port: int, first: bytes, second: bytes) -> tuple[Any, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(first)
        one = read_answer(sock, 5, responses=1)
        if one.closed:
            return one, None
        sock.sendall(second)
        return one, read_answer(sock, 5, responses=1)


async def test_keep_alive_follows_the_version_and_the_connection_tokens(standalone_server: Any) -> None:
    port = standalone_server.port
    healthz = request_bytes("GET", "/healthz", {"Host": "x"})

    plain_10 = await asyncio.to_thread(exchange, port, b"GET /healthz HTTP/1.0\r\n\r\n", timeout=5)
    assert plain_10.status == 200 and plain_10.headers["connection"] == "close" and plain_10.closed

    one, two = await asyncio.to_thread(two_requests_on_one_connection, port,
                                       b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", healthz)
    assert one.headers["connection"] == "keep-alive" and not one.closed and two.status == 200

    for tokens in ("keep-alive, close", "Upgrade-Insecure, CLOSE", "close"):
        answer = await asyncio.to_thread(
            exchange, port, request_bytes("GET", "/healthz", {"Host": "x", "Connection": tokens}), timeout=5)
        assert answer.status == 200 and answer.headers["connection"] == "close" and answer.closed, tokens
    closing_10 = await asyncio.to_thread(
        exchange, port, b"GET /healthz HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", timeout=5)
    assert closing_10.closed

    one, two = await asyncio.to_thread(two_requests_on_one_connection, port, healthz, healthz)
    assert one.headers["connection"] == "keep-alive" and two.status == 200


def expect_continue(port: int, body: bytes, headers: dict[str, str]) -> tuple[Any, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes("POST", "/api/v1/login", {"Host": "x", "Expect": "100-continue",
                                                              "Content-Length": str(len(body)), **headers}))
        interim = read_answer(sock, 5, responses=1)
        if interim.status != 100:
            return interim, read_answer(sock, 5)
        sock.sendall(body)
        return interim, read_answer(sock, 5, responses=1)


async def test_expect_100_continue_is_answered_before_the_body_is_sent(standalone_server: Any) -> None:
    body = orjson.dumps({"email": "nobody@example.test", "password": "whatever1"})
    interim, final = await asyncio.to_thread(expect_continue, standalone_server.port, body, {})
    assert interim.status == 100
    assert final.status == 401 and final.code == "unauthorized"

    too_big, after = await asyncio.to_thread(expect_continue, standalone_server.port, b"x" * 70_000, {})
    assert too_big.status == 413 and too_big.code == "too_large"
    assert after.closed and not after.raw, "nothing more after the refusal, and the connection closed"


async def test_head_answers_every_get_route_like_get_without_the_body(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    login = await http.signup(f"head{next(_emails)}@example.test")
    group = await http.create_group(login.token, "g")
    port = standalone_server.port
    auth = {"Host": "x", "Authorization": f"Bearer {login.token}"}
    for path in ("/healthz", "/readyz", "/", "/index.html", "/api/v1/groups", f"/api/v1/groups/{group}/members",
                 "/api/v1/messages?after=0"):
        got = await asyncio.to_thread(exchange, port, request_bytes("GET", path, auth), responses=1)
        head = await asyncio.to_thread(exchange, port, request_bytes("HEAD", path, auth), responses=1,
                                       head_only=True)
        assert got.status == head.status == 200, path
        assert head.headers["content-length"] == str(len(got.body)) and got.body, path
        assert head.raw.endswith(b"\r\n\r\n"), f"HEAD {path} sent a body"
    unknown = await asyncio.to_thread(exchange, port, request_bytes("HEAD", "/api/v1/nothing", auth), responses=1,
                                      head_only=True)
    assert unknown.status == 404 and unknown.raw.endswith(b"\r\n\r\n")


async def test_a_method_a_route_does_not_take_gets_405_with_allow(standalone_server: Any) -> None:
    answer = await asyncio.to_thread(
        exchange, standalone_server.port, request_bytes("DELETE", "/api/v1/login", {"Host": "x"}), responses=1)
    assert answer.status == 405 and answer.code == "method_not_allowed"
    assert answer.headers["allow"] == "OPTIONS, POST"
    options = await asyncio.to_thread(
        exchange, standalone_server.port, request_bytes("OPTIONS", "/api/v1/groups", {"Host": "x"}), responses=1)
    assert options.status == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def preflight(port: int, origin: str, method: str = "POST", path: str = "/api/v1/login") -> Any:
    return exchange(port, request_bytes("OPTIONS", path, {
        "Host": "chat.example.test", "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, authorization"}), responses=1)


async def test_cors_is_same_origin_only_by_default(standalone_server: Any) -> None:
    answer = await asyncio.to_thread(preflight, standalone_server.port, "https://elsewhere.example")
    assert answer.status == 403 and answer.code == "forbidden"
    assert "access-control-allow-origin" not in answer.headers
    simple = await asyncio.to_thread(exchange, standalone_server.port, request_bytes(
        "GET", "/healthz", {"Host": "x", "Origin": "https://elsewhere.example"}), responses=1)
    assert simple.status == 200 and "access-control-allow-origin" not in simple.headers


async def test_cors_preflight_and_requests_from_an_allowed_origin(server_factory: Any) -> None:
    origin = "https://app.example.test"
    server = server_factory("--cors-origins", f"{origin}, https://other.example.test")
    answer = await asyncio.to_thread(preflight, server.port, origin)
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == origin
    assert answer.headers["access-control-allow-methods"] == "OPTIONS, POST"
    assert {h.strip() for h in answer.headers["access-control-allow-headers"].lower().split(",")} >= {
        "authorization", "content-type"}
    assert "origin" in answer.headers["vary"].lower()

    login = await asyncio.to_thread(exchange, server.port, request_bytes(
        "POST", "/api/v1/login", {"Host": "x", "Origin": origin, "Content-Type": "application/json",
                                  "Content-Length": "2"}, b"{}"), responses=1)
    assert login.status == 400 and login.headers["access-control-allow-origin"] == origin

    wrong_method = await asyncio.to_thread(preflight, server.port, origin, "DELETE")
    assert wrong_method.status == 403
    stranger = await asyncio.to_thread(preflight, server.port, "https://evil.example.test")
    assert stranger.status == 403 and "access-control-allow-origin" not in stranger.headers
