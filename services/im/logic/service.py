"""Logic: the `LogicApi` the gateway calls, and the pipeline uplink → validate → commit → downlink.

Uplinks of every kind (send, edit, recall, read) become the items of one `Store.commit` per batch;
the store decides membership, blocks and edit windows inside its transaction, and each item's
outcome becomes its sender's ack or refusal and the deliveries of its event to every receiver.

The pipeline refuses an uplink on its own, never holding up the others: ids that are not ids are
refused with `bad_frame` before anything is asked of the store, and a batch whose write fails for
any reason but an outage is split until the failing uplink is found (`BatchWriter`), which is refused
with `internal` (its detail logged under the request id its sender gets). An outage pauses the
pipeline; `ping()` fails meanwhile, so readiness says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from im import metrics
from im.backends.base import (
    Applied,
    BatchItem,
    Bus,
    Edit,
    Read,
    Recall,
    Refused,
    Send,
    Sessions,
    Store,
    bus_reported_down,
)
from im.contracts.envelopes import Ack, Delivery, Downlink, Rejection, Uplink
from im.contracts.records import (
    Caller,
    ConversationCursor,
    ConversationPage,
    EditEvent,
    EventPage,
    Group,
    GroupInfo,
    InboxEvent,
    InboxPage,
    Message,
    Presence,
    Profile,
    RecallEvent,
    Session,
    User,
)
from im.logic.accounts import Accounts, LoginThrottle, ThrottleSettings
from im.logic.batch_writer import BatchWriter, BatchWriterClosed
from im.logic.conversations import Conversations
from im.logic.directory import Directory
from im.logic.groups import Groups
from im.logic.passwords import PasswordHasher
from im.logic.presence import PresenceBook
from im.logic.typing import TypingRelay
from im.protocol.errors import BadFrame, BadRequest, ImError, Unavailable, internal_error
from im.protocol.frames import event_bytes_bound
from im.protocol.ids import is_id, require_seq
from im.protocol.tokens import TokenCodec

__all__ = ["Logic", "LogicSettings"]

log = logging.getLogger(__name__)

AddressedRejection = tuple[str, Rejection]
"""A rejection and the gateway it goes to."""

Written = Rejection | asyncio.Task[None]
"""What became of one uplink the batch writer took: the task sending its batch's downlinks (its ack
or refusal among them), or its refusal when the write failed for this uplink alone."""

_SYNC_ANSWER_OVERHEAD_BYTES = 64
"""`{"type":"sync","messages":[...],"more":false}` around the messages, with room to spare."""

_EPHEMERAL = frozenset({"typing", "seen"})
"""Uplink kinds that are never stored as inbox events."""

Committed = list[tuple[Uplink, Applied]]
"""The uplinks of a batch that took effect (or had already), with their outcomes."""


@dataclass(frozen=True, slots=True)
class LogicSettings:
    batch_max_size: int = 500
    """Messages per write transaction at most."""
    batch_max_delay_ms: float = 5.0
    """How long the first message of a batch may wait for others."""
    max_sync_limit: int = 500
    max_sync_bytes: int = 256 * 1024
    """Bytes of one sync answer at most, once encoded (at least one message is always answered);
    past it the page is cut and `more` is true. Well under the gateways' slow-reader bound."""
    edit_window_seconds: float | None = 900.0
    """How long after sending a message its sender may edit it (None: no limit)."""
    recall_window_seconds: float | None = 120.0
    """How long after sending a message its sender may recall it (None: no limit)."""
    locate_wait_ms: float = 20.0
    """How long a committed batch waits for the session map to say where its receivers are, so that
    acks and deliveries share one downlink per gateway; past it the acks go at once, the deliveries
    once it answers."""
    flush_timeout_seconds: float = 5.0
    """How long `close()` tries to commit what it took from the bus before it gives up on it."""
    refuse_unwritten_on_close: bool = False
    """What `close()` does with what it could not commit: refuse it to its senders with `unavailable`
    (standalone: the in-process bus forgets it anyway), or leave it unacknowledged on the bus, which
    delivers it again to the next logic (distributed)."""
    login_throttle: ThrottleSettings = ThrottleSettings()
    again_window: int = 1000
    """A redelivered batch's duplicates are pushed again to recipients whose last this many inbox
    entries hold them (a bounded read; further back, the recipient's gap sync has them)."""


