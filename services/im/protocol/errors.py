"""Every error a client can be told about, one type per protocol error code.

    ImError                      code            HTTP
    ├── BadFrame                 bad_frame       400
    ├── BadRequest               bad_request     400
    ├── Unauthorized             unauthorized    401
    ├── Forbidden                forbidden       403
    ├── NotFound                 not_found       404
    ├── Conflict                 conflict        409
    ├── TooLarge                 too_large       413
    ├── RateLimited              rate_limited    429  (temporary: retry after `retry_after` seconds)
    ├── Unavailable              unavailable     503  (temporary, infrastructure: retrying later may succeed)
    └── Internal                 internal        500  (infrastructure)

`temporary` errors are the ones a client should simply repeat later (a resent `send` with the same
`cid` is stored once); they never count as misbehaviour. The message of an *infrastructure* error is
detail for the log (it may name a host, a driver, an exception): a client is told the code's fixed
`client_message` instead. Every error carries a `request_id`; `client_body()` is what a client sees,
and it logs the detail of an infrastructure error once, under that id, so a client's report leads to
the log line (docs/protocol.md, "Errors").

A WebSocket connection that keeps misbehaving is closed with one of the `CloseCode`s.
"""

from __future__ import annotations

import logging
import math
import os
from enum import IntEnum
from typing import Any, ClassVar

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
    "internal_error",
    "new_request_id",
]

log = logging.getLogger("im.errors")


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


def new_request_id() -> str:
    """16 hex digits: unique enough to find one line in a day of logs, short enough to read out."""
    return os.urandom(8).hex()


class ImError(Exception):
    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    temporary: ClassVar[bool] = False
    client_message: ClassVar[str | None] = None
    """Set on infrastructure errors: the fixed message clients get instead of the detail."""

    def __init__(
        self, message: str, *, cid: str | None = None, request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """`request_id` is given when the error was already logged elsewhere under that id (it crossed
        from logic over gRPC); otherwise a new one is made. `retry_after` is in seconds."""
        super().__init__(message)
        self.message = message
        self.cid = cid
        self.request_id = request_id or new_request_id()
        self.retry_after = retry_after
        self._logged = request_id is not None

    @property
    def public_message(self) -> str:
        """The message a client may see: the detail, unless this is an infrastructure error."""
        return self.message if self.client_message is None else self.client_message

    def client_body(self) -> dict[str, Any]:
        """`{"code", "message", "request_id"[, "retry_after"]}`: the error as every client protocol shows it.

        The first call logs an infrastructure error's detail with its request id (a WARNING, as such
        errors come from a dependency, not from the client).
        """
        if self.client_message is not None and not self._logged:
            self._logged = True
            log.warning("%s [request_id=%s]: %s", self.code, self.request_id, self.message)
        body: dict[str, Any] = {"code": self.code, "message": self.public_message, "request_id": self.request_id}
        if self.retry_after is not None:
            body["retry_after"] = max(1, math.ceil(self.retry_after))
        return body

    def mark_logged(self) -> None:
        """The caller logged the detail itself (with a traceback, say) under `request_id`."""
        self._logged = True


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
    client_message = "the service is temporarily unavailable; try again later (resend with the same cid)"


class Internal(ImError):
    code = "internal"
    http_status = 500
    client_message = "internal error"


_BY_CODE: dict[str, type[ImError]] = {
    cls.code: cls
    for cls in (
        BadFrame, BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
        TooLarge, RateLimited, Unavailable, Internal,
    )
}


def error_for_code(
    code: str, message: str, *, cid: str | None = None, request_id: str | None = None,
    retry_after: float | None = None,
) -> ImError:
    """Rebuild the typed error from its wire code (unknown codes become `Internal`)."""
    return _BY_CODE.get(code, Internal)(message, cid=cid, request_id=request_id, retry_after=retry_after)


def internal_error(what: str, logger: logging.Logger, exc_info: BaseException | bool = True) -> Internal:
    """An `Internal` for an unexpected exception (the one being handled, or `exc_info`): its traceback
    goes to `logger` under the error's request id, so the client's id leads to it."""
    error = Internal(what)
    logger.error("%s [request_id=%s]", what, error.request_id, exc_info=exc_info)
    error.mark_logged()
    return error
