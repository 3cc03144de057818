"""Errors of the HTTP edge: what the front door refuses before (or instead of) any handler.

    ImError (im.protocol.errors)    code                    HTTP
    ├── MethodNotAllowed            method_not_allowed      405  (with `Allow`)
    ├── RequestTimeout              request_timeout         408  (head or body deadline passed)
    ├── ExpectationFailed           expectation_failed      417  (an `Expect` other than 100-continue)
    ├── UpgradeRequired             upgrade_required        426  (`/ws` without a WebSocket handshake)
    ├── HeadTooLarge                head_too_large          431
    └── VersionNotSupported         version_not_supported   505  (anything but HTTP/1.0 and HTTP/1.1)

The edge also answers with the protocol's own errors: `BadRequest` (400, anything the parser refuses),
`TooLarge` (413, a body past its limit), `Forbidden` (403, a CORS preflight from an origin not
allowed), `RateLimited` (429, too many connections from one client address) and `Unavailable` (503,
the gateway is full or draining). Every one of them is answered with `error_response`.
"""

from __future__ import annotations

from im.protocol.errors import ImError

__all__ = [
    "ExpectationFailed", "HeadTooLarge", "MethodNotAllowed", "RequestTimeout", "UpgradeRequired",
    "VersionNotSupported",
]


class MethodNotAllowed(ImError):
    code = "method_not_allowed"
    http_status = 405

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class RequestTimeout(ImError):
    code = "request_timeout"
    http_status = 408


class ExpectationFailed(ImError):
    code = "expectation_failed"
    http_status = 417


class UpgradeRequired(ImError):
    code = "upgrade_required"
    http_status = 426


class HeadTooLarge(ImError):
    code = "head_too_large"
    http_status = 431


class VersionNotSupported(ImError):
    code = "version_not_supported"
    http_status = 505