class Logic:
    """Implements `im.contracts.logic_api.LogicApi` and consumes uplinks from the bus."""

    def __init__(
        self, store: Store, bus: Bus, sessions: Sessions, tokens: TokenCodec,
        settings: LogicSettings = LogicSettings(), passwords: PasswordHasher = PasswordHasher(),
    ) -> None:
        self._store = store
        self._bus = bus
        self._sessions = sessions
        self._settings = settings
        self._accounts = Accounts(store, tokens, passwords, LoginThrottle(settings.login_throttle))
        self._groups = Groups(store, self.push)
        self._directory = Directory(store)
        self._conversations = Conversations(store)
        self._writer: BatchWriter[Uplink, Written] = BatchWriter(
            self._write_batch,
            refuse=self._refuse_unwritable,
            max_size=settings.batch_max_size,
            max_delay_seconds=settings.batch_max_delay_ms / 1000,
            on_write_error=lambda exc: metrics.ERRORS.labels("unavailable").inc(),
        )
        self._typing = TypingRelay(store, self._locate, self._deliver)
        self._presence = PresenceBook(store, sessions)
        self._downlinks: asyncio.Task[None] | None = None
        """Sending the downlinks of the last committed batch (or push): each waits for the one before."""
        self._lookups = _Streak("session look-ups fail, recipients catch up with sync", "session look-ups work again")
        self._deliveries = _Streak("downlinks cannot be sent, recipients catch up with sync", "downlinks go out again")
        metrics.PIPELINE_STALLED.set_function(lambda: self._writer.stalled_seconds)

    async def start(self) -> None:
        self._writer.start()
        await self._bus.consume(self._on_uplinks)

    async def close(self) -> None:
        """Commit every message already taken from the bus, send what follows from it, then stop.

        Gives up after `flush_timeout_seconds` (an outage may last longer than anyone waits for a
        stop); what is not committed by then is refused or left on the bus, see `LogicSettings`.
        """
        await self._writer.close(self._settings.flush_timeout_seconds)
        await self._previous_downlinks()

    async def ping(self) -> None:
        """Raise while the pipeline cannot commit (an outage of the store)."""
        stalled = self._writer.stalled_seconds
        if stalled:
            raise Unavailable(f"the message pipeline has been stalled for {stalled:.1f}s: the store cannot commit")

    # -- LogicApi -----------------------------------------------------------------------------

    async def register(self, email: str, password: str, nickname: str) -> User:
        return await self._accounts.register(email, password, nickname)

    async def login(self, email: str, password: str, client_address: str) -> Session:
        return await self._accounts.login(email, password, client_address)

    # groups, directory and conversations: im.logic.groups, .directory, .conversations

    async def create_group(self, caller: Caller, name: str) -> Group:
        return await self._groups.create(caller, name)

    async def add_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        await self._groups.add_member(caller, group_id, user_id)

    async def list_members(self, caller: Caller, group_id: int) -> list[int]:
        return await self._groups.members(caller, group_id)

    async def my_groups(self, caller: Caller) -> list[Group]:
        return await self._groups.mine(caller)

    async def group_info(self, caller: Caller, group_id: int) -> GroupInfo:
        return await self._groups.info(caller, group_id)

    async def rename_group(self, caller: Caller, group_id: int, name: str) -> GroupInfo:
        return await self._groups.rename(caller, group_id, name)

    async def remove_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        await self._groups.remove_member(caller, group_id, user_id)

    async def hand_over(self, caller: Caller, group_id: int, user_id: int) -> GroupInfo:
        return await self._groups.hand_over(caller, group_id, user_id)

    async def group_reads(self, caller: Caller, group_id: int) -> dict[int, int | None]:
        return await self._groups.reads(caller, group_id)

    async def me(self, caller: Caller) -> User:
        return await self._directory.me(caller)

    async def set_nickname(self, caller: Caller, nickname: str) -> User:
        return await self._directory.set_nickname(caller, nickname)

    async def profiles(self, caller: Caller, user_ids: list[int]) -> list[Profile]:
        return await self._directory.profiles(caller, user_ids)

    async def find_user(self, caller: Caller, email: str) -> Profile:
        return await self._directory.find(caller, email)

    async def block(self, caller: Caller, user_id: int) -> None:
        await self._directory.block(caller, user_id)

    async def unblock(self, caller: Caller, user_id: int) -> None:
        await self._directory.unblock(caller, user_id)

    async def blocked(self, caller: Caller) -> list[int]:
        return await self._directory.blocked(caller)

    async def presence(self, caller: Caller, user_ids: list[int]) -> list[Presence]:
        return await self._presence.look(caller, user_ids)

    async def conversations(self, caller: Caller, limit: int | None, cursor: ConversationCursor | None,
                            ) -> ConversationPage:
        return await self._conversations.page(caller, limit, cursor)

    async def history(self, caller: Caller, *, peer: int | None = None, group: int | None = None,
                      before: int | None = None, limit: int | None = None) -> InboxPage:
        return await self._conversations.history(caller, peer=peer, group=group, before=before, limit=limit)

    async def sync(self, caller: Caller, after: int, limit: int) -> EventPage:
        require_seq("after", after)
        if type(limit) is not int or not 1 <= limit <= self._settings.max_sync_limit:
            raise BadRequest(f"'limit' must be 1 to {self._settings.max_sync_limit}")
        page = await self._store.events(caller.user_id, after, limit)
        return _cut_to_bytes(page, self._settings.max_sync_bytes)

    # -- pushing what other parts of logic commit -----------------------------------------------

    async def push(self, applied: Applied) -> None:
        """Push an event committed outside the pipeline (a group change's) to its receivers' online
        sessions, through the same downlinks and after those of the batches committed before it.
        Never raises for a dependency: receivers that miss it catch up with sync."""
        previous = self._downlinks
        pushing = asyncio.create_task(self._push_after(previous, applied))
        self._downlinks = pushing
        await asyncio.wait([pushing])

    async def _push_after(self, previous: asyncio.Task[None] | None, applied: Applied) -> None:
        try:
            locations = await self._locate(set(applied.seqs))
            downlinks: dict[str, Downlink] = {}
            _add_deliveries(downlinks, applied.event, applied.seqs, locations, time.time())
            if previous is not None:
                await asyncio.wait([previous])
            await asyncio.gather(*(self._deliver(d) for d in downlinks.values()))
        except Exception:
            log.exception("pushing a group change failed; its receivers catch up with sync")

    # -- message pipeline ---------------------------------------------------------------------

    async def _on_uplinks(self, uplinks: list[Uplink]) -> None:
        if any(uplink.kind in _EPHEMERAL for uplink in uplinks):
            # Typing and presence skip the batch writer: taken care of while the rest is committed.
            beside = asyncio.gather(self._typing.relay(u for u in uplinks if u.kind == "typing"),
                                    self._presence.record(u for u in uplinks if u.kind == "seen"))
            try:
                await self._on_stored_uplinks([u for u in uplinks if u.kind not in _EPHEMERAL])
            finally:
                await beside
        else:
            await self._on_stored_uplinks(uplinks)

    async def _on_stored_uplinks(self, uplinks: list[Uplink]) -> None:
        if not uplinks:
            return
        metrics.PENDING_MESSAGES.inc(len(uplinks))
        try:
            results = await self._writer.submit(uplinks)
        except BatchWriterClosed:
            if not self._settings.refuse_unwritten_on_close:
                raise  # unacknowledged: the bus delivers them again
            stopped = Unavailable(f"logic stopped before {len(uplinks)} messages were committed")
            results = [_rejection(u, stopped) for u in uplinks]
        finally:
            metrics.PENDING_MESSAGES.dec(len(uplinks))
        refused = [(uplink.gateway, result) for uplink, result in zip(uplinks, results, strict=True)
                   if isinstance(result, Rejection)]
        if refused:
            await self._send_rejections(refused)
        # Returning acknowledges the uplinks to the bus: only once their downlinks are out, so a crash
        # in between redelivers them and their duplicates are pushed again (`Uplink.redelivered`).
        sending = {result for result in results if isinstance(result, asyncio.Task)}
        if sending:
            await asyncio.wait(sending)

    def _refuse_unwritable(self, uplink: Uplink, error: Exception) -> Rejection:
        """The batch writer found that this uplink alone makes its write fail."""
        if not isinstance(error, ImError):
            error = internal_error(f"writing message {uplink.cid!r} of user {uplink.sender} failed", log, error)
        metrics.ERRORS.labels(error.code).inc()
        return _rejection(uplink, error)

    async def _send_rejections(self, refused: list[AddressedRejection]) -> None:
        """Rejections that the batch writer decided on (their batch's downlinks went without them)."""
        downlinks: dict[str, Downlink] = {}
        for gateway, rejection in refused:
            downlinks.setdefault(gateway, Downlink(gateway)).rejections.append(rejection)
        await asyncio.gather(*(self._deliver(d) for d in downlinks.values()))

    async def _write_batch(self, uplinks: list[Uplink]) -> list[Written]:
        items, rejections = _validate(uplinks)
        started = time.perf_counter()
        outcomes = await self._store.commit(
            [item for _, item in items],
            edit_window_ms=_ms(self._settings.edit_window_seconds),
            recall_window_ms=_ms(self._settings.recall_window_seconds),
        )
        # Downlinks keep commit order: this batch's go after the previous one's, whatever happens next.
        previous = self._downlinks
        metrics.BATCH_WRITE_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(items))
        committed: Committed = []
        for (uplink, _), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Refused):
                metrics.ERRORS.labels(outcome.error.code).inc()
                rejections.append((uplink.gateway, _rejection(uplink, outcome.error)))
            else:
                committed.append((uplink, outcome))
        metrics.MESSAGES_PERSISTED.inc(
            sum(not a.duplicate and isinstance(a.event, Message) for _, a in committed))
        locating = asyncio.ensure_future(self._locate({user for _, applied in committed for user in applied.seqs}))
        await asyncio.wait([locating], timeout=self._settings.locate_wait_ms / 1000)
        answers = _answers(committed, rejections)
        if not locating.done() or (previous is not None and not previous.done()):
            # Redis is slow or gone (for this batch or the one before, whose deliveries go first):
            # the senders hear now, the receivers once it answers (or by sync).
            await asyncio.gather(*(self._deliver(d) for d in answers.values()))
            answers = {}
        # The batch is durable. Its downlinks go out while the next batch is validated and committed.
        self._downlinks = asyncio.create_task(self._send_downlinks(previous, answers, committed, locating))
        return [self._downlinks] * len(uplinks)

    async def _previous_downlinks(self) -> None:
        previous, self._downlinks = self._downlinks, None
        if previous is not None:
            await asyncio.wait([previous])  # each waits for the one before: this is the last of them

    async def _send_downlinks(
        self, previous: asyncio.Task[None] | None, answers: dict[str, Downlink], committed: Committed,
        locating: asyncio.Future[dict[int, set[str]]],
    ) -> None:
        """The deliveries of a committed batch, one downlink per gateway, with the answers not yet sent.

        A redelivered uplink that turns out to be stored already may never have been pushed (the
        replica that stored it stopped before its downlinks went out): it is pushed once more,
        marked `again`, and the gateway skips connections that already had it. A message goes again
        to every receiver whose recent inbox holds it; an edit or recall only to its sender's other
        devices (the store answers a duplicate with the sender's seq alone); a read is never a
        duplicate (a read again moves nothing), so a lost push of one is caught up by sync.
        """
        try:
            await self._send(previous, answers, committed, locating)
        except Exception:
            log.exception("sending the downlinks of a committed batch failed; receivers catch up with sync")

    async def _send(
        self, previous: asyncio.Task[None] | None, downlinks: dict[str, Downlink], committed: Committed,
        locating: asyncio.Future[dict[int, set[str]]],
    ) -> None:
        locations = await locating
        again = await self._seqs_again(committed)
        if again:
            locations = {**locations, **await self._locate(
                {user for seqs in again.values() for user in seqs} - locations.keys())}
        for uplink, applied in committed:
            if not applied.duplicate:
                seqs = applied.seqs
            elif not uplink.redelivered:
                continue  # the client sent it again: its ack is the answer
            elif isinstance(applied.event, Message):
                seqs = again.get(applied.event.id, {})
            else:
                seqs = applied.seqs
            origin = (uplink.gateway, uplink.conn) if uplink.kind != "read" else None
            _add_deliveries(downlinks, applied.event, seqs, locations, uplink.accepted_at, origin,
                            again=applied.duplicate)
        if previous is not None:
            await asyncio.wait([previous])
        await asyncio.gather(*(self._deliver(d) for d in downlinks.values()))

    async def _seqs_again(self, committed: Committed) -> dict[int, dict[int, int]]:
        """Receivers' seqs of the redelivered messages that were already stored."""
        repeated = [(u, a.event) for u, a in committed
                    if a.duplicate and u.redelivered and isinstance(a.event, Message)]
        if not repeated:
            return {}
        users = {u.sender for u, _ in repeated} | {u.to for u, _ in repeated if u.to is not None}
        groups = {u.group for u, _ in repeated if u.group is not None}
        try:
            if groups:
                users.update(member for members in (await self._store.members(groups)).values() for member in members)
            return await self._store.recent_seqs([m.id for _, m in repeated], users, self._settings.again_window)
        except Exception as exc:  # noqa: BLE001 - recipients catch up with sync
            log.warning("looking up a redelivered batch's messages failed, recipients catch up with sync: %r", exc)
            return {}

    async def _locate(self, users: set[int]) -> dict[int, set[str]]:
        try:
            found = await self._sessions.locate(users)
        except Exception as exc:  # noqa: BLE001 - the messages are stored; recipients catch up with sync
            metrics.ERRORS.labels("unavailable").inc()
            self._lookups.failed(exc)
            return {}
        self._lookups.ok()
        return found

    async def _deliver(self, downlink: Downlink) -> None:
        try:
            await self._bus.deliver(downlink)
        except Exception as exc:  # noqa: BLE001 - the messages are stored; clients resend or sync
            metrics.ERRORS.labels("unavailable").inc()
            self._deliveries.failed(exc, expected=await bus_reported_down(self._bus))
            return
        self._deliveries.ok()


