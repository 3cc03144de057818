"""One client TCP connection while it speaks HTTP: requests in, responses out, until it upgrades.

The bytes go through a `RequestReader` (`im.gateway.http11`); this class only applies its events:
answers requests one at a time in order (reading pauses while one is served), writes `100 Continue`,
refuses what the reader refused and closes, enforces the head, body and idle deadlines from the
gateway's timing wheel, and on a WebSocket upgrade hands the transport to the protocol object the
host returns (`transport.set_protocol`), after which this object is dropped. It sees the gateway
only through `HttpHost`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol, cast

from im.gateway.errors import RequestTimeout
from im.gateway.http import Request, Response, error_response
from im.gateway.http11 import ContinueExpected, Event, Phase, Rejected, RequestReader, Upgrade
from im.gateway.settings import GatewaySettings
from im.protocol.errors import ImError, internal_error

__all__ = ["HttpConnection", "HttpHost"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("im.access")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpHost(Protocol):
    """What an HTTP connection asks of the gateway."""

    @property
    def settings(self) -> GatewaySettings: ...

    @property
    def draining(self) -> bool: ...

    def now(self) -> float: ...

    def schedule(self, connection_id: int, delay_seconds: float) -> None:
        """Call the connection's `on_timer` after about this long."""

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None: ...

    def admit(self, connection: HttpConnection, peer: str) -> ImError | None:
        """Register a new connection, or say why it is refused (the gateway is full, draining...)."""

    def forget(self, connection_id: int) -> None:
        """The connection is gone."""

    async def respond(self, request: Request) -> Response: ...

    def upgrade(self, connection_id: int, request: Request) -> Response | asyncio.Protocol:
        """The protocol that takes over this connection for a WebSocket request, or the refusal."""


