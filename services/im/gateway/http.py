"""HTTP requests and responses as the gateway's handlers see them, without I/O.

A `Request` is built by the parser layer (`im.gateway.http11`) once its head is checked; a `Response`
knows how to become bytes. Every error body a client gets is built by `error_response`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson

from im.protocol.errors import BadRequest, ImError

__all__ = ["Request", "Response", "error_response", "json_response"]


@dataclass(slots=True)
class Request:
    method: str
    path: str
    """The path as sent, still percent-encoded: routing splits it before decoding each segment."""
    query: dict[str, str]
    """Decoded query parameters (the last value of a repeated name)."""
    version: str
    """`1.0` or `1.1`."""
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with `, ` (RFC 9110 5.3)."""
    raw_headers: list[tuple[str, str]]
    keep_alive: bool
    client_address: str
    """The peer's address, or the client `X-Forwarded-For` names when the peer is a trusted proxy."""
    body: bytes = b""
    user_id: int | None = None
    """Set once the caller is authenticated, for the access log."""
    started: float = 0.0
    """`time.monotonic()` when the head was complete, for the access log's duration."""

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

    def encode(self, *, keep_alive: bool, head: bool = False) -> bytes:
        """The response's bytes; for a HEAD request without the body but with its length."""
        lines = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            *([] if self.status == HTTPStatus.NO_CONTENT else [f"Content-Type: {self.content_type}"]),
            f"Content-Length: {len(self.body)}",
            "Connection: keep-alive" if keep_alive else "Connection: close",
            "Cache-Control: no-store",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head_bytes if head else head_bytes + self.body


def json_response(status: int, body: Any) -> Response:
    return Response(status, orjson.dumps(body))


def error_response(error: ImError) -> Response:
    """The one place an error becomes the body a client reads: `{"error": {"code", "message",
    "request_id"[, "retry_after"]}}` (`ImError.client_body`), with `Retry-After` when there is one."""
    body = error.client_body()
    response = json_response(error.http_status, {"error": body})
    if "retry_after" in body:
        response.headers["Retry-After"] = str(body["retry_after"])
    return response