class _Streak:
    """A dependency failing batch after batch is logged once when it starts and once when it ends."""

    def __init__(self, failing: str, recovered: str) -> None:
        self._failing_text = failing
        self._recovered_text = recovered
        self._failing = False

    def failed(self, error: BaseException, *, expected: bool = False) -> None:
        """`expected`: the dependency has reported the outage itself; the streak is logged at INFO."""
        if not self._failing:
            self._failing = True
            log.log(logging.INFO if expected else logging.WARNING, "%s: %r", self._failing_text, error)

    def ok(self) -> None:
        if self._failing:
            self._failing = False
            log.info("%s", self._recovered_text)


def _validate(uplinks: list[Uplink]) -> tuple[list[tuple[Uplink, BatchItem]], list[AddressedRejection]]:
    """The store items of the uplinks whose ids are ids; the others refused with `bad_frame`."""
    now_ms = int(time.time() * 1000)
    items: list[tuple[Uplink, BatchItem]] = []
    rejections: list[AddressedRejection] = []
    for uplink in uplinks:
        item = _item(uplink, now_ms)
        if item is None:
            metrics.ERRORS.labels(BadFrame.code).inc()
            rejections.append((uplink.gateway, _rejection(uplink, BadFrame("an id is out of range"))))
        else:
            items.append((uplink, item))
    return items, rejections


