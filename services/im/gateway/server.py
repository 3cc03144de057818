"""The gateway: accepts connections, authenticates them, forwards sends to the bus, pushes downlinks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from im import metrics
from im.backends.base import Bus, Sessions
from im.contracts.envelopes import Downlink, Uplink
from im.contracts.logic_api import LogicApi
from im.contracts.records import Group
from im.gateway.connection import ClientConnection
from im.gateway.http import Request, Response, error_response, json_response
from im.gateway.routes import Router
from im.kits.timing_wheel import TimingWheel
from im.protocol.errors import (
    BadRequest,
    CloseCode,
    ImError,
    Internal,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    error_for_code,
)
from im.protocol.frames import (
    MessageEncoder,
    PingFrame,
    SendFrame,
    SyncFrame,
    encode_ack,
    encode_pong,
    encode_reconnect,
    encode_sync,
    message_fields,
    parse_client_frame,
)
from im.protocol.limits import Limits
from im.protocol.tokens import TokenCodec

__all__ = ["Gateway", "GatewaySettings"]

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon"}


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    gateway_id: str = "standalone"
    heartbeat_interval_seconds: float = 30.0
    """Idle time after which the gateway pings a client."""
    heartbeat_timeout_seconds: float = 10.0
    """Time a pinged client has to answer before it is closed with 4000."""
    http_idle_seconds: float = 30.0
    """Idle time after which a connection that never upgraded is closed."""
    wheel_tick_seconds: float = 0.5
    close_timeout_seconds: float = 5.0
    max_pending_uplinks: int = 20_000
    """Sends waiting for the bus; past it new sends get `unavailable`."""
    max_uplinks_per_publish: int = 1000
    uplink_linger_seconds: float = 0.0
    """How long the first send waits for others before a publish round: fewer, fuller bus messages."""
    session_refresh_seconds: float = 20.0
    drain_seconds: float = 5.0
    """Window over which draining spreads `reconnect` frames."""
    serve_web: bool = True


class Gateway:
    def __init__(
        self, api: LogicApi, tokens: TokenCodec, bus: Bus, sessions: Sessions, *,
        settings: GatewaySettings = GatewaySettings(), limits: Limits = Limits(),
        readiness: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.api = api
        self.tokens = tokens
        self.bus = bus
        self.sessions = sessions
        self.settings = settings
        self.limits = limits
        self._readiness = readiness
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time
        # Connection ids outlive this process in downlinks still queued for this gateway id, so a
        # restarted gateway starts from a fresh random base instead of 1.
        self._next_id = random.getrandbits(30) << 32
        self.connections: dict[int, ClientConnection] = {}
        self.by_user: dict[int, list[ClientConnection]] = {}
        self._wheel: TimingWheel[int] = TimingWheel(tick_seconds=settings.wheel_tick_seconds)
        self._outbox: list[Uplink] = []
        self._outbox_ready = asyncio.Event()
        self._unanswered = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.Server] = []
        self._background: list[asyncio.Task[None]] = []
        self.draining = False
        self._router = Router()
        self._add_routes()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        await self.bus.subscribe(self.settings.gateway_id, self.on_downlink)
        self._background = [
            asyncio.create_task(self._heartbeats(), name="heartbeats"),
            asyncio.create_task(self._publish_uplinks(), name="uplink-publisher"),
            asyncio.create_task(self._refresh_sessions(), name="session-refresh"),
        ]
        server = await self.loop.create_server(self._new_connection, host, port, backlog=4096, reuse_address=True)
        self._servers.append(server)
        log.info("gateway %s listening on %s:%d", self.settings.gateway_id, host, port)

    @property
    def ports(self) -> list[int]:
        return [sock.getsockname()[1] for server in self._servers for sock in server.sockets]

    async def drain(self) -> None:
        """Stop taking connections and hand the open ones back, spread over the drain window.

        Readiness fails and the listener closes at once. Each WebSocket client gets a `reconnect`
        frame naming its own moment in the window and is closed at that moment (not before the
        sends it has in flight are answered, within the window), so clients that reconnect on
        close do not all come back at once. HTTP requests being served still get their answer.
        """
        self.draining = True
        for server in self._servers:
            server.close()
        started = self.now()
        window = self.settings.drain_seconds
        closing: list[tuple[float, ClientConnection]] = []
        for connection in list(self.connections.values()):
            if connection.ws is None:
                if not connection.busy:
                    connection.close(CloseCode.GOING_AWAY, "draining")
                continue
            after = random.uniform(0, window)
            connection.send(encode_reconnect(int(after * 1000)))
            closing.append((after, connection))
        while (self._unanswered > 0 or self._outbox) and self.now() < started + window:
            await asyncio.sleep(0.05)
        for after, connection in sorted(closing, key=lambda planned: planned[0]):
            delay = started + after - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            connection.close(CloseCode.GOING_AWAY, "gateway draining")
        give_up = started + window + self.settings.close_timeout_seconds
        while self.connections and self.now() < give_up:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.abort()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- connections ----------------------------------------------------------------------------

    def _new_connection(self) -> ClientConnection:
        self._next_id += 1
        return ClientConnection(self, self._next_id)

    def connection_opened(self, connection: ClientConnection) -> None:
        self.connections[connection.id] = connection
        self._wheel.add(connection.id, self.settings.http_idle_seconds)

    def connection_closed(self, connection: ClientConnection) -> None:
        self.connections.pop(connection.id, None)
        self._wheel.cancel(connection.id)
        if connection.user_id == 0 or connection.ws is None:
            return
        metrics.GATEWAY_CONNECTIONS.dec()
        peers = self.by_user.get(connection.user_id)
        if peers is not None and connection in peers:
            peers.remove(connection)
            if not peers:
                del self.by_user[connection.user_id]
                self.spawn(self._unbind(connection.user_id))

    def upgrade(self, connection: ClientConnection, request: Request) -> None:
        if self.draining:
            connection.reject_upgrade(error_response(Unavailable("this gateway is draining; reconnect")))
            return
        token = request.query.get("token") or request.bearer_token()
        try:
            if not token:
                raise Unauthorized("a token is required: /ws?token=... or Authorization: Bearer")
            user_id, expires_at = self.tokens.verify(token)
        except ImError as error:
            metrics.ERRORS.labels(error.code).inc()
            connection.reject_upgrade(error_response(error))
            return
        if not connection.accept_upgrade(request, user_id, expires_at):
            return
        metrics.GATEWAY_CONNECTIONS.inc()
        self._wheel.add(connection.id, self.settings.heartbeat_interval_seconds)
        peers = self.by_user.get(user_id)
        if peers is None:
            self.by_user[user_id] = [connection]
            self.spawn(self._bind(user_id))
        else:
            peers.append(connection)

    async def _bind(self, user_id: int) -> None:
        try:
            await self.sessions.bind(user_id, self.settings.gateway_id)
        except Exception as exc:  # noqa: BLE001 - the user still gets acks and catches up with sync
            metrics.ERRORS.labels("unavailable").inc()
            log.warning("could not record the session of user %d: %r", user_id, exc)

    async def _unbind(self, user_id: int) -> None:
        if user_id in self.by_user:
            return
        try:
            await self.sessions.unbind(user_id, self.settings.gateway_id)
        except Exception as exc:  # noqa: BLE001 - the entry expires by its TTL
            log.warning("could not remove the session of user %d: %r", user_id, exc)

    async def _refresh_sessions(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_refresh_seconds)
            try:
                await self.sessions.refresh(list(self.by_user), self.settings.gateway_id)
            except Exception as exc:  # noqa: BLE001 - retried next period
                metrics.ERRORS.labels("unavailable").inc()
                log.warning("session refresh failed: %r", exc)

    async def _heartbeats(self) -> None:
        """One wheel drives every connection's idle, heartbeat and token-expiry timer."""
        tick = self.settings.wheel_tick_seconds
        next_tick = self.now() + tick
        while True:
            await asyncio.sleep(max(0.0, next_tick - self.now()))
            while next_tick <= self.now():
                next_tick += tick
                for connection_id in self._wheel.advance():
                    connection = self.connections.get(connection_id)
                    if connection is not None:
                        self._on_timer(connection)

    def _on_timer(self, connection: ClientConnection) -> None:
        # Activity only stamps `last_seen`; the timer checks it when it fires, so the hot path
        # never touches the wheel.
        now = self.now()
        settings = self.settings
        if connection.ws is None:
            idle_for = settings.http_idle_seconds
        else:
            if time.time() >= connection.token_expires_at:
                connection.close(CloseCode.TOKEN_EXPIRED, "token expired: log in again")
                return
            idle_for = settings.heartbeat_interval_seconds
        idle = now - connection.last_seen
        if idle < idle_for:
            self._wheel.add(connection.id, idle_for - idle)
        elif connection.ws is None:
            connection.close(CloseCode.GOING_AWAY, "idle")
        elif not connection.awaiting_pong:
            connection.ping()
            self._wheel.add(connection.id, settings.heartbeat_timeout_seconds)
        else:
            connection.close(CloseCode.HEARTBEAT_TIMEOUT, "no answer to heartbeat")

    # -- uplink ---------------------------------------------------------------------------------

    def on_text(self, connection: ClientConnection, data: bytes) -> None:
        try:
            frame = parse_client_frame(data, self.limits)
            if isinstance(frame, SendFrame):
                self._accept_send(connection, frame)
            elif isinstance(frame, SyncFrame):
                self._take_token(connection, "syncing too fast; ask again later", None)
                self.spawn(self._sync(connection, frame))
            elif isinstance(frame, PingFrame):
                connection.send(encode_pong())
        except ImError as error:
            connection.send_error(error)
            return
        connection.errors_in_a_row = 0

    def _take_token(self, connection: ClientConnection, message: str, cid: str | None) -> None:
        """Sends and syncs share the connection's rate: both cost the server a round to logic."""
        bucket = connection.bucket
        if bucket is not None and not bucket.take(self.now()):
            raise RateLimited(message, cid=cid)

    def _accept_send(self, connection: ClientConnection, frame: SendFrame) -> None:
        self._take_token(connection, "sending too fast; resend later with the same cid", frame.cid)
        if self.draining or len(self._outbox) >= self.settings.max_pending_uplinks:
            raise Unavailable("the server is busy; resend later with the same cid", cid=frame.cid)
        self._outbox.append(Uplink(
            connection.user_id, frame.cid, frame.to, frame.group, frame.content,
            self.settings.gateway_id, connection.id, time.time(),
        ))
        self._unanswered += 1
        metrics.MESSAGES_RECEIVED.inc()
        self._outbox_ready.set()

    async def _publish_uplinks(self) -> None:
        retry = 0.05
        while True:
            await self._outbox_ready.wait()
            linger = self.settings.uplink_linger_seconds
            if linger > 0 and len(self._outbox) < self.settings.max_uplinks_per_publish:
                await asyncio.sleep(linger)
            batch = self._outbox[: self.settings.max_uplinks_per_publish]
            try:
                await self.bus.publish(batch)
            except Exception as exc:  # noqa: BLE001 - kept in the outbox and published again
                metrics.ERRORS.labels("unavailable").inc()
                log.warning("publishing %d uplinks failed, retrying in %.2fs: %r", len(batch), retry, exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
                continue
            retry = 0.05
            del self._outbox[: len(batch)]
            if not self._outbox:
                self._outbox_ready.clear()

    async def _sync(self, connection: ClientConnection, frame: SyncFrame) -> None:
        try:
            page = await self.api.sync(connection.user_id, frame.after, frame.limit)
        except ImError as error:
            connection.send_error(error)
            return
        except Exception:
            log.exception("sync failed")
            connection.send_error(Internal("sync failed"))
            return
        connection.send(encode_sync(page))

    # -- downlink -------------------------------------------------------------------------------

    async def on_downlink(self, downlink: Downlink) -> None:
        connections = self.connections
        for ack in downlink.acks:
            self._unanswered -= 1
            connection = connections.get(ack.conn)
            if connection is not None:
                connection.send(encode_ack(ack.cid, ack.id, ack.seq, ack.ts))
        for rejection in downlink.rejections:
            self._unanswered -= 1
            connection = connections.get(rejection.conn)
            if connection is not None:
                connection.send_error(error_for_code(rejection.code, rejection.message, cid=rejection.cid))
        now = time.time()
        delivered = 0
        by_user = self.by_user
        for delivery in downlink.deliveries:
            encoder = MessageEncoder(delivery.message)
            latency = now - delivery.accepted_at
            for user_id, seq in delivery.recipients:
                for connection in by_user.get(user_id, ()):
                    if connection.id != delivery.origin:
                        connection.send(encoder.encode(seq))
                        delivered += 1
                        metrics.DELIVERY_LATENCY.observe(latency)
        if delivered:
            metrics.MESSAGES_DELIVERED.inc(delivered)

    # -- HTTP -----------------------------------------------------------------------------------

    async def handle_http(self, request: Request) -> Response:
        try:
            return await self._router.dispatch(request)
        except ImError as error:
            metrics.ERRORS.labels(error.code).inc()
            return error_response(error)
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path)
            metrics.ERRORS.labels("internal").inc()
            return error_response(Internal("internal error"))

    def _add_routes(self) -> None:
        route = self._router.add
        route("GET", "/healthz", self._healthz)
        route("GET", "/readyz", self._readyz)
        route("GET", "/metrics", self._metrics)
        route("POST", "/api/v1/register", self._register)
        route("POST", "/api/v1/login", self._login)
        route("GET", "/api/v1/groups", self._my_groups)
        route("POST", "/api/v1/groups", self._create_group)
        route("GET", "/api/v1/groups/{id}/members", self._list_members)
        route("POST", "/api/v1/groups/{id}/members", self._add_member)
        route("GET", "/api/v1/messages", self._messages)
        if self.settings.serve_web:
            route("GET", "/", self._static)
            route("GET", "/{file}", self._static)

    def _caller(self, request: Request) -> int:
        token = request.bearer_token()
        if not token:
            raise Unauthorized("a bearer token is required")
        return self.tokens.verify(token)[0]

    async def _healthz(self, request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        if self.draining:
            return json_response(503, {"status": "draining"})
        if self._readiness is not None:
            try:
                await asyncio.wait_for(self._readiness(), 2.0)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                return json_response(503, {"status": "unavailable", "reason": repr(exc)})
        return json_response(200, {"status": "ready", "connections": len(self.connections)})

    async def _metrics(self, request: Request) -> Response:
        return Response(200, generate_latest(), content_type=CONTENT_TYPE_LATEST)

    async def _register(self, request: Request) -> Response:
        body = request.json()
        user = await self.api.register(
            _str(body, "email"), _str(body, "password"), _str(body, "nickname")
        )
        return json_response(201, {"user_id": user.id})

    async def _login(self, request: Request) -> Response:
        body = request.json()
        session = await self.api.login(_str(body, "email"), _str(body, "password"))
        return json_response(200, {"token": session.token, "user_id": session.user_id,
                                   "expires_at": session.expires_at})

    async def _my_groups(self, request: Request) -> Response:
        groups = await self.api.my_groups(self._caller(request))
        return json_response(200, {"groups": [_group(g) for g in groups]})

    async def _create_group(self, request: Request) -> Response:
        caller = self._caller(request)
        group = await self.api.create_group(caller, _str(request.json(), "name"))
        return json_response(201, _group(group))

    async def _list_members(self, request: Request, id: str) -> Response:
        members = await self.api.list_members(self._caller(request), _path_id(id))
        return json_response(200, {"members": members})

    async def _add_member(self, request: Request, id: str) -> Response:
        caller = self._caller(request)
        body = request.json()
        user_id = body.get("user_id")
        if type(user_id) is not int or user_id < 1:
            raise BadRequest("'user_id' must be a positive integer")
        group_id = _path_id(id)
        await self.api.add_member(caller, group_id, user_id)
        return json_response(201, {"group_id": group_id, "user_id": user_id})

    async def _messages(self, request: Request) -> Response:
        caller = self._caller(request)
        after = _query_int(request, "after", 0)
        limit = min(_query_int(request, "limit", self.limits.default_sync_limit), self.limits.max_sync_limit)
        page = await self.api.sync(caller, after, limit)
        return json_response(200, {
            "messages": [message_fields(message, seq) for seq, message in page.entries], "more": page.more,
        })

    async def _static(self, request: Request, file: str = "index.html") -> Response:
        path = WEB_ROOT / file
        content_type = STATIC_TYPES.get(path.suffix)
        if content_type is None or "/" in file or not path.is_file():
            raise NotFound(f"no such page: {request.path}")
        return Response(200, path.read_bytes(), content_type=content_type)


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _path_id(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise NotFound(f"no such id: {value}")
    return int(value)


def _query_int(request: Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise BadRequest(f"'{name}' must be a non-negative integer")
    return int(value)


def _group(group: Group) -> dict[str, Any]:
    return {"group_id": group.id, "name": group.name, "owner": group.owner}
