"""How an `ImError` crosses the gRPC boundary and comes back as the same type.

The server aborts with a fitting gRPC status (so plain gRPC tools and proxies see something sensible),
the message a client may see as the status details (an infrastructure error's detail stays in logic's
log, under its request id), and in the trailing metadata the protocol code (`im-error-code`), the
request id (`im-request-id`), the frame's `cid` if any (`im-error-cid-bin`) and, when there is one, the
seconds to wait before trying again (`im-retry-after`). The client rebuilds the error from them, so the
id a gateway's client is given is the one in logic's log line; a status that carries no code (the
transport failed, a deadline passed, a server that is not ours answered) is mapped from the status code
alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import grpc

from im.protocol.errors import (
    BadFrame,
    BadRequest,
    Conflict,
    Forbidden,
    ImError,
    Internal,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    error_for_code,
)

__all__ = ["ERROR_CID_KEY", "ERROR_CODE_KEY", "REQUEST_ID_KEY", "RETRY_AFTER_KEY", "error_from_status",
           "error_metadata", "status_for"]

ERROR_CODE_KEY = "im-error-code"
ERROR_CID_KEY = "im-error-cid-bin"  # `-bin`: a cid is client-chosen text, not necessarily ASCII
REQUEST_ID_KEY = "im-request-id"
RETRY_AFTER_KEY = "im-retry-after"

_STATUS_BY_TYPE: dict[type[ImError], grpc.StatusCode] = {
    BadFrame: grpc.StatusCode.INVALID_ARGUMENT,
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    TooLarge: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.ALREADY_EXISTS,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Internal: grpc.StatusCode.INTERNAL,
}

# Only for statuses without an `im-error-code`: these did not come from logic's own errors.
_TYPE_BY_STATUS: dict[grpc.StatusCode, type[ImError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: BadRequest,
    grpc.StatusCode.OUT_OF_RANGE: BadRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.ABORTED: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Unavailable,
}


def status_for(error: ImError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        status = _STATUS_BY_TYPE.get(cls)
        if status is not None:
            return status
    return grpc.StatusCode.INTERNAL


def error_metadata(error: ImError) -> tuple[tuple[str, str | bytes], ...]:
    metadata: list[tuple[str, str | bytes]] = [(ERROR_CODE_KEY, error.code), (REQUEST_ID_KEY, error.request_id)]
    if error.cid is not None:
        metadata.append((ERROR_CID_KEY, error.cid.encode()))
    if error.retry_after is not None:
        metadata.append((RETRY_AFTER_KEY, f"{error.retry_after:.3f}"))
    return tuple(metadata)


def error_from_status(
    status: grpc.StatusCode, details: str | None, trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> ImError:
    """The `ImError` a failed call stands for."""
    code: str | None = None
    cid: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    for key, value in trailing_metadata or ():
        if key == ERROR_CODE_KEY and isinstance(value, str):
            code = value
        elif key == ERROR_CID_KEY and isinstance(value, bytes):
            cid = value.decode(errors="replace")
        elif key == REQUEST_ID_KEY and isinstance(value, str):
            request_id = value
        elif key == RETRY_AFTER_KEY and isinstance(value, str):
            with contextlib.suppress(ValueError):
                retry_after = float(value)
    message = details or ""
    if code is not None:
        return error_for_code(code, message, cid=cid, request_id=request_id, retry_after=retry_after)
    cls = _TYPE_BY_STATUS.get(status, Internal)
    name = status.name.lower() if isinstance(status, grpc.StatusCode) else str(status)
    return cls(f"logic call failed ({name}): {message}" if message else f"logic call failed ({name})")