def _item(uplink: Uplink, now_ms: int) -> BatchItem | None:
    """The gateway checked the ids; a bus message from anywhere else may not have been."""
    kind, sender, to, group, message_id = uplink.kind, uplink.sender, uplink.to, uplink.group, uplink.message_id
    if not is_id(sender):
        return None
    if kind == "send" or kind == "read":
        if not is_id(to if group is None else group) or (to is not None and group is not None):
            return None
        if kind == "send":
            return Send(sender, uplink.cid, uplink.content, now_ms, to=to, group=group)
        return Read(sender, message_id, now_ms, peer=to, group=group) if is_id(message_id) else None
    if not is_id(message_id):
        return None
    if kind == "edit":
        return Edit(sender, uplink.cid, message_id, uplink.content, now_ms)
    return Recall(sender, uplink.cid, message_id, now_ms)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _rejection(uplink: Uplink, error: ImError) -> Rejection:
    """The refusal as its sender will see it (an infrastructure error's detail is logged here)."""
    body = error.client_body()
    return Rejection(uplink.conn, uplink.cid, body["code"], body["message"], body["request_id"])


def _cut_to_bytes(page: EventPage, max_bytes: int) -> EventPage:
    """The longest prefix of `page` whose sync answer fits in `max_bytes` (never less than one entry)."""
    budget = max_bytes - _SYNC_ANSWER_OVERHEAD_BYTES
    for index, (_, event) in enumerate(page.entries):
        budget -= event_bytes_bound(event)
        if budget < 0 and index > 0:
            return EventPage(page.entries[:index], more=True)
    return page


