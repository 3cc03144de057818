"""A real grpc.aio logic server on 127.0.0.1 over an in-memory fake `LogicApi`: the transport is tested."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from im.contracts.records import Caller, EventPage, Group, Message, Session, User
from im.protocol.errors import Conflict, Forbidden, NotFound, Unauthorized
from im.rpc.client import GrpcLogicClient
from im.rpc.server import serve_logic
from tests.support.processes import free_port

TOKEN_EXPIRES_AT = 2_000_000_000


def as_user(user_id: int) -> Caller:
    """The caller the fake's tokens stand for."""
    return Caller(user_id, f"token-{user_id}")


@dataclass
class FakeLogic:
    """Just enough of logic to tell a faithful transport from a lossy one.

    `delay` (seconds) slows every call down; `fail_with` makes every call raise it. `calls` counts the
    calls that reached this object, by method name.
    """

    delay: float = 0.0
    fail_with: BaseException | None = None
    calls: Counter[str] = field(default_factory=Counter)
    users: dict[str, tuple[User, str]] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)
    inboxes: dict[int, list[tuple[int, Message]]] = field(default_factory=dict)
    last_client_address: str | None = None

    async def _enter(self, name: str) -> None:
        self.calls[name] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with

    async def register(self, email: str, password: str, nickname: str) -> User:
        await self._enter("register")
        if email in self.users:
            raise Conflict(f"{email} is taken")
        user = User(id=len(self.users) + 1, email=email, nickname=nickname)
        self.users[email] = (user, password)
        return user

    async def login(self, email: str, password: str, client_address: str) -> Session:
        await self._enter("login")
        self.last_client_address = client_address
        user, expected = self.users.get(email, (None, None))
        if user is None or password != expected:
            raise Unauthorized("wrong email or password")
        return Session(token=f"token-{user.id}", user_id=user.id, expires_at=TOKEN_EXPIRES_AT)

    def verify_token(self, token: str) -> tuple[int, int]:
        """What the server's authenticating interceptor is given: `token-<user id>` is valid."""
        self.calls["verify_token"] += 1
        user_id = token.removeprefix("token-")
        if not token.startswith("token-") or not user_id.isdigit():
            raise Unauthorized("invalid token")
        return int(user_id), TOKEN_EXPIRES_AT

    async def create_group(self, caller: Caller, name: str) -> Group:
        await self._enter("create_group")
        group = Group(id=100 + len(self.groups), name=name, owner=caller.user_id)
        self.groups[group.id] = group
        self.members[group.id] = [caller.user_id]
        return group

    async def add_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        await self._enter("add_member")
        group = self._group(group_id)
        if caller.user_id != group.owner:
            raise Forbidden("only the owner adds members")
        if user_id not in self.members[group_id]:
            self.members[group_id].append(user_id)

    async def list_members(self, caller: Caller, group_id: int) -> list[int]:
        await self._enter("list_members")
        self._group(group_id)
        if caller.user_id not in self.members[group_id]:
            raise Forbidden("members only")
        return list(self.members[group_id])

    async def my_groups(self, caller: Caller) -> list[Group]:
        await self._enter("my_groups")
        return [self.groups[gid] for gid, members in self.members.items() if caller.user_id in members]

    async def sync(self, caller: Caller, after: int, limit: int) -> EventPage:
        await self._enter("sync")
        entries = [(seq, m) for seq, m in self.inboxes.get(caller.user_id, []) if seq > after]
        return EventPage(entries=entries[:limit], more=len(entries) > limit)

    def _group(self, group_id: int) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        return group


class LogicServer:
    """One port, on which a server can be stopped and started again (like a restarted logic pod)."""

    def __init__(self, api: object, **settings: Any) -> None:
        self.api = api
        self.settings = {"verify_token": getattr(api, "verify_token", None), **settings}
        self.port = free_port()
        self.server: grpc.aio.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await serve_logic(self.api, "127.0.0.1", self.port, **self.settings)  # type: ignore[arg-type]

    async def stop(self, grace: float | None = None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
            self.server = None


ServerFactory = Callable[..., Awaitable[LogicServer]]


@pytest.fixture
async def start_logic() -> AsyncIterator[ServerFactory]:
    """`await start_logic(api, **serve_logic_settings)`: a started server, stopped after the test."""
    servers: list[LogicServer] = []

    async def start(api: object, **settings: Any) -> LogicServer:
        server = LogicServer(api, **settings)
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def fake() -> FakeLogic:
    return FakeLogic()


@pytest.fixture
async def logic(fake: FakeLogic, start_logic: ServerFactory) -> LogicServer:
    return await start_logic(fake)


ClientFactory = Callable[..., Awaitable[GrpcLogicClient]]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[GrpcLogicClient] = []

    async def make(target: str, **settings: Any) -> GrpcLogicClient:
        client = GrpcLogicClient(target, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(logic: LogicServer, make_client: ClientFactory) -> GrpcLogicClient:
    return await make_client(logic.target)
