"""The domain records that cross the gateway / logic / backend boundaries."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Group", "InboxPage", "Message", "Session", "User"]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    nickname: str


@dataclass(frozen=True, slots=True)
class Session:
    """A login: the bearer token and when it stops being accepted (unix seconds)."""

    token: str
    user_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    owner: int


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. Exactly one of `to` (private) and `group` is set; `ts` is unix ms."""

    id: int
    sender: int
    to: int | None
    group: int | None
    content: str
    cid: str
    ts: int


@dataclass(frozen=True, slots=True)
class InboxPage:
    """Part of one user's inbox: `(seq, message)` oldest first, and whether more follow."""

    entries: list[tuple[int, Message]]
    more: bool