class HttpConnection(asyncio.Protocol):
    __slots__ = (
        "_host", "id", "transport", "_reader", "_queue", "_busy", "_paused", "_deadline", "_idle_since",
        "_lingering", "_client_done",
    )

    def __init__(self, host: HttpHost, connection_id: int) -> None:
        self._host = host
        self.id = connection_id
        self.transport: asyncio.Transport | None = None
        self._reader: RequestReader | None = None
        self._queue: collections.deque[Event] = collections.deque()
        self._busy = False
        self._paused = False
        self._deadline = 0.0
        self._idle_since = 0.0
        self._lingering = False
        self._client_done = False

    @property
    def busy(self) -> bool:
        """A request is being answered."""
        return self._busy

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host = self._host
        peer = _peer_address(transport)
        self._reader = RequestReader(host.settings.edge, peer)
        self._idle_since = host.now()
        refusal = host.admit(self, peer)
        if refusal is not None:
            self._refuse(refusal, peer)
            return
        host.schedule(self.id, host.settings.edge.idle_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._host.forget(self.id)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except Exception:
            # A bug, not the client's bytes (those come back as events): answer 500 and close
            # rather than let asyncio log a traceback and drop the connection without a word.
            self._refuse(internal_error(f"HTTP connection {self.id} failed", log), self._reader_peer())

    def _receive(self, data: bytes) -> None:
        reader = self._reader
        if reader is None or self._lingering:
            return
        before = reader.phase
        now = self._host.now()
        events = reader.feed(data)
        after = reader.phase
        completed = any(not isinstance(event, ContinueExpected) for event in events)
        if after is not before or completed:
            edge = self._host.settings.edge
            if after is Phase.HEAD:
                self._set_deadline(now, edge.head_timeout_seconds)
            elif after is Phase.BODY:
                self._set_deadline(now, edge.body_timeout_seconds)
        self._queue.extend(events)
        self._next()

    def eof_received(self) -> bool | None:
        """The client sent all it will (a half-close): answer what it asked for, then close."""
        self._client_done = True
        return self._busy or bool(self._queue)

    # -- requests -------------------------------------------------------------------------------

    def _next(self) -> None:
        while self._queue and not self._busy and self.transport is not None and not self._lingering:
            event = self._queue.popleft()
            if isinstance(event, ContinueExpected):
                if not self._queue:
                    self.transport.write(CONTINUE)
            elif isinstance(event, Rejected):
                self._refuse(event.error, self._reader_peer())
                return
            elif isinstance(event, Upgrade):
                if event.request.method == "GET" and event.request.path == "/ws":
                    self._upgrade(event)
                    return
                self._start(event.request, keep_alive=False)
            else:
                self._start(event.request, keep_alive=event.request.keep_alive)
        transport = self.transport
        if transport is None or self._lingering:
            return
        if self._busy and not self._paused:
            self._paused = True
            transport.pause_reading()
        elif not self._busy and self._paused:
            self._paused = False
            transport.resume_reading()

    def _start(self, request: Request, *, keep_alive: bool) -> None:
        self._busy = True
        self._host.spawn(self._serve(request, keep_alive))

    async def _serve(self, request: Request, keep_alive: bool) -> None:
        host = self._host
        response = await host.respond(request)
        transport = self.transport
        if transport is None:
            return
        keep_alive = keep_alive and not host.draining and not (self._client_done and not self._queue)
        transport.write(response.encode(keep_alive=keep_alive, head=request.method == "HEAD"))
        self._log(request, response.status)
        self._busy = False
        if not keep_alive:
            self._linger()
            return
        self._idle_since = host.now()
        reader = self._reader
        if reader is not None and reader.phase is Phase.IDLE:
            host.schedule(self.id, host.settings.edge.idle_timeout_seconds)
        self._next()

    def _upgrade(self, event: Upgrade) -> None:
        transport = self.transport
        assert transport is not None
        result = self._host.upgrade(self.id, event.request)
        if isinstance(result, Response):
            transport.write(result.encode(keep_alive=False))
            self._log(event.request, result.status)
            self._linger()
            return
        self._log(event.request, 101)
        self.transport = None
        self._reader = None
        if self._paused:
            transport.resume_reading()
        transport.set_protocol(result)
        result.connection_made(transport)
        if event.trailing:
            result.data_received(event.trailing)

    def _refuse(self, error: ImError, peer: str) -> None:
        if self.transport is None:
            return
        self.transport.write(error_response(error).encode(keep_alive=False))
        if self._host.settings.access_log:
            access_log.info("%s - - %d %s", peer, error.http_status, error.code, extra={
                "client": peer, "status": error.http_status, "code": error.code, "connection": self.id})
        self._linger()

    def _linger(self) -> None:
        """Close after the response: half-close first and drain what the client still sends, so that
        unread request bytes do not turn the close into a reset that loses the response."""
        transport = self.transport
        if transport is None or self._lingering:
            return
        self._lingering = True
        self._queue.clear()
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        host = self._host
        self._deadline = host.now() + host.settings.close_timeout_seconds
        host.schedule(self.id, host.settings.close_timeout_seconds)

    # -- timers ---------------------------------------------------------------------------------

    def _set_deadline(self, now: float, seconds: float) -> None:
        self._deadline = now + seconds
        self._host.schedule(self.id, seconds)

    def on_timer(self, now: float) -> float | None:
        """Called by the gateway's wheel: close what is past its deadline, else say when to look again."""
        transport, reader = self.transport, self._reader
        if transport is None or reader is None:
            return None
        if self._lingering:
            if now >= self._deadline:
                transport.close()
                return None
            return self._deadline - now
        if reader.phase is Phase.HEAD or reader.phase is Phase.BODY:
            if now < self._deadline:
                return self._deadline - now
            part = "head" if reader.phase is Phase.HEAD else "body"
            self._refuse(RequestTimeout(f"the request {part} did not arrive in time"), self._reader_peer())
            return None
        idle_timeout = self._host.settings.edge.idle_timeout_seconds
        if self._busy:
            return idle_timeout
        idle = now - self._idle_since
        if idle < idle_timeout:
            return idle_timeout - idle
        transport.close()
        return None

    def close_if_idle(self) -> None:
        """Draining: a connection waiting for its next request is closed; one being answered finishes."""
        if self.transport is not None and not self._busy:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- access log -----------------------------------------------------------------------------

    def _reader_peer(self) -> str:
        return _peer_address(self.transport) if self.transport is not None else "-"

    def _log(self, request: Request, status: int) -> None:
        if not self._host.settings.access_log:
            return
        duration_ms = (time.monotonic() - request.started) * 1000
        user = request.user_id if request.user_id is not None else "-"
        access_log.info(
            "%s %s %s %d %.1fms user=%s", request.client_address, request.method, request.path, status,
            duration_ms, user,
            extra={"client": request.client_address, "method": request.method, "path": request.path,
                   "status": status, "duration_ms": round(duration_ms, 3), "user_id": request.user_id,
                   "connection": self.id},
        )


def _peer_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "-"
