"""httptools (llhttp) against h11 for the gateway's HTTP/1.1 front door.

Run: .venv/bin/python benchmarks/http_parsers.py [--rounds N]

Both parse the same requests the way the gateway would use them: one parser per connection, the
head (method, target, headers) and the body collected. Reported per request:

1. speed: a login POST with a JSON body, a browser's WebSocket upgrade GET, and 10 pipelined GETs in
   one read;
   Beside them, the gateway's own `RequestReader` (httptools plus the checks of `im.gateway.http11`,
   building `Request` objects): what a request costs the gateway before any handler. h11 serves one
   request at a time, so for the pipelined case its numbers include writing an empty response
   between requests, as a server must;
2. memory: bytes allocated per parser object (what a connection that has not upgraded holds);
3. strictness: how many of a set of smuggling and malformed requests each refuses by itself (what
   the gateway would otherwise have to check on its own).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import time
import tracemalloc
from collections.abc import Callable

import h11
import httptools

from im.gateway.http11 import RequestReader
from im.gateway.settings import EdgeLimits

LOGIN_BODY = b'{"email":"ann@example.com","password":"secret-password"}'
LOGIN = (
    b"POST /api/v1/login HTTP/1.1\r\nHost: chat.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    b"Accept: application/json\r\nAccept-Language: en-US,en;q=0.5\r\nContent-Type: application/json\r\n"
    b"Origin: https://chat.example.com\r\nConnection: keep-alive\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(LOGIN_BODY), LOGIN_BODY)
)
UPGRADE = (
    b"GET /ws?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc HTTP/1.1\r\nHost: chat.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\n"
    b"Sec-WebSocket-Version: 13\r\nOrigin: https://chat.example.com\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Connection: keep-alive, Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUpgrade: websocket\r\n\r\n"
)
PIPELINED = b"GET /api/v1/groups HTTP/1.1\r\nHost: chat.example.com\r\nAuthorization: Bearer abc\r\n\r\n" * 10

BAD = {
    "two different Content-Length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bare LF hides a header": b"POST / HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\n"
                              b"Content-Length: 3\r\n\r\nabc",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bare CR in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "Content-Length: superscript two": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \u00b2\r\n\r\n".encode(),
    "HTTP/1.1xyz": b"GET / HTTP/1.1xyz\r\nHost: x\r\n\r\n",
    "HTTP/1.9": b"GET / HTTP/1.9\r\nHost: x\r\n\r\n",
    "CL.TE": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "TE.CL": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
             b"8\r\nSMUGGLED\r\n0\r\n\r\n",
    "TE.TE obfuscated": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"
                        b"0\r\n\r\n",
    "space before colon": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "no Host in HTTP/1.1": b"GET / HTTP/1.1\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


class HttptoolsRequest:
    """The callbacks the gateway needs: target, headers, body, completion."""

    __slots__ = ("url", "headers", "body", "complete")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete += 1


def parse_httptools(data: bytes) -> int:
    request = HttptoolsRequest()
    parser = httptools.HttpRequestParser(request)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        request.complete += 1
    return request.complete


def parse_h11(data: bytes) -> int:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    complete = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            return complete
        if event is h11.PAUSED:
            # h11 serves one request at a time: a server answers it before it reads the next.
            connection.send(h11.Response(status_code=204, headers=[]))
            connection.send(h11.EndOfMessage())
            connection.start_next_cycle()
        elif isinstance(event, h11.EndOfMessage):
            complete += 1


def parse_gateway(data: bytes) -> int:
    """What the gateway runs per connection: httptools plus its own checks, into `Request`s."""
    return len(RequestReader(EdgeLimits(), "192.0.2.1").feed(data))


def speed(parse: Callable[[bytes], int], data: bytes, rounds: int, repeats: int = 5) -> float:
    """ns per request, the best of `repeats` runs: the least disturbed by whatever else runs."""
    requests = parse(data)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(rounds // repeats):
            parse(data)
        best = min(best, time.perf_counter() - started)
    return best / (rounds // repeats * requests) * 1e9


def memory_per_parser(make: Callable[[], object], count: int = 10_000) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(count)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count


def refuses_httptools(data: bytes) -> bool:
    try:
        parse_httptools(data)
    except httptools.HttpParserError:
        return True
    return False


def refuses_h11(data: bytes) -> bool:
    try:
        parse_h11(data)
    except h11.ProtocolError:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    rounds = parser.parse_args().rounds
    versions = f"httptools {httptools.__version__} (llhttp), h11 {importlib.metadata.version('h11')}"
    print(f"{versions}; best of 5 runs of {rounds // 5} each")
    print(f"{'request':28} {'httptools':>14} {'h11':>14} {'h11/httptools':>14} {'gateway reader':>15}")
    for name, data in (("login POST + JSON body", LOGIN), ("WebSocket upgrade GET", UPGRADE),
                       ("10 pipelined GETs, 1 read", PIPELINED)):
        fast = speed(parse_httptools, data, rounds)
        slow = speed(parse_h11, data, rounds)
        ours = speed(parse_gateway, data, rounds)
        print(f"{name:28} {fast:11.0f} ns {slow:11.0f} ns {slow / fast:13.1f}x {ours:12.0f} ns")
    httptools_bytes = memory_per_parser(lambda: httptools.HttpRequestParser(HttptoolsRequest()))
    h11_bytes = memory_per_parser(lambda: h11.Connection(h11.SERVER))
    ratio = h11_bytes / httptools_bytes
    print(f"{'memory per parser':28} {httptools_bytes:12.0f} B {h11_bytes:12.0f} B {ratio:13.1f}x")
    print("refused by the parser itself (the rest the gateway checks on its own):")
    for name, data in BAD.items():
        print(f"  {name:34} httptools {'refused' if refuses_httptools(data) else 'ACCEPTED':9}"
              f" h11 {'refused' if refuses_h11(data) else 'ACCEPTED'}")


if __name__ == "__main__":
    main()
