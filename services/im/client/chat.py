"""`ChatClient`: a WebSocket session that survives the network and the server (docs/clients.md).

The rules it follows are those of docs/protocol.md:
- every send, edit and recall carries a `cid` and stays in the outbox (saved) until its `ack`; after
  a reconnect or a temporary error it is sent again with the same `cid`, which the server applies once;
- a read pointer moved while offline is sent once connected (the latest per conversation); a read
  on a connection that breaks before the server took it is lost, like the view that caused it;
- the highest `seq` handed to the application is saved; after connecting, and when a gap in the
  seqs lasts, `sync` fetches what is missing; each seq reaches the application once;
- a closed connection is reopened after a jittered exponential backoff, or when a `reconnect` frame
  says, and a refused token is exchanged for a new login when the credentials allow it;
- the users watched for presence are watched again on every new connection; typing frames go out at
  most once per conversation and typing interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from im.client.events import (
    Acked,
    Changed,
    Connected,
    Disconnected,
    Edited,
    Event,
    FrameTrace,
    InboxEvent,
    Message,
    Presence,
    PresenceUpdate,
    Recalled,
    Received,
    ReconnectRequested,
    SendFailed,
    ServerError,
    SessionEnded,
    Synced,
    TypingNotice,
    UnknownFrame,
    change_from_frame,
)
from im.client.http import HttpClient, HttpError, Login
from im.client.state import FileStore, PendingSend, SavedState, SeqTracker, Store, default_store_path
from im.protocol.errors import CloseCode, Internal, RateLimited, Unavailable
from im.protocol.frames import MAX_WATCHED
from im.protocol.ids import is_id

__all__ = ["ChatClient", "ClientOptions", "Credentials", "Outgoing", "ReconnectPolicy", "SendRefused"]

log = logging.getLogger(__name__)

Credentials = Login | Callable[[], Awaitable[Login]]
"""A login, or a coroutine function that logs in (called again whenever the token is refused)."""

TEMPORARY_CODES = frozenset({RateLimited.code, Unavailable.code})
WATCH_AGAIN_CODES = TEMPORARY_CODES | {Internal.code}
"""An error without a cid may answer a presence watch (rate limited, or its snapshot failed): watch again."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Delays between connection attempts: "equal jitter" exponential backoff."""

    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    stable_after_seconds: float = 5.0
    """A connection open this long resets the backoff to `first_delay_seconds`."""

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Attempt 0 waits 0.25–0.5 s by default, each next one up to twice as long, capped."""
        ceiling: float = min(self.max_delay_seconds, self.first_delay_seconds * 2.0 ** min(attempt, 32))
        return ceiling / 2 + rand() * ceiling / 2


@dataclass(frozen=True, slots=True)
class ClientOptions:
    reconnect: ReconnectPolicy = ReconnectPolicy()
    sync_limit: int = 200
    """Entries asked for per `sync` page (the server serves at most 500)."""
    gap_grace_seconds: float = 0.5
    """How long a gap in the seqs may last before a sync fills it (pushes of one batch may come out of order)."""
    retry_temporary_seconds: float = 3.0
    """Wait after `rate_limited` / `unavailable` before sending again."""
    max_in_flight: int = 64
    """Sends transmitted and not yet answered at most; the rest wait in the outbox."""
    max_unanswered: int | None = 5
    """A send transmitted this often without any answer fails as `unavailable` (None: never)."""
    open_timeout_seconds: float = 10.0
    save_delay_seconds: float = 0.1
    """The inbox position is saved this long after it moves (sends are saved at once)."""
    max_frame_bytes: int = 16 * 1024 * 1024
    """Largest frame accepted from the server (a sync page of 500 long messages is ~2 MB)."""
    typing_interval_seconds: float = 3.0
    """At most one `typing` frame per conversation this often (the server forwards at most one per
    `IM_TYPING_INTERVAL_SECONDS`, 3 s by default)."""


class SendRefused(Exception):
    """Raised by `await outgoing` when the server refused the send for good."""

    def __init__(self, cid: str, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.cid = cid
        self.code = code
        self.message = message


Answer = TypeVar("Answer", Message, Acked)


class Outgoing(Generic[Answer]):
    """One send, edit or recall: `await outgoing` gives the stored `Message` (a send) or the `Acked`
    event (an edit or recall) once acked, or raises `SendRefused`."""

    def __init__(self, cid: str, future: asyncio.Future[Answer]) -> None:
        self.cid = cid
        self.future: asyncio.Future[Answer] = future

    def __await__(self) -> Generator[Any, None, Answer]:
        return self.future.__await__()


class ChatClient:
    """One user's chat session on one server; use `async with ChatClient(...) as client`."""

    def __init__(
        self, base_url: str, credentials: Credentials, *, store: Store | None = None,
        options: ClientOptions = ClientOptions(), trace: FrameTrace | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.http = HttpClient(base_url)
        self.options = options
        self.trace = trace
        self._credentials = credentials
        self._store = store
        self._rand = rand
        self.login: Login | None = credentials if isinstance(credentials, Login) else None
        self._seen = SeqTracker()
        """Seqs received (dedupe, gaps); may run ahead of `_handed`."""
        self._handed = SeqTracker()
        """Seqs the application has taken from `events()`: what is saved."""
        self._outbox: dict[str, PendingSend] = {}
        self._waiters: dict[str, asyncio.Future[Any]] = {}
        self._reads: dict[tuple[str, int], int] = {}
        """Read pointers to send once connected: ("peer" | "group", id) -> message id."""
        self._watched: tuple[int, ...] = ()
        self._typing_sent_at: dict[tuple[str, int], float] = {}
        """("to" | "group", id) -> when a typing frame last went out there (monotonic seconds)."""
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._in_flight: set[str] = set()
        self._ready = False
        self._syncing = False
        self._cursor = 0
        self._reconnect_after: float | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._save_handle: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.login is None:
            self.login = await self._new_login()
        if self._store is None:
            self._store = FileStore(default_store_path(self.http.base_url, self.login.user_id))
        saved = self._store.load() or SavedState()
        self._handed = SeqTracker(saved.mark, saved.above)
        self._seen = SeqTracker(saved.mark, saved.above)
        for pending in saved.pending:
            self._outbox[pending.cid] = pending
        self._runner = asyncio.create_task(self._run(), name="chat-client")

    async def close(self) -> None:
        """Close the connection and save; unacked sends stay saved for the next start."""
        self._closing = True
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for handle in self._timers.values():
            handle.cancel()
        self._save_now()
        await self._events.put(None)

    async def __aenter__(self) -> ChatClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def user_id(self) -> int:
        assert self.login is not None, "start() first"
        return self.login.user_id

    @property
    def connected(self) -> bool:
        """Open and caught up: new sends go out at once."""
        return self._ws is not None and self._ready

    @property
    def position(self) -> int:
        """Every seq up to this one has been handed to the application."""
        return self._handed.mark

    def outbox(self) -> list[PendingSend]:
        """Sends not acked yet (pending or failed), oldest first."""
        return sorted(self._outbox.values(), key=lambda p: p.created_at)

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff (e.g. when the network is known to be back)."""
        self._wake.set()

    # -- events ---------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Events in order. An event counts as handled (and its seq is saved) when you ask for the next."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event
            if isinstance(event, (Received, InboxEvent)):
                self._handed.note(event.seq)
                self._schedule_save()
            elif isinstance(event, Synced):
                self._handed.fill_to(event.up_to)
                self._schedule_save()

    def _emit(self, event: Event) -> None:
        self._events.put_nowait(event)

    # -- sending --------------------------------------------------------------------------------

    async def send(self, content: str, *, to: int | None = None, group: int | None = None,
                   cid: str | None = None) -> Outgoing[Message]:
        """Queue a message to a user (`to`) or a group; it is saved before it is transmitted."""
        if (to is None) == (group is None):
            raise ValueError("a send needs exactly one of 'to' and 'group'")
        return await self._queue(PendingSend(self._new_cid(cid), content, to, group, int(time.time() * 1000)))

    async def edit(self, message_id: int, content: str, *, cid: str | None = None) -> Outgoing[Acked]:
        """Replace the text of my message `message_id` (within the server's edit window)."""
        return await self._queue(PendingSend(self._new_cid(cid), content, None, None, int(time.time() * 1000),
                                             kind="edit", message_id=message_id))

    async def recall(self, message_id: int, *, cid: str | None = None) -> Outgoing[Acked]:
        """Erase my message `message_id` for everyone (within the server's recall window)."""
        return await self._queue(PendingSend(self._new_cid(cid), "", None, None, int(time.time() * 1000),
                                             kind="recall", message_id=message_id))

    async def read(self, up_to: int, *, peer: int | None = None, group: int | None = None) -> None:
        """Move my read pointer in the conversation with `peer` or in `group` to message `up_to`.

        Not acknowledged: my devices (this one too) get a `ReadMoved` once it moved the pointer."""
        if (peer is None) == (group is None):
            raise ValueError("a read needs exactly one of 'peer' and 'group'")
        kind, target = ("peer", peer) if peer is not None else ("group", group)
        assert target is not None
        self._reads[(kind, target)] = max(up_to, self._reads.get((kind, target), 0))
        await self._flush()

    async def typing(self, *, to: int | None = None, group: int | None = None) -> bool:
        """Tell the recipients I am typing to `to` or in `group`; call it on every keystroke. At most one
        frame per conversation per `typing_interval_seconds` goes out; False when nothing was sent (too
        soon, or not connected). Never answered."""
        if (to is None) == (group is None):
            raise ValueError("a typing needs exactly one of 'to' and 'group'")
        kind, target = ("to", to) if to is not None else ("group", group)
        assert target is not None
        if not self.connected:
            return False
        now = time.monotonic()
        last = self._typing_sent_at.get((kind, target))
        if last is not None and now - last < self.options.typing_interval_seconds:
            return False
        self._typing_sent_at[(kind, target)] = now
        return await self._transmit({"type": "typing", kind: target})

    async def watch_presence(self, user_ids: Iterable[int]) -> None:
        """Watch the presence of these users (at most 500 distinct; replaces the set; none: nobody).

        Sent now when connected and again on every new connection; each time a `PresenceUpdate` with
        all of them follows, then one for each change."""
        ids = tuple(dict.fromkeys(user_ids))
        if len(ids) > MAX_WATCHED:
            raise ValueError(f"at most {MAX_WATCHED} users can be watched, not {len(ids)}")
        if not all(is_id(user_id) for user_id in ids):
            raise ValueError(f"not user ids: {[i for i in ids if not is_id(i)]}")
        self._watched = ids
        self._cancel("watch-again")
        await self._transmit({"type": "presence", "watch": list(ids)})

    @property
    def watching(self) -> tuple[int, ...]:
        """The users `watch_presence` asked for."""
        return self._watched

    async def _watch_again(self) -> None:
        await self._transmit({"type": "presence", "watch": list(self._watched)})

    def _new_cid(self, cid: str | None) -> str:
        cid = cid or secrets.token_hex(16)
        if cid in self._outbox:
            raise ValueError(f"cid {cid!r} is already in the outbox")
        return cid

    async def _queue(self, pending: PendingSend) -> Outgoing[Any]:
        self._outbox[pending.cid] = pending
        future = self._waiter(pending.cid)
        self._save_now()
        await self._flush()
        return Outgoing(pending.cid, future)

    async def retry(self, cid: str) -> Outgoing[Any]:
        """Send a failed message again (same cid)."""
        pending = self._outbox[cid]
        pending.status, pending.error, pending.unanswered = "pending", None, 0
        future = self._waiter(cid)
        self._save_now()
        await self._flush()
        return Outgoing(cid, future)

    def discard(self, cid: str) -> None:
        """Forget a send (failed or not); an ack that still comes for it is ignored."""
        self._outbox.pop(cid, None)
        waiter = self._waiters.pop(cid, None)
        if waiter is not None and not waiter.done():
            waiter.cancel()
        self._save_now()

    def _waiter(self, cid: str) -> asyncio.Future[Any]:
        future = self._waiters.get(cid)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiters[cid] = future
        return future

    async def _flush(self) -> None:
        """Transmit the read pointers waiting, then waiting sends, oldest first, within `max_in_flight`."""
        if self._ws is None or not self._ready or "retry" in self._timers:
            return
        while self._reads:
            (where, target), up_to = self._reads.popitem()
            if not await self._transmit({"type": "read", where: target, "up_to": up_to}):
                self._reads.setdefault((where, target), up_to)
                return
        for pending in self.outbox():
            if len(self._in_flight) >= self.options.max_in_flight:
                return
            if pending.status != "pending" or pending.cid in self._in_flight:
                continue
            limit = self.options.max_unanswered
            if limit is not None and pending.unanswered >= limit:
                self._fail(pending, Unavailable.code, f"no answer after {limit} attempts")
                continue
            pending.unanswered += 1
            self._in_flight.add(pending.cid)
            if not await self._transmit(pending.frame()):
                return

    async def _transmit(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        if self.trace is not None:
            self.trace("out", frame)
        try:
            await ws.send(orjson.dumps(frame).decode())
        except ConnectionClosed:
            return False
        return True

    def _fail(self, pending: PendingSend, code: str, message: str) -> None:
        pending.status, pending.error = "failed", f"{code}: {message}"
        self._in_flight.discard(pending.cid)
        waiter = self._waiters.pop(pending.cid, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(SendRefused(pending.cid, code, message))
            waiter.exception()  # retrieved here: an application that never awaits it is not warned
        self._emit(SendFailed(pending.cid, code, message))
        self._save_now()

    def _acked(self, cid: str, answer: Message | Acked) -> None:
        self._outbox.pop(cid, None)
        self._in_flight.discard(cid)
        waiter = self._waiters.pop(cid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
        self._schedule_save()  # a stale outbox entry only costs a resend, which the server answers alike

    # -- connection -----------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            code: int | None = None
            reason = ""
            try:
                assert self.login is not None
                ws = await connect(
                    f"{self.http.ws_url}?token={quote(self.login.token)}", compression=None,
                    open_timeout=self.options.open_timeout_seconds, max_size=self.options.max_frame_bytes,
                )
            except InvalidStatus as refused:
                reason = f"handshake refused with HTTP {refused.response.status_code}"
                if refused.response.status_code == 401 and not await self._relogin():
                    return
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                reason = f"cannot connect: {exc!r}"
            else:
                opened = time.monotonic()
                code, reason = await self._session(ws)
                if time.monotonic() - opened >= self.options.reconnect.stable_after_seconds:
                    attempt = 0
                if code == CloseCode.TOKEN_EXPIRED and not await self._relogin():
                    return
            if self._closing:
                return
            if self._reconnect_after is not None:
                delay, self._reconnect_after = self._reconnect_after, None
            else:
                delay = self.options.reconnect.delay(attempt, self._rand)
                attempt += 1
            self._emit(Disconnected(code, reason, delay))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _relogin(self) -> bool:
        """A refused token: log in again if the credentials can, else end the session."""
        if not isinstance(self._credentials, Login):
            try:
                self.login = await self._new_login()
                return True
            except HttpError as error:
                if error.status != 401:
                    return True  # the server is there but not well: try again after the backoff
            except OSError:
                return True
        self._emit(SessionEnded("unauthorized"))
        self._closing = True
        return False

    async def _new_login(self) -> Login:
        assert not isinstance(self._credentials, Login)
        login = await self._credentials()
        if self.login is not None and login.user_id != self.login.user_id:
            raise ValueError(f"the credentials switched from user {self.login.user_id} to {login.user_id}")
        return login

    async def _session(self, ws: ClientConnection) -> tuple[int | None, str]:
        self._ws, self._ready, self._syncing = ws, False, False
        self._in_flight.clear()
        self._emit(Connected())
        try:
            await self._start_sync()
            if self._watched:
                await self._watch_again()
            async for raw in ws:
                try:
                    frame = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    log.warning("the server sent something that is not JSON: %.100r", raw)
                    continue
                if not isinstance(frame, dict):
                    continue
                if self.trace is not None:
                    self.trace("in", frame)
                await self._handle(frame)
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._ready = self._syncing = False
            for name in ("gap", "retry", "sync-retry", "watch-again", "drain"):
                self._cancel(name)
        code = ws.close_code
        if code == CloseCode.MESSAGE_TOO_BIG:
            self._blame_largest()
        self._in_flight.clear()
        return code, ws.close_reason or ""

    def _blame_largest(self) -> None:
        """The server closed on a frame too big: the largest send in flight must not go out again."""
        candidates = [self._outbox[cid] for cid in self._in_flight if cid in self._outbox]
        if candidates:
            largest = max(candidates, key=lambda p: len(p.content.encode()))
            self._fail(largest, "too_large", "the message is larger than the server's frame limit")

    def _later(self, name: str, delay: float, callback: Callable[[], Awaitable[None] | None]) -> None:
        if name in self._timers:
            return

        def fire() -> None:
            self._timers.pop(name, None)
            result = callback()
            if result is not None:
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._timers[name] = asyncio.get_running_loop().call_later(delay, fire)

    def _cancel(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    # -- frames ---------------------------------------------------------------------------------

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "msg":
            self._take_entry(frame, "push")
        elif kind == "ack":
            await self._on_ack(frame)
        elif kind == "sync":
            await self._on_sync_page(frame)
        elif kind == "error":
            await self._on_error(frame)
        elif kind == "reconnect":
            after_ms = frame.get("after_ms")
            after_ms = after_ms if isinstance(after_ms, int) and after_ms >= 0 else 0
            self._reconnect_after = after_ms / 1000
            self._emit(ReconnectRequested(after_ms))
            # The server closes at that moment; if it does not, this side does, a little later.
            self._later("drain", after_ms / 1000 + 2.0, self._close_socket)
        elif kind == "typing":
            notice = TypingNotice.from_frame(frame)
            self._emit(notice if notice is not None else UnknownFrame(frame))
        elif kind == "presence":
            users = frame.get("users")
            if not isinstance(users, list):
                self._emit(UnknownFrame(frame))
            elif known := tuple(p for p in map(Presence.from_json, users) if p is not None):
                self._emit(PresenceUpdate(known))
        elif kind == "pong":
            pass
        elif "seq" in frame:  # an inbox event of another kind: the server sends none without a seq
            self._take_entry(frame, "push")
        else:
            self._emit(UnknownFrame(frame))

    async def _close_socket(self) -> None:
        if self._ws is not None:
            self._reconnect_after = 0.0
            await self._ws.close()

    def _take_entry(self, entry: dict[str, Any], source: Literal["push", "sync"]) -> None:
        """One inbox entry from a push or a sync page: handed over once per seq."""
        seq = entry.get("seq")
        if type(seq) is not int or seq < 1:
            return
        kind = entry.get("type")
        if kind == "msg":
            message = Message.from_frame(entry)
            if message is None:
                log.warning("a malformed message was skipped: %.200r", entry)
                return
            if message.sender == self.user_id and message.cid in self._outbox:
                self._acked(message.cid, message)  # its ack was lost with a connection; it is stored
            if self._seen.note(seq):
                self._emit(Received(message, source))
        elif self._seen.note(seq):
            change = change_from_frame(entry)
            self._emit(Changed(change, source) if change is not None else InboxEvent(str(kind), seq, entry))
        if self._seen.has_gap and not self._syncing:
            self._later("gap", self.options.gap_grace_seconds, self._fill_gap)

    async def _fill_gap(self) -> None:
        if self._seen.has_gap and not self._syncing and self._ws is not None:
            await self._start_sync()

    async def _on_ack(self, frame: dict[str, Any]) -> None:
        cid, seq = frame.get("cid"), frame.get("seq")
        pending = self._outbox.get(cid) if isinstance(cid, str) else None
        if pending is None or type(seq) is not int:
            return  # a duplicate answer: that send was settled already (its seq is known)
        message_id, ts = frame.get("id", 0), frame.get("ts", 0)
        if pending.kind == "send":
            message = Message(message_id, seq, self.user_id, pending.to, pending.group, pending.content,
                              pending.cid, ts, frame)
            self._acked(pending.cid, message)
            if self._seen.note(seq):
                self._emit(Received(message, "ack"))
        else:
            self._acked(pending.cid, Acked(pending.cid, message_id, seq, ts))
            change = (Edited(seq, message_id, self.user_id, None, None, pending.content, ts) if pending.kind == "edit"
                      else Recalled(seq, message_id, self.user_id, None, None, ts))
            if self._seen.note(seq):
                self._emit(Changed(change, "ack"))
        if self._seen.has_gap and not self._syncing:
            self._later("gap", self.options.gap_grace_seconds, self._fill_gap)
        await self._flush()

    async def _start_sync(self) -> None:
        self._syncing = True
        self._cursor = self._seen.mark
        await self._transmit({"type": "sync", "after": self._cursor, "limit": self.options.sync_limit})

    async def _on_sync_page(self, frame: dict[str, Any]) -> None:
        entries = frame.get("messages")
        before = self._cursor
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict):
                self._take_entry(entry, "sync")
                seq = entry.get("seq")
                if type(seq) is int and seq > self._cursor:
                    self._cursor = seq
        if frame.get("more") is True and self._cursor > before:
            await self._transmit({"type": "sync", "after": self._cursor, "limit": self.options.sync_limit})
            return
        self._syncing = False
        self._seen.fill_to(self._cursor)
        self._emit(Synced(self._cursor))
        if not self._ready:
            self._ready = True
            await self._flush()
        elif self._seen.has_gap:
            self._later("gap", self.options.gap_grace_seconds, self._fill_gap)

    async def _on_error(self, frame: dict[str, Any]) -> None:
        code, message, cid = str(frame.get("code")), str(frame.get("message", "")), frame.get("cid")
        self._emit(ServerError(code, message, cid if isinstance(cid, str) else None))
        pending = self._outbox.get(cid) if isinstance(cid, str) else None
        if pending is not None:
            self._in_flight.discard(pending.cid)
            if code in TEMPORARY_CODES:
                pending.unanswered = 0  # it was answered; only the server's state stopped it
                self._later("retry", self.options.retry_temporary_seconds, self._flush)
            else:
                self._fail(pending, code, message)
                await self._flush()
        elif cid is None and self._syncing:
            # A sync refused (rate_limited, unavailable, internal): ask again from where it stood.
            self._syncing = False
            self._later("sync-retry", self.options.retry_temporary_seconds, self._resume_sync)
        if cid is None and self._watched and code in WATCH_AGAIN_CODES:
            self._later("watch-again", self.options.retry_temporary_seconds, self._watch_again)

    async def _resume_sync(self) -> None:
        if self._ws is not None and not self._syncing:
            self._syncing = True
            await self._transmit({"type": "sync", "after": self._cursor, "limit": self.options.sync_limit})

    # -- saving ---------------------------------------------------------------------------------

    def _schedule_save(self) -> None:
        if self._save_handle is None:
            self._save_handle = asyncio.get_running_loop().call_later(self.options.save_delay_seconds,
                                                                      self._save_now)

    def _save_now(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self._store is not None:
            self._store.save(SavedState(self._handed.mark, sorted(self._handed.above), self.outbox()))