def _add_deliveries(
    downlinks: dict[str, Downlink], event: InboxEvent, seqs: dict[int, int], locations: dict[int, set[str]],
    accepted_at: float, origin: tuple[str, int] | None = None, *, again: bool = False,
) -> None:
    """`event` for each online receiver in `seqs`, one delivery per gateway; `origin` (gateway,
    connection) is the connection that gets the ack instead."""
    by_gateway: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    for user, seq in seqs.items():
        for gateway in locations.get(user, ()):
            by_gateway[gateway].append((user, seq))
    for gateway, recipients in by_gateway.items():
        conn = origin[1] if origin is not None and origin[0] == gateway else None
        if gateway not in downlinks:
            downlinks[gateway] = Downlink(gateway)
        downlinks[gateway].deliveries.append(Delivery(event, recipients, accepted_at, conn, again=again))


def _answers(committed: Committed, rejections: list[AddressedRejection]) -> dict[str, Downlink]:
    """The senders' acks and refusals of a committed batch, by gateway: named in each uplink, no lookup.
    A read has no ack: its connection is only marked answered (its event shows on every device)."""
    downlinks: dict[str, Downlink] = {}
    for gateway, rejection in rejections:
        downlinks.setdefault(gateway, Downlink(gateway)).rejections.append(rejection)
    for uplink, applied in committed:
        downlink = downlinks.setdefault(uplink.gateway, Downlink(uplink.gateway))
        event = applied.event
        if isinstance(event, Message):
            downlink.acks.append(Ack(uplink.conn, uplink.cid, event.id, applied.seqs[uplink.sender], event.ts))
        elif isinstance(event, (EditEvent, RecallEvent)):
            downlink.acks.append(
                Ack(uplink.conn, uplink.cid, event.message_id, applied.seqs[uplink.sender], event.ts))
        else:
            downlink.answered.append(uplink.conn)
    return downlinks
