"""The HTTP front door of a real `im serve`, attacked byte by byte: malformed and smuggling requests.

Every request the parser or the gateway refuses gets a status and an error code and the connection
is closed; nothing reaches a handler half-parsed, nothing is logged as an error, and the server keeps
serving everyone else.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from im.client import HttpClient
from tests.support.raw_http import exchange, request_bytes

pytestmark = pytest.mark.integration

_emails = itertools.count()

BIG = 2**63
CASES: list[tuple[str, bytes, int, str]] = [
    ("two Content-Length headers with different values",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400,
     "bad_request"),
    ("two Content-Length headers with the same value",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, "bad_request"),
    ("a bare LF inside a header value hides Transfer-Encoding",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}",
     400, "bad_request"),
    ("bare LF line endings", b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, "bad_request"),
    ("NUL in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "bad_request"),
    ("bare CR in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, "bad_request"),
    ("a control byte in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400,
     "bad_request"),
    ("DEL in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400, "bad_request"),
    ("a control byte in a header name", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX\x01A: b\r\n\r\n", 400, "bad_request"),
    ("Content-Length: superscript two (latin-1)",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", 400, "bad_request"),
    ("Content-Length: superscript two (UTF-8)",
     "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: \u00b2\r\n\r\n".encode(), 400, "bad_request"),
    ("Content-Length: -1", b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400,
     "bad_request"),
    ("Content-Length: 2^64", b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
     400, "bad_request"),
    ("HTTP/1.1 without Host", b"GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"),
    ("HTTP/1.1 with two Host headers", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request"),
    ("HTTP/1.1xyz", b"GET /healthz HTTP/1.1xyz\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("HTTP/1.9", b"GET /healthz HTTP/1.9\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    ("HTTP/2.0 in an HTTP/1 request line", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    ("HTTP/0.9 with headers", b"GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    ("a 17 KB head in one read",
     b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 80) for i in range(200))
     + b"\r\n", 431, "head_too_large"),
    ("a 100 KB header value in one read", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n",
     431, "head_too_large"),
    ("a 20 KB request target", b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431, "head_too_large"),
    ("CL.TE: Content-Length and Transfer-Encoding",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
     400, "bad_request"),
    ("TE.CL: Transfer-Encoding then Content-Length",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
     b"8\r\nSMUGGLED\r\n0\r\n\r\n", 400, "bad_request"),
    ("TE.TE: a second, obfuscated Transfer-Encoding",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
     400, "bad_request"),
    ("TE.TE: chunked, identity",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400,
     "bad_request"),
    ("Transfer-Encoding: xchunked", b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
     400, "bad_request"),
    ("a space before the colon of Transfer-Encoding",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400, "bad_request"),
    ("Transfer-Encoding in HTTP/1.0", b"POST /api/v1/login HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "bad_request"),
    ("obs-fold continuation line", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request"),
    ("a header line without a colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nXA\r\n\r\n", 400, "bad_request"),
    ("an unknown method", b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
    ("a chunk size that overflows",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400,
     "bad_request"),
    ("a body larger than the limit", b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", 413,
     "too_large"),
    ("a chunked body larger than the limit",
     b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"8000\r\n" + b"a" * 0x8000 + b"\r\n" + b"8000\r\n" + b"a" * 0x8000 + b"\r\n" + b"10\r\n" + b"a" * 16 + b"\r\n",
     413, "too_large"),
    ("a WebSocket upgrade with a body",
     b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 3\r\n\r\nabc",
     400, "bad_request"),
    ("an unknown Expect", b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n", 417,
     "expectation_failed"),
]


def expect_refusal(port: int, name: str, data: bytes, status: int, code: str) -> str | None:
    answer = exchange(port, data, timeout=5)
    got = (answer.status, answer.code, answer.closed)
    if got != (status, code, True):
        return f"{name}: expected {status} {code} and a close, got {got} ({answer.raw[:120]!r})"
    return None


async def test_every_malformed_or_smuggling_request_is_refused_with_its_status_and_closed(
    standalone_server: Any,
) -> None:
    port = standalone_server.port
    failures = [f for f in [await asyncio.to_thread(expect_refusal, port, *case) for case in CASES] if f]
    assert not failures, "\n".join(failures)
    assert (await asyncio.to_thread(exchange, port, request_bytes("GET", "/healthz", {"Host": "x"}),
                                    responses=1)).status == 200
    log = standalone_server.log()
    assert "Traceback" not in log and " ERROR " not in log, log


async def signup(server: Any) -> tuple[int, str]:
    login = await HttpClient(server.url).signup(f"edge{next(_emails)}@example.test")
    return login.user_id, login.token


async def test_ids_in_paths_and_queries_are_checked_and_segments_decoded_after_routing(
    standalone_server: Any,
) -> None:
    user_id, token = await signup(standalone_server)
    group = await HttpClient(standalone_server.url).create_group(token, "g")
    auth = {"Host": "x", "Authorization": f"Bearer {token}"}
    cases = [
        # One segment, `{group}/members` once decoded: GET /api/v1/groups/{id} with an id that is none.
        (f"/api/v1/groups/{group}%2Fmembers", 400, "bad_request"),
        (f"/api/v1/groups/{group}/members", 200, None),
        ("/api/v1/groups/\xb2/members", 400, "bad_request"),
        ("/api/v1/groups/%C2%B2/members", 400, "bad_request"),
        (f"/api/v1/groups/{BIG}/members", 400, "bad_request"),
        (f"/api/v1/groups/0{group}/members", 400, "bad_request"),
        ("/api/v1/messages?after=%C2%B2", 400, "bad_request"),
        (f"/api/v1/messages?after={BIG}", 400, "bad_request"),
        ("/api/v1/messages?limit=%C2%B2", 400, "bad_request"),
        ("/api/v1/messages?after=0&limit=5", 200, None),
        ("/" + "a" * 300 + ".html", 404, "not_found"),
        ("/../pyproject.toml", 404, "not_found"),
        ("/%2e%2e%2fconfig.py", 404, "not_found"),
        ("/metrics", 404, "not_found"),
    ]
    failures = []
    for target, status, code in cases:
        raw = request_bytes("GET", target, auth)
        answer = await asyncio.to_thread(exchange, standalone_server.port, raw, responses=1)
        if (answer.status, answer.code) != (status, code):
            failures.append(f"{target[:60]}: expected {status} {code}, got {answer.status} {answer.code}")
    assert not failures, "\n".join(failures)
    assert "Traceback" not in standalone_server.log()
