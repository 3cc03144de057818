"""One client connection after its WebSocket upgrade, driven without a task.

The WebSocket protocol itself is websockets' sans-I/O `ServerProtocol`; this class only pumps bytes
between it and the transport, refuses what the chat protocol does not speak (binary messages: 1003,
text that is not UTF-8: 1007), and hands complete text messages to the gateway. It sees the gateway
only through `SessionHub`. No coroutine lives per connection, which keeps an idle one small: measure
with `im-bench idle` (docs/benchmarks.md) before adding a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol, cast

from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.frames import CloseCode as WsCloseCode
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from im import metrics
from im.contracts.records import Caller
from im.gateway.errors import UpgradeRequired
from im.gateway.http import Request, Response, error_response
from im.gateway.settings import GatewaySettings
from im.protocol.errors import BadRequest, CloseCode, ImError
from im.protocol.frames import encode_error
from im.protocol.limits import Limits
from im.protocol.ratelimit import TokenBucket

__all__ = ["SessionHub", "WebSocketSession", "handshake"]

access_log = logging.getLogger("im.access")


class SessionHub(Protocol):
    """What a WebSocket session asks of the gateway."""

    @property
    def settings(self) -> GatewaySettings: ...

    @property
    def limits(self) -> Limits: ...

    def now(self) -> float: ...

    def session_opened(self, session: WebSocketSession) -> None: ...

    def session_closed(self, session: WebSocketSession) -> None: ...

    def on_text(self, session: WebSocketSession, data: bytes) -> None:
        """A complete text message, valid UTF-8."""


def handshake(request: Request, limits: Limits) -> tuple[ServerProtocol, bytes] | Response:
    """websockets checks the handshake; the protocol starts OPEN, as the HTTP layer parsed the request."""
    ws = ServerProtocol(state=State.OPEN, max_size=limits.max_frame_bytes)
    response = ws.accept(WsRequest(request.path, Headers(request.raw_headers)))
    if response.status_code == 101:
        return ws, response.serialize()
    error: ImError
    if response.status_code == 426:
        error = UpgradeRequired("this is the WebSocket endpoint: open it with a WebSocket handshake")
    else:
        error = BadRequest(f"bad WebSocket handshake: {ws.handshake_exc}")
    refusal = error_response(error)
    if "Upgrade" in response.headers:
        refusal.headers["Upgrade"] = response.headers["Upgrade"]
    return refusal


class WebSocketSession(asyncio.Protocol):
    __slots__ = (
        "hub", "id", "transport", "ws", "_handshake", "caller", "user_id", "token_expires_at", "bucket",
        "errors_in_a_row", "unanswered", "_close_when_answered",
        "last_seen", "awaiting_pong", "_fragments", "_closing", "_eof_sent", "_opened_at", "_frames_in",
        "_frames_out", "pushed_seq",
    )

    def __init__(self, hub: SessionHub, connection_id: int, ws: ServerProtocol, handshake_response: bytes,
                 caller: Caller, token_expires_at: int) -> None:
        self.hub = hub
        self.id = connection_id
        self.transport: asyncio.Transport | None = None
        self.ws = ws
        self._handshake: bytes | None = handshake_response
        self.caller = caller
        self.user_id = caller.user_id
        self.token_expires_at = token_expires_at
        limits = hub.limits
        self.bucket: TokenBucket | None = None
        if limits.messages_per_second is not None:
            self.bucket = TokenBucket(limits.messages_per_second, limits.message_burst, hub.now())
        self.errors_in_a_row = 0
        self.unanswered = 0
        """Sends of this connection accepted and not yet acked or refused."""
        self._close_when_answered: tuple[int, str] | None = None
        self.last_seen = 0.0
        self.awaiting_pong = False
        self._fragments: list[bytes] | None = None
        self._closing = False
        self._eof_sent = False
        self._opened_at = 0.0
        self._frames_in = 0
        self._frames_out = 0
        self.pushed_seq = 0
        """The highest inbox seq pushed on this connection: a delivery sent `again` below it is skipped."""

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self._closing

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The HTTP connection hands over its transport: answer the handshake, join the gateway."""
        self.transport = cast(asyncio.Transport, transport)
        if self._handshake is not None:
            self.transport.write(self._handshake)
            self._handshake = None
        self.last_seen = self._opened_at = self.hub.now()
        self.hub.session_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.hub.session_closed(self)
        if self.hub.settings.access_log:
            ws = self.ws
            close = ws.close_rcvd or ws.close_sent
            code = close.code if close is not None else WsCloseCode.ABNORMAL_CLOSURE
            duration = self.hub.now() - self._opened_at
            access_log.info(
                "websocket closed %d user=%d %.1fs frames in=%d out=%d", code, self.user_id, duration,
                self._frames_in, self._frames_out,
                extra={"event": "websocket_closed", "user_id": self.user_id, "connection": self.id,
                       "duration_s": round(duration, 3), "frames_in": self._frames_in,
                       "frames_out": self._frames_out, "close_code": code},
            )

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.hub.now()
        self.awaiting_pong = False
        self.ws.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._pump()
        return None

    # -- frames in ------------------------------------------------------------------------------

    def _pump(self, events: Sequence[object] | None = None) -> None:
        for event in events if events is not None else self.ws.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT:
            if frame.fin:
                self._on_message(bytes(frame.data))
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self._on_message(data)
        elif opcode is Opcode.BINARY:
            self.close(WsCloseCode.UNSUPPORTED_DATA, "frames are JSON text; binary is not accepted")
        elif opcode is Opcode.CONT:
            # Continuation of a binary message that was already refused.
            pass

    def _on_message(self, data: bytes) -> None:
        if self._closing or self._close_when_answered is not None:
            return
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.close(WsCloseCode.INVALID_DATA, "a text frame must be valid UTF-8")
                return
        self._frames_in += 1
        self.hub.on_text(self, data)

    # -- frames out -----------------------------------------------------------------------------

    def _flush(self) -> None:
        ws, transport = self.ws, self.transport
        if transport is None:
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
        limit = self.hub.limits.max_send_queue_bytes
        if limit is not None and transport.get_write_buffer_size() > limit and not self._closing:
            metrics.ERRORS.labels("slow_consumer").inc()
            self.close(CloseCode.SLOW_CONSUMER, "send queue full: reading too slowly")

    def _half_close(self, transport: asyncio.Transport) -> None:
        if transport.is_closing() or self._eof_sent:
            return
        self._eof_sent = True
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(self.hub.settings.close_timeout_seconds, transport.abort)
        else:
            transport.close()

    def send(self, data: bytes) -> None:
        ws = self.ws
        if self._closing or ws.state is not State.OPEN:
            return
        ws.send_text(data)
        self._frames_out += 1
        self._flush()

    def send_error(self, error: ImError) -> None:
        metrics.ERRORS.labels(error.code).inc()
        self.send(encode_error(error))

    def refuse_frame(self, error: ImError) -> None:
        """Answer a frame of this client that the gateway refused.

        Only invalid frames count towards the 4029 close; a temporary refusal (`rate_limited`,
        `unavailable`) asks for a resend and counts for nothing. Past the limit no further frame is
        read, and the close waits until every send in flight is answered, so nothing committed goes
        unacked on this connection (bounded by the close timeout, should logic never answer).
        """
        self.send_error(error)
        if error.temporary:
            return
        self.errors_in_a_row += 1
        limit = self.hub.limits.max_consecutive_errors
        if limit is not None and self.errors_in_a_row >= limit and self._close_when_answered is None:
            self._close_when_answered = (CloseCode.TOO_MANY_ERRORS, f"{limit} invalid frames in a row")
            if self.unanswered <= 0:
                self.close(*self._close_when_answered)
            else:
                asyncio.get_running_loop().call_later(
                    self.hub.settings.close_timeout_seconds, self.close, *self._close_when_answered)

    def answered(self) -> None:
        """One of this connection's sends was acked or refused."""
        self.unanswered -= 1
        if self._close_when_answered is not None and self.unanswered <= 0:
            self.close(*self._close_when_answered)

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the transport is dropped if the client does not finish it."""
        if self._closing or self.transport is None:
            return
        self._closing = True
        with contextlib.suppress(InvalidState):
            self.ws.send_close(code, reason)
        self._flush()
        transport = self.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(self.hub.settings.close_timeout_seconds, transport.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- timers ---------------------------------------------------------------------------------

    def on_timer(self, now: float) -> float | None:
        """Heartbeat and token expiry, from the gateway's wheel: activity only stamps `last_seen`,
        so the hot path never touches the wheel; the timer checks it when it fires."""
        if self.transport is None:
            return None
        if time.time() >= self.token_expires_at:
            self.close(CloseCode.TOKEN_EXPIRED, "token expired: log in again")
            return None
        settings = self.hub.settings
        idle = now - self.last_seen
        if idle < settings.heartbeat_interval_seconds:
            return settings.heartbeat_interval_seconds - idle
        if not self.awaiting_pong:
            self._ping()
            return settings.heartbeat_timeout_seconds
        self.close(CloseCode.HEARTBEAT_TIMEOUT, "no answer to heartbeat")
        return None

    def _ping(self) -> None:
        if self.ws.state is State.OPEN:
            self.awaiting_pong = True
            self.ws.send_ping(b"hb")
            self._flush()
