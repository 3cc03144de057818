"""What an id on the wire is: a positive integer that fits a signed 64-bit column.

Every id a client or token names (user, group, message ids, `seq`, token `sub`) is checked here, in
both forms it arrives in: a JSON number (`is_id`) and text in a path, query or claim (`parse_id`),
where only canonical ASCII decimal is accepted (no sign, no leading zero, no spaces, no `_`, no
non-ASCII digits) so that one id has exactly one spelling.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from im.protocol.errors import BadRequest

__all__ = ["MAX_ID", "is_id", "is_seq", "parse_id", "parse_seq", "require_ids", "require_seq"]

MAX_ID = 2**63 - 1
"""The largest value a signed 64-bit column (MySQL BIGINT, SQLite INTEGER) holds."""

_CANONICAL_POSITIVE = re.compile(r"[1-9][0-9]{0,18}")
_CANONICAL_NON_NEGATIVE = re.compile(r"0|[1-9][0-9]{0,18}")


def is_id(value: Any) -> TypeGuard[int]:
    """A JSON value that is an id: an `int` (not a `bool`), 1 to `MAX_ID`."""
    return type(value) is int and 1 <= value <= MAX_ID


def is_seq(value: Any) -> TypeGuard[int]:
    """A JSON value that is a position in an inbox: 0 (before the first event) to `MAX_ID`."""
    return type(value) is int and 0 <= value <= MAX_ID


def parse_id(text: str) -> int | None:
    """The id spelled by `text` in canonical decimal, or None."""
    if _CANONICAL_POSITIVE.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def parse_seq(text: str) -> int | None:
    """The inbox position spelled by `text` in canonical decimal (0 included), or None."""
    if _CANONICAL_NON_NEGATIVE.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def require_ids(**ids: Any) -> None:
    """`BadRequest` naming the first argument that is not an id (for ids passed to an API)."""
    for name, value in ids.items():
        if not is_id(value):
            raise BadRequest(f"'{name}' must be an id: an integer from 1 to {MAX_ID}")


def require_seq(name: str, value: Any) -> None:
    """`BadRequest` unless `value` is an inbox position."""
    if not is_seq(value):
        raise BadRequest(f"'{name}' must be an inbox position: an integer from 0 to {MAX_ID}")
