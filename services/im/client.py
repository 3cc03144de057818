"""A small asyncio client for the client protocol: HTTP calls and a WebSocket chat connection.

Used by the tests, the end-to-end scenarios and anyone scripting against a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["ChatConnection", "HttpClient", "HttpError", "Login"]


class HttpError(Exception):
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


class HttpClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        return await asyncio.to_thread(self._call, method, path, body, token)

    def _call(self, method: str, path: str, body: Any, token: str | None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return orjson.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                parsed = orjson.loads(payload)
            except orjson.JSONDecodeError:
                parsed = {"raw": payload.decode(errors="replace")}
            raise HttpError(error.code, parsed) from None

    async def register(self, email: str, password: str, nickname: str) -> int:
        return int((await self.call("POST", "/api/v1/register", {
            "email": email, "password": password, "nickname": nickname,
        }))["user_id"])

    async def login(self, email: str, password: str) -> Login:
        body = await self.call("POST", "/api/v1/login", {"email": email, "password": password})
        return Login(body["token"], body["user_id"], body["expires_at"])

    async def signup(self, email: str, password: str = "correct horse", nickname: str | None = None) -> Login:
        await self.register(email, password, nickname or email.split("@")[0])
        return await self.login(email, password)

    async def create_group(self, token: str, name: str) -> int:
        return int((await self.call("POST", "/api/v1/groups", {"name": name}, token))["group_id"])

    async def add_member(self, token: str, group_id: int, user_id: int) -> None:
        await self.call("POST", f"/api/v1/groups/{group_id}/members", {"user_id": user_id}, token)

    async def history(self, token: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Everything in my inbox after `after`, over HTTP, following `more`."""
        messages: list[dict[str, Any]] = []
        while True:
            page = await self.call("GET", f"/api/v1/messages?after={after}&limit={limit}", None, token)
            messages.extend(page["messages"])
            if not page["more"]:
                return messages
            after = page["messages"][-1]["seq"]

    async def members(self, token: str, group_id: int) -> list[int]:
        return list((await self.call("GET", f"/api/v1/groups/{group_id}/members", None, token))["members"])


class ChatConnection:
    """One WebSocket session; received frames are queued by type."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, token: str, **options: Any) -> ChatConnection:
        ws = await connect(f"{ws_url}?token={token}", compression=None, **options)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                await self.frames.put(orjson.loads(raw))
        except Exception:  # noqa: BLE001 - the close code tells what happened
            pass
        finally:
            self.close_code = self.ws.close_code
            await self.frames.put({"type": "_closed", "code": self.ws.close_code})

    async def send_frame(self, frame: dict[str, Any] | bytes | str) -> None:
        await self.ws.send(frame if isinstance(frame, (bytes, str)) else orjson.dumps(frame).decode())

    async def send(self, cid: str, content: str, *, to: int | None = None, group: int | None = None) -> None:
        frame: dict[str, Any] = {"type": "send", "cid": cid, "content": content}
        if group is not None:
            frame["group"] = group
        else:
            frame["to"] = to
        await self.send_frame(frame)

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def expect(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        frame = await self.next(timeout)
        if frame["type"] != kind:
            raise AssertionError(f"expected a {kind!r} frame, got {frame}")
        return frame

    async def sync_all(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Everything in my inbox after `after`, following `more`."""
        messages: list[dict[str, Any]] = []
        while True:
            await self.send_frame({"type": "sync", "after": after, "limit": limit})
            page = await self.expect("sync")
            messages.extend(page["messages"])
            if not page["more"]:
                return messages
            after = page["messages"][-1]["seq"]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
