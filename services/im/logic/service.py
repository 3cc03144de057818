"""Logic: the `LogicApi` the gateway calls, and the pipeline uplink → validate → commit → downlink."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from im import metrics
from im.backends.base import Bus, NewMessage, Persisted, Sessions, Store
from im.contracts.envelopes import Ack, Delivery, Downlink, Rejection, Uplink
from im.contracts.records import Group, InboxPage, Session, User
from im.logic.batch_writer import BatchWriter
from im.logic.passwords import PasswordHasher
from im.protocol.errors import BadRequest, Forbidden, ImError, NotFound, Unauthorized
from im.protocol.tokens import TokenCodec

__all__ = ["Logic", "LogicSettings"]

log = logging.getLogger(__name__)

AddressedRejection = tuple[str, Rejection]
"""A rejection and the gateway it goes to."""

MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 64
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256


@dataclass(frozen=True, slots=True)
class LogicSettings:
    batch_max_size: int = 500
    """Messages per write transaction at most."""
    batch_max_delay_ms: float = 5.0
    """How long the first message of a batch may wait for others."""
    max_sync_limit: int = 500
    known_users_cache_size: int = 100_000
    """Recipient ids remembered as existing, so most batches skip that query."""


class Logic:
    """Implements `im.contracts.logic_api.LogicApi` and consumes uplinks from the bus."""

    def __init__(
        self, store: Store, bus: Bus, sessions: Sessions, tokens: TokenCodec,
        settings: LogicSettings = LogicSettings(), passwords: PasswordHasher = PasswordHasher(),
    ) -> None:
        self._store = store
        self._bus = bus
        self._sessions = sessions
        self._tokens = tokens
        self._passwords = passwords
        self._settings = settings
        self._writer: BatchWriter[Uplink, None] = BatchWriter(
            self._write_batch,
            max_size=settings.batch_max_size,
            max_delay_seconds=settings.batch_max_delay_ms / 1000,
            on_write_error=lambda exc: metrics.ERRORS.labels("unavailable").inc(),
        )
        self._downlinks: asyncio.Task[None] | None = None
        self._known_users: set[int] = set()

    async def start(self) -> None:
        self._writer.start()
        await self._bus.consume(self._on_uplinks)

    async def close(self) -> None:
        """Commit every message already taken from the bus, send what follows from it, then stop."""
        await self._writer.close()
        await self._previous_downlinks()

    # -- LogicApi -----------------------------------------------------------------------------

    async def register(self, email: str, password: str, nickname: str) -> User:
        email = email.strip().lower()
        if not (3 <= len(email) <= MAX_EMAIL_CHARS) or "@" not in email:
            raise BadRequest("'email' must be an email address")
        if not (MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS):
            raise BadRequest(f"'password' must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
        nickname = nickname.strip()
        if not (1 <= len(nickname) <= MAX_NAME_CHARS):
            raise BadRequest(f"'nickname' must be 1 to {MAX_NAME_CHARS} characters")
        password_hash = await asyncio.to_thread(self._passwords.hash, password)
        return await self._store.create_user(email, password_hash, nickname)

    async def login(self, email: str, password: str) -> Session:
        found = await self._store.credentials(email.strip().lower())
        if found is None:
            await asyncio.to_thread(self._passwords.hash, password)  # same cost whether or not the email exists
            raise Unauthorized("wrong email or password")
        if not await asyncio.to_thread(self._passwords.verify, password, found.password_hash):
            raise Unauthorized("wrong email or password")
        token, expires_at = self._tokens.issue(found.user.id, int(time.time()))
        return Session(token, found.user.id, expires_at)

    async def create_group(self, owner: int, name: str) -> Group:
        name = name.strip()
        if not (1 <= len(name) <= MAX_NAME_CHARS):
            raise BadRequest(f"'name' must be 1 to {MAX_NAME_CHARS} characters")
        return await self._store.create_group(name, owner)

    async def add_member(self, caller: int, group_id: int, user_id: int) -> None:
        group = await self._group(group_id)
        if group.owner != caller:
            raise Forbidden("only the group's owner adds members")
        if not await self._store.existing_users([user_id]):
            raise NotFound(f"no user {user_id}")
        await self._store.add_member(group_id, user_id)

    async def list_members(self, caller: int, group_id: int) -> list[int]:
        await self._group(group_id)
        members = (await self._store.members([group_id])).get(group_id, [])
        if caller not in members:
            raise Forbidden("only members see a group's members")
        return members

    async def my_groups(self, user_id: int) -> list[Group]:
        return await self._store.groups_of(user_id)

    async def sync(self, user_id: int, after: int, limit: int) -> InboxPage:
        if after < 0 or not (1 <= limit <= self._settings.max_sync_limit):
            raise BadRequest(f"'after' must be >= 0 and 'limit' 1 to {self._settings.max_sync_limit}")
        return await self._store.inbox(user_id, after, limit)

    async def _group(self, group_id: int) -> Group:
        group = await self._store.group(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        return group

    # -- message pipeline ---------------------------------------------------------------------

    async def _on_uplinks(self, uplinks: list[Uplink]) -> None:
        metrics.PENDING_MESSAGES.inc(len(uplinks))
        try:
            await self._writer.submit(uplinks)
        finally:
            metrics.PENDING_MESSAGES.dec(len(uplinks))

    async def _write_batch(self, uplinks: list[Uplink]) -> list[None]:
        accepted, rejections = await self._validate(uplinks)
        started = time.perf_counter()
        persisted = await self._store.persist([new for _, new in accepted])
        metrics.BATCH_WRITE_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(accepted))
        metrics.MESSAGES_PERSISTED.inc(sum(not p.duplicate for p in persisted))
        # The batch is durable: it may be acked upstream now. Its downlinks go out while the next
        # batch is validated and committed, after the previous batch's, so they keep commit order.
        await self._previous_downlinks()
        self._downlinks = asyncio.create_task(
            self._send_downlinks([uplink for uplink, _ in accepted], persisted, rejections)
        )
        return [None] * len(uplinks)

    async def _previous_downlinks(self) -> None:
        previous, self._downlinks = self._downlinks, None
        if previous is None:
            return
        try:
            await previous
        except Exception:
            log.exception("sending the downlinks of a committed batch failed; recipients catch up with sync")

    async def _validate(
        self, uplinks: list[Uplink]
    ) -> tuple[list[tuple[Uplink, NewMessage]], list[AddressedRejection]]:
        users = await self._existing_users({u.to for u in uplinks if u.to is not None})
        members = await self._store.members(u.group for u in uplinks if u.group is not None)
        now_ms = int(time.time() * 1000)
        accepted: list[tuple[Uplink, NewMessage]] = []
        rejections: list[AddressedRejection] = []
        for uplink in uplinks:
            try:
                recipients = _recipients(uplink, users, members)
            except ImError as error:
                metrics.ERRORS.labels(error.code).inc()
                rejections.append((uplink.gateway, Rejection(uplink.conn, uplink.cid, error.code, error.message)))
                continue
            accepted.append((uplink, NewMessage(
                uplink.sender, uplink.cid, uplink.to, uplink.group, uplink.content, now_ms, recipients
            )))
        return accepted, rejections

    async def _existing_users(self, wanted: set[int]) -> set[int]:
        # Users are never deleted, so one that existed once still does: only ids not seen before
        # cost a query. The set is bounded by starting over when it grows past its limit.
        unknown = wanted - self._known_users
        if unknown:
            found = await self._store.existing_users(unknown)
            if len(self._known_users) + len(found) > self._settings.known_users_cache_size:
                self._known_users.clear()
            self._known_users |= found
        return wanted & self._known_users

    async def _send_downlinks(
        self, uplinks: list[Uplink], persisted: list[Persisted], rejections: list[AddressedRejection]
    ) -> None:
        downlinks: dict[str, Downlink] = {}

        def downlink(gateway: str) -> Downlink:
            if gateway not in downlinks:
                downlinks[gateway] = Downlink(gateway)
            return downlinks[gateway]

        for gateway, rejection in rejections:
            downlink(gateway).rejections.append(rejection)
        for uplink, result in zip(uplinks, persisted, strict=True):
            message = result.message
            downlink(uplink.gateway).acks.append(
                Ack(uplink.conn, uplink.cid, message.id, result.seqs[uplink.sender], message.ts)
            )
        locations = await self._locate({user for r in persisted if not r.duplicate for user in r.seqs})
        for uplink, result in zip(uplinks, persisted, strict=True):
            if result.duplicate:
                continue
            by_gateway: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
            for user, seq in result.seqs.items():
                for gateway in locations.get(user, ()):
                    by_gateway[gateway].append((user, seq))
            for gateway, recipients in by_gateway.items():
                origin = uplink.conn if gateway == uplink.gateway else None
                downlink(gateway).deliveries.append(Delivery(result.message, recipients, uplink.accepted_at, origin))
        await asyncio.gather(*(self._deliver(d) for d in downlinks.values()))

    async def _locate(self, users: set[int]) -> dict[int, set[str]]:
        try:
            return await self._sessions.locate(users)
        except Exception as exc:  # noqa: BLE001 - the messages are stored; recipients catch up with sync
            metrics.ERRORS.labels("unavailable").inc()
            log.warning("session lookup failed, recipients will catch up with sync: %r", exc)
            return {}

    async def _deliver(self, downlink: Downlink) -> None:
        try:
            await self._bus.deliver(downlink)
        except Exception as exc:  # noqa: BLE001 - the messages are stored; clients resend or sync
            metrics.ERRORS.labels("unavailable").inc()
            log.warning("downlink to gateway %s failed: %r", downlink.gateway, exc)


def _recipients(uplink: Uplink, users: set[int], members: dict[int, list[int]]) -> tuple[int, ...]:
    if uplink.to is not None:
        if uplink.to not in users:
            raise NotFound(f"no user {uplink.to}", cid=uplink.cid)
        return (uplink.sender,) if uplink.to == uplink.sender else (uplink.sender, uplink.to)
    assert uplink.group is not None
    group_members = members.get(uplink.group)
    if group_members is None:
        raise NotFound(f"no group {uplink.group}", cid=uplink.cid)
    if uplink.sender not in group_members:
        raise Forbidden(f"you are not a member of group {uplink.group}", cid=uplink.cid)
    return tuple(group_members)
