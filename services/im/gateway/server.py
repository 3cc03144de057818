"""The gateway core: lifecycle, the connection registry, one timing wheel, the uplink outbox, fan-out.

Each client TCP connection is one protocol object at a time: an `HttpConnection` until it upgrades,
then a `WebSocketSession`. Both see this class only through the
narrow interfaces they declare (`HttpHost`, `SessionHub`); the REST handlers (`im.gateway.api`) and
the web files (`im.gateway.static`) are routes on its router. What stays here is what every
connection shares: who is connected (and from where, for the per-address limit), the wheel that
drives every connection's timers, sends waiting for the bus, and downlinks fanned out to sessions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from im import metrics
from im.backends.base import Bus, Sessions, bus_reported_down
from im.contracts.envelopes import Downlink, Uplink, UplinkKind
from im.contracts.logic_api import LogicApi
from im.contracts.records import Caller, Message, ReadEvent
from im.gateway.api import RestApi
from im.gateway.http import Request, Response, error_response
from im.gateway.http11 import is_trusted
from im.gateway.http_connection import HttpConnection
from im.gateway.presence import PresenceHub
from im.gateway.routes import Router
from im.gateway.settings import EdgeLimits, GatewaySettings
from im.gateway.static import SCHEMAS_ROOT, StaticFiles
from im.gateway.typing import TypingThrottle
from im.gateway.websocket import WebSocketSession, handshake
from im.kits.timing_wheel import TimingWheel
from im.protocol.errors import (
    CloseCode,
    ImError,
    RateLimited,
    Unauthorized,
    Unavailable,
    error_for_code,
    internal_error,
)
from im.protocol.frames import (
    EditFrame,
    MessageEncoder,
    PingFrame,
    PresenceFrame,
    ReadFrame,
    RecallFrame,
    SendFrame,
    SyncFrame,
    TypingFrame,
    encode_ack,
    encode_event,
    encode_pong,
    encode_reconnect,
    encode_sync,
    encode_typing,
    parse_client_frame,
)
from im.protocol.limits import Limits
from im.protocol.ratelimit import TokenBucket
from im.protocol.tokens import TokenCodec

__all__ = ["EdgeLimits", "Gateway", "GatewaySettings"]

log = logging.getLogger(__name__)

Connection = HttpConnection | WebSocketSession


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
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time
        # Connection ids outlive this process in downlinks still queued for this gateway id, so a
        # restarted gateway starts from a fresh random base instead of 1.
        self._next_id = random.getrandbits(30) << 32
        self.connections: dict[int, Connection] = {}
        self.by_user: dict[int, list[WebSocketSession]] = {}
        self._user_buckets: dict[int, TokenBucket] = {}
        """The send rate of each user with a session here, shared by all of the user's sessions."""
        self._session_count = 0
        self._per_address: collections.Counter[str] = collections.Counter()
        self._address_of: dict[int, str] = {}
        self._wheel: TimingWheel[int] = TimingWheel(tick_seconds=settings.wheel_tick_seconds)
        self._typing = TypingThrottle(settings.typing_interval_seconds, self.now())
        self.presence = PresenceHub(
            api, sessions, coalesce_seconds=settings.presence_coalesce_seconds,
            recheck_seconds=settings.presence_recheck_seconds, spawn=self.spawn, on_lapsed=self._seen_lapsed)
        self._outbox: list[Uplink] = []
        self._outbox_ready = asyncio.Event()
        self._unanswered = 0
        self._received = 0
        """Uplinks accepted since the publisher last added them to `im_messages_received_total`
        (a counter's `inc` costs more than the rest of accepting a send)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.Server] = []
        self._background: list[asyncio.Task[None]] = []
        self.draining = False
        self._router = Router(cors_origins=settings.edge.cors_origins)
        RestApi(api, tokens, limits, self, readiness).add_routes(self._router)
        StaticFiles(SCHEMAS_ROOT).add_routes_under(self._router, "/api/v1")
        if settings.serve_web:
            StaticFiles().add_routes(self._router)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
        self.sessions.on_reset(self._rebind_sessions)
        self.sessions.on_reset(self._recheck_presence_later)
        self.sessions.on_announce(self.presence.announced)
        await self.bus.subscribe(self.settings.gateway_id, self.on_downlink)
        self._background = [
            asyncio.create_task(self.presence.run_rechecks(), name="presence-rechecks"),
            asyncio.create_task(self._timers(), name="timers"),
            asyncio.create_task(self._publish_uplinks(), name="uplink-publisher"),
            asyncio.create_task(self._refresh_sessions(), name="session-refresh"),
        ]
        server = await self.loop.create_server(
            self._new_connection, host, port, backlog=4096, reuse_address=True, ssl=tls,
            ssl_handshake_timeout=self.settings.edge.head_timeout_seconds if tls is not None else None,
        )
        self._servers.append(server)
        log.info("gateway %s listening on %s:%d", self.settings.gateway_id, host, port)

    @property
    def ports(self) -> list[int]:
        return [sock.getsockname()[1] for server in self._servers for sock in server.sockets]

    @property
    def session_count(self) -> int:
        return self._session_count

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
        closing: list[tuple[float, WebSocketSession]] = []
        for connection in list(self.connections.values()):
            if isinstance(connection, HttpConnection):
                connection.close_if_idle()
                continue
            after = random.uniform(0, window)
            connection.send(encode_reconnect(int(after * 1000)))
            closing.append((after, connection))
        while (self._unanswered > 0 or self._outbox) and self.now() < started + window:
            await asyncio.sleep(0.05)
        for after, session in sorted(closing, key=lambda planned: planned[0]):
            delay = started + after - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            session.close(CloseCode.GOING_AWAY, "gateway draining")
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
            connection.abort()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the registry (HttpHost and SessionHub) -------------------------------------------------

    def _new_connection(self) -> HttpConnection:
        self._next_id += 1
        return HttpConnection(self, self._next_id)

    def admit(self, connection: HttpConnection, peer: str) -> ImError | None:
        self.connections[connection.id] = connection
        edge = self.settings.edge
        if edge.max_connections is not None and len(self.connections) > edge.max_connections:
            metrics.ERRORS.labels("unavailable").inc()
            return Unavailable("this gateway is at its connection limit; try again later")
        if edge.max_connections_per_address is not None and not is_trusted(peer, edge.trusted_proxies):
            return self._count_address(connection.id, peer)
        return None

    def forget(self, connection_id: int) -> None:
        self.connections.pop(connection_id, None)
        self._wheel.cancel(connection_id)
        self._uncount_address(connection_id)

    def schedule(self, connection_id: int, delay_seconds: float) -> None:
        self._wheel.add(connection_id, delay_seconds)

    async def respond(self, request: Request) -> Response:
        return await self._router.dispatch(request)

    def upgrade(self, connection_id: int, request: Request) -> Response | WebSocketSession:
        if self.draining:
            return error_response(Unavailable("this gateway is draining; reconnect"))
        token = request.query.get("token") or request.bearer_token()
        try:
            if not token:
                raise Unauthorized("a token is required: /ws?token=... or Authorization: Bearer")
            user_id, expires_at = self.tokens.verify(token)
        except ImError as error:
            metrics.ERRORS.labels(error.code).inc()
            return error_response(error)
        request.user_id = user_id
        if self.settings.edge.max_connections_per_address is not None and connection_id not in self._address_of:
            # Behind a trusted proxy the client is known only now, from X-Forwarded-For.
            refusal = self._count_address(connection_id, request.client_address)
            if refusal is not None:
                return error_response(refusal)
        accepted = handshake(request, self.limits)
        if isinstance(accepted, Response):
            return accepted
        ws, handshake_response = accepted
        return WebSocketSession(self, connection_id, ws, handshake_response, Caller(user_id, token), expires_at)

    def session_opened(self, session: WebSocketSession) -> None:
        self.connections[session.id] = session
        self._session_count += 1
        metrics.GATEWAY_CONNECTIONS.inc()
        self._wheel.add(session.id, self.settings.heartbeat_interval_seconds)
        peers = self.by_user.get(session.user_id)
        if peers is None:
            self.by_user[session.user_id] = [session]
            limits = self.limits
            if limits.user_messages_per_second is not None:
                self._user_buckets[session.user_id] = TokenBucket(
                    limits.user_messages_per_second, limits.user_message_burst, self.now())
            self.spawn(self._bind(session.user_id))
        else:
            peers.append(session)

    def session_closed(self, session: WebSocketSession) -> None:
        self.forget(session.id)
        self.presence.unwatch(session)
        self._session_count -= 1
        metrics.GATEWAY_CONNECTIONS.dec()
        peers = self.by_user.get(session.user_id)
        if peers is not None and session in peers:
            peers.remove(session)
            if not peers:
                del self.by_user[session.user_id]
                self._user_buckets.pop(session.user_id, None)
                self._seen([session.user_id])
                self.spawn(self._unbind(session.user_id))

    def _count_address(self, connection_id: int, address: str) -> ImError | None:
        limit = self.settings.edge.max_connections_per_address
        if limit is not None and self._per_address[address] >= limit:
            metrics.ERRORS.labels("rate_limited").inc()
            return RateLimited(f"more than {limit} connections from one address")
        self._per_address[address] += 1
        self._address_of[connection_id] = address
        return None

    def _uncount_address(self, connection_id: int) -> None:
        address = self._address_of.pop(connection_id, None)
        if address is not None:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    # -- sessions in the session map ------------------------------------------------------------

    async def _bind(self, user_id: int) -> None:
        try:
            await self.sessions.bind(user_id, self.settings.gateway_id)
        except Exception as exc:  # noqa: BLE001 - the user still gets acks and catches up with sync
            metrics.ERRORS.labels("unavailable").inc()
            log.warning("could not record the session of user %d: %r", user_id, exc)
            return
        self.presence.changed_here(user_id)

    async def _unbind(self, user_id: int) -> None:
        if user_id in self.by_user:
            return
        try:
            await self.sessions.unbind(user_id, self.settings.gateway_id)
        except Exception as exc:  # noqa: BLE001 - the entry expires by its TTL
            log.warning("could not remove the session of user %d: %r", user_id, exc)
            return
        self.presence.changed_here(user_id)

    async def _rebind_sessions(self) -> None:
        await self.sessions.refresh(list(self.by_user), self.settings.gateway_id)

    async def _recheck_presence_later(self) -> None:
        """After Redis lost its data every gateway re-binds within a moment: look at presence after it."""
        self.loop.call_later(2 * self.settings.presence_coalesce_seconds + 1.0, self.presence.recheck_soon)

    def _seen(self, user_ids: list[int]) -> None:
        """Tell logic these users were last seen now (their last connection here closed)."""
        settings = self.settings
        if not settings.ephemeral_uplinks:
            return
        now = time.time()
        self._outbox.extend(Uplink(user_id, "", None, None, "", settings.gateway_id, 0, now, kind="seen")
                            for user_id in user_ids)
        self._outbox_ready.set()

    def _seen_lapsed(self, user_ids: list[int]) -> None:
        """A re-check found these users gone offline unannounced (their gateway died): record it."""
        self._seen(user_ids)

    async def _refresh_sessions(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_refresh_seconds)
            try:
                await self.sessions.refresh(list(self.by_user), self.settings.gateway_id)
            except Exception as exc:  # noqa: BLE001 - retried next period
                metrics.ERRORS.labels("unavailable").inc()
                log.warning("session refresh failed: %r", exc)

    # -- timers ---------------------------------------------------------------------------------

    async def _timers(self) -> None:
        """One wheel drives every connection's deadlines: HTTP head, body and idle, WebSocket
        heartbeat and token expiry. Each connection says when it wants to be looked at again."""
        tick = self.settings.wheel_tick_seconds
        next_tick = self.now() + tick
        while True:
            await asyncio.sleep(max(0.0, next_tick - self.now()))
            while next_tick <= self.now():
                next_tick += tick
                now = self.now()
                for connection_id in self._wheel.advance():
                    connection = self.connections.get(connection_id)
                    if connection is None:
                        continue
                    again = connection.on_timer(now)
                    if again is not None:
                        self._wheel.add(connection_id, again)

    # -- uplink ---------------------------------------------------------------------------------

    def on_text(self, session: WebSocketSession, data: bytes) -> None:
        try:
            frame = parse_client_frame(data, self.limits)
            if isinstance(frame, SendFrame):
                self._accept_uplink(session, frame.cid, to=frame.to, group=frame.group, content=frame.content)
            elif isinstance(frame, EditFrame):
                self._accept_uplink(session, frame.cid, kind="edit", message_id=frame.id, content=frame.content)
            elif isinstance(frame, RecallFrame):
                self._accept_uplink(session, frame.cid, kind="recall", message_id=frame.id)
            elif isinstance(frame, ReadFrame):
                self._accept_uplink(session, frame.cid, kind="read", to=frame.peer, group=frame.group,
                                    message_id=frame.up_to)
            elif isinstance(frame, TypingFrame):
                self._forward_typing(session, frame)
            elif isinstance(frame, PresenceFrame):
                self._take_token(session, "watching too fast; ask again later", None)
                self.spawn(self.presence.watch(session, list(frame.watch)))
            elif isinstance(frame, SyncFrame):
                self._take_token(session, "syncing too fast; ask again later", None)
                self.spawn(self._sync(session, frame))
            elif isinstance(frame, PingFrame):
                session.send(encode_pong())
        except ImError as error:
            session.refuse_frame(error)
            return
        session.errors_in_a_row = 0

    def _take_token(self, session: WebSocketSession, message: str, cid: str | None) -> None:
        """Sends and syncs share the connection's rate and the user's over all their connections:
        both cost the server a round to logic."""
        now = self.now()
        bucket = session.bucket
        if bucket is not None and not bucket.take(now):
            raise RateLimited(message, cid=cid)
        user_bucket = self._user_buckets.get(session.user_id)
        if user_bucket is not None and not user_bucket.take(now):
            if bucket is not None:
                bucket.give_back(now)
            raise RateLimited(f"{message} (over all your connections)", cid=cid)

    def _accept_uplink(
        self, session: WebSocketSession, cid: str | None, *, kind: UplinkKind = "send", to: int | None = None,
        group: int | None = None, content: str = "", message_id: int | None = None,
    ) -> None:
        """A send, edit, recall or read for logic: each costs a token of the send rate and is answered
        (ack, error, or for a read maybe nothing) before a draining connection closes."""
        if kind != "send" and not self.settings.inbox_events:
            raise Unavailable(f"'{kind}' is not available yet: the server is being upgraded", cid=cid)
        self._take_token(session, "sending too fast; resend later with the same cid", cid)
        if self.draining or len(self._outbox) >= self.settings.max_pending_uplinks:
            raise Unavailable("the server is busy; resend later with the same cid", cid=cid)
        self._outbox.append(Uplink(
            session.user_id, cid or "", to, group, content, self.settings.gateway_id, session.id, time.time(),
            kind=kind, message_id=message_id,
        ))
        self._unanswered += 1
        session.unanswered += 1
        self._received += 1
        self._outbox_ready.set()

    def _forward_typing(self, session: WebSocketSession, frame: TypingFrame) -> None:
        """A typing frame for logic to relay, unless it is dropped: throttled (one per sender and
        conversation per interval), past the send rate, or while the bus cannot carry it. Never answered."""
        settings = self.settings
        if not settings.ephemeral_uplinks or self.draining or len(self._outbox) >= settings.max_pending_uplinks:
            return
        now = self.now()
        conversation = (session.user_id, frame.to, frame.group)
        if not self._typing.due(conversation, now):
            return
        try:
            self._take_token(session, "typing too fast", None)
        except RateLimited:
            return
        self._typing.forwarded(conversation, now)
        self._outbox.append(Uplink(session.user_id, "", frame.to, frame.group, "", settings.gateway_id, session.id,
                                   time.time(), kind="typing"))
        self._outbox_ready.set()

    async def _publish_uplinks(self) -> None:
        retry = 0.05
        while True:
            await self._outbox_ready.wait()
            linger = self.settings.uplink_linger_seconds
            if linger > 0 and len(self._outbox) < self.settings.max_uplinks_per_publish:
                await asyncio.sleep(linger)
            if self._received:  # everything accepted so far is in the outbox: this round or a next one
                metrics.MESSAGES_RECEIVED.inc(self._received)
                self._received = 0
            batch = self._outbox[: self.settings.max_uplinks_per_publish]
            try:
                await self.bus.publish(batch)
            except Exception as exc:  # noqa: BLE001 - kept in the outbox and published again
                metrics.ERRORS.labels("unavailable").inc()
                level = logging.INFO if await bus_reported_down(self.bus) else logging.WARNING
                log.log(level, "publishing %d uplinks failed, retrying in %.2fs: %r", len(batch), retry, exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
                continue
            retry = 0.05
            del self._outbox[: len(batch)]
            if not self._outbox:
                self._outbox_ready.clear()

    async def _sync(self, session: WebSocketSession, frame: SyncFrame) -> None:
        try:
            page = await self.api.sync(session.caller, frame.after, frame.limit)
        except ImError as error:
            session.send_error(error)
            return
        except Exception:
            session.send_error(internal_error(f"sync of user {session.user_id} failed", log))
            return
        session.send(encode_sync(page))

    # -- downlink -------------------------------------------------------------------------------

    async def on_downlink(self, downlink: Downlink) -> None:
        connections = self.connections
        for ack in downlink.acks:
            self._unanswered -= 1
            session = connections.get(ack.conn)
            if isinstance(session, WebSocketSession):
                session.send(encode_ack(ack.cid, ack.id, ack.seq, ack.ts))
                session.answered()
        for rejection in downlink.rejections:
            self._unanswered -= 1
            session = connections.get(rejection.conn)
            if isinstance(session, WebSocketSession):
                session.send_error(error_for_code(
                    rejection.code, rejection.message, cid=rejection.cid or None, request_id=rejection.request_id))
                session.answered()
        for conn in downlink.answered:
            self._unanswered -= 1
            session = connections.get(conn)
            if isinstance(session, WebSocketSession):
                session.answered()
        now = time.time()
        delivered = 0
        by_user = self.by_user
        for delivery in downlink.deliveries:
            event = delivery.event
            encode = MessageEncoder(event).encode if isinstance(event, Message) else None
            latency = now - delivery.accepted_at
            for user_id, seq in delivery.recipients:
                for session in by_user.get(user_id, ()):
                    if session.id != delivery.origin:
                        if seq > session.pushed_seq:
                            session.pushed_seq = seq
                        elif delivery.again:
                            continue  # pushed here before the batch was redelivered
                        if encode is not None:
                            session.send(encode(seq))
                        else:
                            # A read is named from each receiver's side.
                            seen = event.seen_by(user_id) if isinstance(event, ReadEvent) else event
                            session.send(encode_event(seen, seq))
                        delivered += 1
                        metrics.DELIVERY_LATENCY.observe(latency)
        if delivered:
            metrics.MESSAGES_DELIVERED.inc(delivered)
        for notice in downlink.typing:
            frame = encode_typing(notice.sender, notice.to, notice.group)
            for user_id in notice.recipients:
                for session in by_user.get(user_id, ()):
                    session.send(frame)
