"""The HTTP API (docs/protocol.md, `openapi.json`): one async helper per route."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Exchange", "HttpClient", "HttpError", "Login"]


class HttpError(Exception):
    """A non-2xx answer; `code` is the protocol error code of its body, when it has one."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        error = self.body.get("error")
        return error.get("code") if isinstance(error, dict) else None


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    user_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, as `HttpClient(on_exchange=...)` reports them."""

    method: str
    path: str
    status: int
    content_type: str
    body: bytes


class HttpClient:
    """Calls the HTTP API of one server. Blocking I/O runs in a thread, so the event loop keeps going."""

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.on_exchange = on_exchange

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"

    async def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Exchange:
        """Any request; the answer whatever its status."""
        return await asyncio.to_thread(self._request, method, path, body, token)

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """A JSON request; the parsed JSON answer, or `HttpError` for a non-2xx status."""
        exchange = await self.request(method, path, body, token)
        try:
            parsed = orjson.loads(exchange.body or b"null")
        except orjson.JSONDecodeError:
            parsed = {"raw": exchange.body.decode(errors="replace")}
        if not 200 <= exchange.status < 300:
            raise HttpError(exchange.status, parsed if isinstance(parsed, dict) else {"raw": parsed})
        return parsed

    def _request(self, method: str, path: str, body: Any, token: str | None) -> Exchange:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                exchange = Exchange(method, path, response.status, response.headers.get("Content-Type", ""),
                                    response.read())
        except urllib.error.HTTPError as error:
            exchange = Exchange(method, path, error.code, error.headers.get("Content-Type", ""), error.read())
        if self.on_exchange is not None:
            self.on_exchange(exchange)
        return exchange

    # -- accounts -------------------------------------------------------------------------------

    async def register(self, email: str, password: str, nickname: str) -> int:
        return int((await self.call("POST", "/api/v1/register", {
            "email": email, "password": password, "nickname": nickname,
        }))["user_id"])

    async def login(self, email: str, password: str) -> Login:
        body = await self.call("POST", "/api/v1/login", {"email": email, "password": password})
        return Login(body["token"], body["user_id"], body["expires_at"])

    async def signup(self, email: str, password: str = "correct horse", nickname: str | None = None) -> Login:
        """Register, then log in."""
        await self.register(email, password, nickname or email.split("@")[0])
        return await self.login(email, password)

    # -- groups ---------------------------------------------------------------------------------

    async def groups(self, token: str) -> list[dict[str, Any]]:
        """The groups I am in: `{"group_id", "name", "owner"}` each."""
        return list((await self.call("GET", "/api/v1/groups", None, token))["groups"])

    async def create_group(self, token: str, name: str) -> int:
        return int((await self.call("POST", "/api/v1/groups", {"name": name}, token))["group_id"])

    async def add_member(self, token: str, group_id: int, user_id: int) -> None:
        await self.call("POST", f"/api/v1/groups/{group_id}/members", {"user_id": user_id}, token)

    async def members(self, token: str, group_id: int) -> list[int]:
        return list((await self.call("GET", f"/api/v1/groups/{group_id}/members", None, token))["members"])

    async def group(self, token: str, group_id: int) -> dict[str, Any]:
        """`{"group_id", "name", "owner", "member_count"}` (members only)."""
        return dict(await self.call("GET", f"/api/v1/groups/{group_id}", None, token))

    async def rename_group(self, token: str, group_id: int, name: str) -> dict[str, Any]:
        return dict(await self.call("PATCH", f"/api/v1/groups/{group_id}", {"name": name}, token))

    async def remove_member(self, token: str, group_id: int, user_id: int) -> None:
        """The owner removes `user_id`; my own id: I leave."""
        await self.call("DELETE", f"/api/v1/groups/{group_id}/members/{user_id}", None, token)

    async def hand_over(self, token: str, group_id: int, user_id: int) -> dict[str, Any]:
        return dict(await self.call("POST", f"/api/v1/groups/{group_id}/owner", {"user_id": user_id}, token))

    async def group_reads(self, token: str, group_id: int) -> dict[int, int | None]:
        """Each member's read pointer: user id -> the last message id read (None: nothing yet)."""
        body = await self.call("GET", f"/api/v1/groups/{group_id}/reads", None, token)
        return {int(read["user_id"]): read["up_to"] for read in body["reads"]}

    # -- users ----------------------------------------------------------------------------------

    async def me(self, token: str) -> dict[str, Any]:
        """`{"user_id", "email", "nickname"}`."""
        return dict(await self.call("GET", "/api/v1/me", None, token))

    async def set_nickname(self, token: str, nickname: str) -> dict[str, Any]:
        return dict(await self.call("PATCH", "/api/v1/me", {"nickname": nickname}, token))

    async def user(self, token: str, user_id: int) -> dict[str, Any]:
        """`{"user_id", "nickname"}`."""
        return dict(await self.call("GET", f"/api/v1/users/{user_id}", None, token))

    async def users(self, token: str, user_ids: list[int]) -> list[dict[str, Any]]:
        """The profiles of those of `user_ids` that exist (at most 200 at once), ascending by id."""
        query = urllib.parse.urlencode({"ids": ",".join(str(i) for i in user_ids)})
        return list((await self.call("GET", f"/api/v1/users?{query}", None, token))["users"])

    async def lookup(self, token: str, email: str) -> dict[str, Any]:
        """The user with exactly this email address (`HttpError` 404 if none)."""
        query = urllib.parse.urlencode({"email": email})
        return dict(await self.call("GET", f"/api/v1/users/lookup?{query}", None, token))

    # -- blocks ---------------------------------------------------------------------------------

    async def block(self, token: str, user_id: int) -> None:
        await self.call("PUT", f"/api/v1/blocks/{user_id}", None, token)

    async def unblock(self, token: str, user_id: int) -> None:
        await self.call("DELETE", f"/api/v1/blocks/{user_id}", None, token)

    async def presence(self, token: str, user_ids: list[int]) -> list[dict[str, Any]]:
        """`{"user_id", "online", "last_seen"}` of each, in the order asked."""
        body = await self.call("GET", "/api/v1/presence?ids=" + ",".join(map(str, user_ids)), None, token)
        return list(body["users"])

    async def blocked(self, token: str) -> list[int]:
        return list((await self.call("GET", "/api/v1/blocks", None, token))["blocked"])

    # -- conversations --------------------------------------------------------------------------

    async def conversations(self, token: str, limit: int | None = None, cursor: str | None = None,
                            ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of my conversations, most recent first, and the cursor of the next page (None: last)."""
        query = urllib.parse.urlencode({name: value for name, value in (("limit", limit), ("cursor", cursor))
                                        if value is not None})
        page = await self.call("GET", f"/api/v1/conversations?{query}", None, token)
        return list(page["conversations"]), page["next"]

    async def all_conversations(self, token: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Every conversation of mine, following `next`."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page, cursor = await self.conversations(token, limit, cursor)
            found.extend(page)
            if cursor is None:
                return found

    async def conversation_messages(
        self, token: str, *, peer: int | None = None, group: int | None = None, before: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of a conversation's messages (`peer` or `group`), newest first, and whether older follow."""
        path = f"peer/{peer}" if peer is not None else f"group/{group}"
        query = urllib.parse.urlencode({name: value for name, value in (("before", before), ("limit", limit))
                                        if value is not None})
        page = await self.call("GET", f"/api/v1/conversations/{path}/messages?{query}", None, token)
        return list(page["messages"]), bool(page["more"])

    # -- inbox ----------------------------------------------------------------------------------

    async def messages(self, token: str, after: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], bool]:
        """One page of my inbox after `after`: the entries, and whether more follow."""
        query = urllib.parse.urlencode({"after": after, "limit": limit})
        page = await self.call("GET", f"/api/v1/messages?{query}", None, token)
        return list(page["messages"]), bool(page["more"])

    async def history(self, token: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Everything in my inbox after `after`, following `more`."""
        entries: list[dict[str, Any]] = []
        while True:
            page, more = await self.messages(token, after, limit)
            entries.extend(page)
            if not more or not page:
                return entries
            after = page[-1]["seq"]

    # -- operations -----------------------------------------------------------------------------

    async def healthy(self) -> bool:
        return (await self.request("GET", "/healthz")).status == 200

    async def ready(self) -> bool:
        return (await self.request("GET", "/readyz")).status == 200
