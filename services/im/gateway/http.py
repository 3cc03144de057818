"""Just enough HTTP/1.1 for the gateway's JSON API, without I/O: request heads in, response bytes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from im.protocol.errors import BadRequest, ImError

__all__ = ["HttpError", "Request", "Response", "json_response", "error_response", "parse_head"]

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024


class HttpError(Exception):
    """A request that cannot even be parsed; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    head: bytes
    body: bytes = b""

    @property
    def content_length(self) -> int:
        value = self.headers.get("content-length", "0")
        if not value.isdigit():
            raise HttpError(400, "bad Content-Length")
        return int(value)

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"

    @property
    def wants_websocket(self) -> bool:
        return self.headers.get("upgrade", "").lower() == "websocket"

    def bearer_token(self) -> str | None:
        authorization = self.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            return authorization[7:].strip()
        return None

    def json(self) -> dict[str, Any]:
        try:
            body = orjson.loads(self.body or b"{}")
        except orjson.JSONDecodeError:
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, *, keep_alive: bool) -> bytes:
        reason = HTTPStatus(self.status).phrase
        lines = [
            f"HTTP/1.1 {self.status} {reason}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: keep-alive" if keep_alive else "Connection: close",
            "Cache-Control: no-store",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_response(status: int, body: Any) -> Response:
    return Response(status, orjson.dumps(body))


def error_response(error: ImError) -> Response:
    return json_response(error.http_status, {"error": {"code": error.code, "message": error.message}})


def parse_head(head: bytes) -> Request:
    """Parse a request head (everything up to and including the blank line)."""
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.rstrip("\r\n").split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(505, "only HTTP/1.x is served")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise HttpError(411, "send a Content-Length, chunked bodies are not accepted")
    parts = urlsplit(target)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    return Request(method, target, unquote(parts.path), query, headers, head)
