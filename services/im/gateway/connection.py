"""One client TCP connection: HTTP requests until it upgrades, then a WebSocket driven without a task.

The WebSocket protocol itself is websockets' sans-I/O `ServerProtocol`; this class only pumps bytes
between it and the transport and hands complete text messages to the gateway. No coroutine lives
per connection, which keeps an idle connection small.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from im import metrics
from im.gateway.http import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    HttpError,
    Request,
    Response,
    json_response,
    parse_head,
)
from im.protocol.errors import CloseCode, ImError
from im.protocol.frames import encode_error
from im.protocol.ratelimit import TokenBucket

if TYPE_CHECKING:
    from im.gateway.server import Gateway

__all__ = ["ClientConnection"]

log = logging.getLogger(__name__)


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "gateway", "id", "transport", "_buffer", "_busy", "ws", "user_id", "token_expires_at", "bucket",
        "errors_in_a_row", "last_seen", "awaiting_pong", "_fragments", "_closing", "_eof_sent",
    )

    def __init__(self, gateway: Gateway, connection_id: int) -> None:
        self.gateway = gateway
        self.id = connection_id
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._busy = False
        self.ws: ServerProtocol | None = None
        self.user_id = 0
        self.token_expires_at = 0
        self.bucket: TokenBucket | None = None
        self.errors_in_a_row = 0
        self.last_seen = 0.0
        self.awaiting_pong = False
        self._fragments: list[bytes] | None = None
        self._closing = False
        self._eof_sent = False

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.last_seen = self.gateway.now()
        self.gateway.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.gateway.connection_closed(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.gateway.now()
        self.awaiting_pong = False
        if self.ws is not None:
            self.ws.receive_data(data)
            self._pump()
            return
        self._buffer += data
        self._next_request()

    def eof_received(self) -> bool | None:
        if self.ws is not None:
            self.ws.receive_eof()
            self._pump()
        return None

    # -- HTTP -----------------------------------------------------------------------------------

    def _next_request(self) -> None:
        if self._busy or self.transport is None:
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._http_fail(431, "request head too large")
            return
        try:
            request = parse_head(bytes(self._buffer[: end + 4]))
            length = request.content_length
            if length > MAX_BODY_BYTES:
                raise HttpError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except HttpError as error:
            self._http_fail(error.status, error.message)
            return
        if len(self._buffer) < end + 4 + length:
            return
        request.body = bytes(self._buffer[end + 4: end + 4 + length])
        del self._buffer[: end + 4 + length]
        if request.wants_websocket and request.path == "/ws":
            self.gateway.upgrade(self, request)
            return
        self._busy = True
        self.transport.pause_reading()
        self.gateway.spawn(self._serve(request))

    @property
    def busy(self) -> bool:
        """An HTTP request is being served."""
        return self._busy

    async def _serve(self, request: Request) -> None:
        response = await self.gateway.handle_http(request)
        if self.transport is None:
            return
        keep_alive = request.keep_alive and not self.gateway.draining
        self.transport.write(response.encode(keep_alive=keep_alive))
        if not keep_alive:
            self.transport.close()
            return
        self._busy = False
        self.transport.resume_reading()
        self._next_request()

    def _http_fail(self, status: int, message: str) -> None:
        if self.transport is not None:
            response = json_response(status, {"error": {"code": "bad_request", "message": message}})
            self.transport.write(response.encode(keep_alive=False))
            self.transport.close()

    def reject_upgrade(self, response: Response) -> None:
        if self.transport is not None:
            self.transport.write(response.encode(keep_alive=False))
            self.transport.close()

    def accept_upgrade(self, request: Request, user_id: int, token_expires_at: int) -> bool:
        """Complete the WebSocket handshake for an authenticated request; False if it was not valid."""
        limits = self.gateway.limits
        ws = ServerProtocol(max_size=limits.max_frame_bytes)
        ws.receive_data(request.head + bytes(self._buffer))
        self._buffer = bytearray()
        events = ws.events_received()
        if not events or not isinstance(events[0], WsRequest):
            self._http_fail(400, "bad WebSocket handshake")
            return False
        response = ws.accept(events[0])
        ws.send_response(response)
        self.ws = ws
        self.user_id = user_id
        self.token_expires_at = token_expires_at
        if limits.messages_per_second is not None:
            self.bucket = TokenBucket(limits.messages_per_second, limits.message_burst, self.gateway.now())
        self._pump(events[1:])
        return response.status_code == 101

    # -- WebSocket ------------------------------------------------------------------------------

    def _pump(self, events: Sequence[object] | None = None) -> None:
        ws = self.ws
        assert ws is not None
        for event in events if events is not None else ws.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self.gateway.on_text(self, bytes(frame.data))
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self.gateway.on_text(self, data)

    def _flush(self) -> None:
        ws, transport = self.ws, self.transport
        if ws is None or transport is None:
            return
        for data in ws.data_to_send():
            if not data:
                # websockets asks for a half-close: a full close now could reset the connection
                # (unread client data) and lose the close frame just written.
                self._half_close(transport)
                continue
            transport.write(data)
        if ws.state is State.CLOSED:
            self._half_close(transport)
            return
        limit = self.gateway.limits.max_send_queue_bytes
        if limit is not None and transport.get_write_buffer_size() > limit and not self._closing:
            metrics.ERRORS.labels("slow_consumer").inc()
            self.close(CloseCode.SLOW_CONSUMER, "send queue full: reading too slowly")

    def _half_close(self, transport: asyncio.Transport) -> None:
        if transport.is_closing() or self._eof_sent:
            return
        self._eof_sent = True
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(self.gateway.settings.close_timeout_seconds, transport.abort)
        else:
            transport.close()

    def send(self, data: bytes) -> None:
        ws = self.ws
        if ws is None or self._closing or ws.state is not State.OPEN:
            return
        ws.send_text(data)
        self._flush()

    def send_error(self, error: ImError) -> None:
        metrics.ERRORS.labels(error.code).inc()
        self.send(encode_error(error))
        self.errors_in_a_row += 1
        limit = self.gateway.limits.max_consecutive_errors
        if limit is not None and self.errors_in_a_row >= limit:
            self.close(CloseCode.TOO_MANY_ERRORS, f"{limit} rejected frames in a row")

    def ping(self) -> None:
        if self.ws is not None and self.ws.state is State.OPEN:
            self.awaiting_pong = True
            self.ws.send_ping(b"hb")
            self._flush()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the transport is dropped if the client does not finish it."""
        if self._closing or self.transport is None:
            return
        if self.ws is None:
            self.transport.close()
            return
        self._closing = True
        with contextlib.suppress(InvalidState):
            self.ws.send_close(code, reason)
        self._flush()
        transport = self.transport
        asyncio.get_running_loop().call_later(self.gateway.settings.close_timeout_seconds, transport.abort)
