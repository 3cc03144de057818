"""One raw WebSocket session, frames in a queue: for tests and scripts that speak the protocol by hand.

`ChatClient` (im.client.chat) is the SDK an application uses: it reconnects, resends and syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from im.client.events import FrameTrace

__all__ = ["ChatConnection"]


class ChatConnection:
    """Received frames are queued in arrival order; a closed socket queues `{"type": "_closed", "code"}`."""

    def __init__(self, ws: ClientConnection, trace: FrameTrace | None = None) -> None:
        self.ws = ws
        self.trace = trace
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, token: str, *, trace: FrameTrace | None = None,
                   **options: Any) -> ChatConnection:
        ws = await connect(f"{ws_url}?token={token}", compression=None, **options)
        return cls(ws, trace)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = orjson.loads(raw)
                if self.trace is not None:
                    self.trace("in", frame)
                await self.frames.put(frame)
        except Exception:  # noqa: BLE001 - the close code tells what happened
            pass
        finally:
            self.close_code = self.ws.close_code
            await self.frames.put({"type": "_closed", "code": self.ws.close_code})

    async def send_frame(self, frame: dict[str, Any] | bytes | str) -> None:
        if self.trace is not None and isinstance(frame, dict):
            self.trace("out", frame)
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
