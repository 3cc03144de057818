"""HTTP at the byte level: send exactly these bytes to a server, read exactly what comes back.

For the edge tests, which must send what no well-behaved client library would (two Content-Length
headers, a bare LF, a trickled head), and see whether the server answered, how, and whether it closed.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field

import orjson

__all__ = ["Answer", "exchange", "parse_responses", "read_answer", "request_bytes"]


@dataclass
class Answer:
    """What the server sent back: the responses it wrote, and whether it closed the connection."""

    raw: bytes
    closed: bool
    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def status(self) -> int | None:
        return self.responses[0][0] if self.responses else None

    @property
    def headers(self) -> dict[str, str]:
        return self.responses[0][1] if self.responses else {}

    @property
    def body(self) -> bytes:
        return self.responses[0][2] if self.responses else b""

    @property
    def code(self) -> str | None:
        """The `error.code` of the first response's JSON body, if it has one."""
        try:
            error = orjson.loads(self.body).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return error.get("code") if isinstance(error, dict) else None


def request_bytes(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_responses(raw: bytes, head_only: bool) -> list[tuple[int, dict[str, str], bytes]]:
    """Every complete response in `raw` (Content-Length framed; `head_only` for answers to HEAD)."""
    responses = []
    at = 0
    while True:
        end = raw.find(b"\r\n\r\n", at)
        if end < 0:
            return responses
        lines = raw[at:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only or status in (100, 101, 204, 304) else int(headers.get("content-length", "0"))
        if len(raw) < end + 4 + length:
            return responses
        responses.append((status, headers, raw[end + 4:end + 4 + length]))
        at = end + 4 + length


def read_answer(sock: socket.socket, timeout: float, *, responses: int | None = None,
                head_only: bool = False) -> Answer:
    """Read until the server closes, `timeout` passes, or `responses` complete responses arrived."""
    deadline = time.monotonic() + timeout
    raw = b""
    closed = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ssl.SSLError):
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        raw += chunk
        if responses is not None and len(parse_responses(raw, head_only)) >= responses:
            break
    return Answer(raw, closed, parse_responses(raw, head_only))


def exchange(port: int, data: bytes, *, timeout: float = 5.0, responses: int | None = None,
             head_only: bool = False, host: str = "127.0.0.1") -> Answer:
    """Send `data` on a fresh connection and read what comes back (see `read_answer`)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_answer(sock, timeout, responses=responses, head_only=head_only)
