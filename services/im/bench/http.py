"""A minimal asyncio HTTP/1.1 client: enough for JSON calls and `/metrics`, no dependency added.

One request per TCP connection (`Connection: close`), which every server handles the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["HttpError", "Response", "request", "ws_url"]


class HttpError(Exception):
    """The server could not be reached or answered something that is not HTTP."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def _split(base_url: str) -> tuple[str, int, str]:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// base URLs are supported, got {base_url!r}")
    return parts.hostname, parts.port or 80, parts.path.rstrip("/")


def ws_url(base_url: str, token: str) -> str:
    """The WebSocket address of a server given by its HTTP base URL."""
    host, port, prefix = _split(base_url)
    return f"ws://{host}:{port}{prefix}/ws?token={token}"


async def request(base_url: str, method: str, path: str, body: Any = None, token: str | None = None,
                  timeout: float = 30.0) -> Response:
    """Send one request and read the whole response (`Content-Length`, chunked or until EOF)."""
    host, port, prefix = _split(base_url)
    payload = b"" if body is None else orjson.dumps(body)
    lines = [f"{method} {prefix}{path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
             f"Content-Length: {len(payload)}", "Accept: application/json"]
    if body is not None:
        lines.append("Content-Type: application/json")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    try:
        return await asyncio.wait_for(_exchange(host, port, head + payload), timeout)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
        raise HttpError(f"{method} {base_url}{path}: {type(exc).__name__}: {exc}") from exc


async def _exchange(host: str, port: int, data: bytes) -> Response:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/"):
            raise HttpError(f"not an HTTP response: {status_line!r}")
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
        return Response(int(fields[1]), body)
    finally:
        writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
