"""Every error a client can be told about, one type per protocol error code.

    ImError                      code            HTTP
    ├── BadFrame                 bad_frame       400
    ├── BadRequest               bad_request     400
    ├── Unauthorized             unauthorized    401
    ├── Forbidden                forbidden       403
    ├── NotFound                 not_found       404
    ├── Conflict                 conflict        409
    ├── TooLarge                 too_large       413
    ├── RateLimited              rate_limited    429
    ├── Unavailable              unavailable     503  (temporary: retrying later may succeed)
    └── Internal                 internal        500

A WebSocket connection that keeps misbehaving is closed with one of the `CloseCode`s.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

__all__ = [
    "BadFrame",
    "BadRequest",
    "CloseCode",
    "Conflict",
    "Forbidden",
    "ImError",
    "Internal",
    "NotFound",
    "RateLimited",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "error_for_code",
]


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    HEARTBEAT_TIMEOUT = 4000
    TOKEN_EXPIRED = 4001
    SLOW_CONSUMER = 4008
    TOO_MANY_ERRORS = 4029


class ImError(Exception):
    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    temporary: ClassVar[bool] = False

    def __init__(self, message: str, *, cid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cid = cid


class BadFrame(ImError):
    code = "bad_frame"
    http_status = 400


class BadRequest(ImError):
    code = "bad_request"
    http_status = 400


class Unauthorized(ImError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ImError):
    code = "forbidden"
    http_status = 403


class NotFound(ImError):
    code = "not_found"
    http_status = 404


class Conflict(ImError):
    code = "conflict"
    http_status = 409


class TooLarge(ImError):
    code = "too_large"
    http_status = 413


class RateLimited(ImError):
    code = "rate_limited"
    http_status = 429
    temporary = True


class Unavailable(ImError):
    code = "unavailable"
    http_status = 503
    temporary = True


class Internal(ImError):
    code = "internal"
    http_status = 500


_BY_CODE: dict[str, type[ImError]] = {
    cls.code: cls
    for cls in (
        BadFrame, BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        TooLarge, RateLimited, Unavailable, Internal,
    )
}


def error_for_code(code: str, message: str, *, cid: str | None = None) -> ImError:
    """Rebuild the typed error from its wire code (unknown codes become `Internal`)."""
    return _BY_CODE.get(code, Internal)(message, cid=cid)
