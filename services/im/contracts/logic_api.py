"""What the gateway asks of logic: in-process in standalone mode, over gRPC in distributed mode."""

from __future__ import annotations

from typing import Protocol

from im.contracts.records import Group, InboxPage, Session, User

__all__ = ["LogicApi"]


class LogicApi(Protocol):
    """Errors are raised as `im.protocol.errors.ImError` subclasses."""

    async def register(self, email: str, password: str, nickname: str) -> User: ...

    async def login(self, email: str, password: str) -> Session: ...

    async def create_group(self, owner: int, name: str) -> Group: ...

    async def add_member(self, caller: int, group_id: int, user_id: int) -> None: ...

    async def list_members(self, caller: int, group_id: int) -> list[int]: ...

    async def my_groups(self, user_id: int) -> list[Group]: ...

    async def sync(self, user_id: int, after: int, limit: int) -> InboxPage: ...
