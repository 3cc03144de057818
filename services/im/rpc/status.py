"""How an `ImError` crosses the gRPC boundary and comes back as the same type.

The server aborts with a fitting gRPC status (so plain gRPC tools and proxies see something sensible),
the error's message as the status details, and its protocol code in the trailing metadata key
`im-error-code` (plus the frame's `cid`, if any, in `im-error-cid-bin`). The client rebuilds the error
from the code; a status that carries no code (the transport failed, a deadline passed, a server that is
not ours answered) is mapped from the status code alone.
"""

from __future__ import annotations

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

__all__ = ["ERROR_CID_KEY", "ERROR_CODE_KEY", "error_from_status", "error_metadata", "status_for"]

ERROR_CODE_KEY = "im-error-code"
ERROR_CID_KEY = "im-error-cid-bin"  # `-bin`: a cid is client-chosen text, not necessarily ASCII

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
    if error.cid is None:
        return ((ERROR_CODE_KEY, error.code),)
    return ((ERROR_CODE_KEY, error.code), (ERROR_CID_KEY, error.cid.encode()))


def error_from_status(
    status: grpc.StatusCode, details: str | None, trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> ImError:
    """The `ImError` a failed call stands for."""
    code: str | None = None
    cid: str | None = None
    for key, value in trailing_metadata or ():
        if key == ERROR_CODE_KEY and isinstance(value, str):
            code = value
        elif key == ERROR_CID_KEY and isinstance(value, bytes):
            cid = value.decode(errors="replace")
    message = details or ""
    if code is not None:
        return error_for_code(code, message, cid=cid)
    cls = _TYPE_BY_STATUS.get(status, Internal)
    name = status.name.lower() if isinstance(status, grpc.StatusCode) else str(status)
    return cls(f"logic call failed ({name}): {message}" if message else f"logic call failed ({name})")
