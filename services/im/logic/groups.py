"""Groups: creating one, who is in it, and the owner's changes, each pushed to the members it reaches.

A change (join, leave or removal, rename, hand-over) is one store transaction that also writes its
event into every receiver's inbox (`Store.join_group` and the others); the `Applied` it returns is
handed to `push`, which sends it to whoever of them is online. A change that changes nothing
(renaming to the same name, adding a member twice) writes and pushes nothing.

Who may see what: a group's details, members and read pointers are for its current members only
(`Forbidden` for anyone else, `NotFound` when there is no such group).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from im.backends.base import Applied, Store
from im.contracts.records import Caller, Group, GroupInfo
from im.logic.accounts import checked_name
from im.protocol.errors import Forbidden, NotFound
from im.protocol.ids import require_ids

__all__ = ["Groups", "Push"]

log = logging.getLogger(__name__)

Push = Callable[[Applied], Awaitable[None]]
"""Sends an applied change to the online users among its receivers (`Logic.push`)."""


class Groups:
    def __init__(self, store: Store, push: Push) -> None:
        self._store = store
        self._push = push

    async def create(self, caller: Caller, name: str) -> Group:
        return await self._store.create_group(checked_name("name", name), caller.user_id)

    async def mine(self, caller: Caller) -> list[Group]:
        return await self._store.groups_of(caller.user_id)

    async def info(self, caller: Caller, group_id: int) -> GroupInfo:
        group, members = await self._as_member(caller, group_id)
        return GroupInfo(group.id, group.name, group.owner, len(members))

    async def members(self, caller: Caller, group_id: int) -> list[int]:
        return (await self._as_member(caller, group_id))[1]

    async def reads(self, caller: Caller, group_id: int) -> dict[int, int | None]:
        await self._as_member(caller, group_id)
        return await self._store.group_reads(group_id)

    async def add_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        require_ids(group_id=group_id, user_id=user_id)
        await self._pushed(await self._store.join_group(group_id, user_id, by=caller.user_id))

    async def remove_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        """The owner removes `user_id`, or `user_id` is the caller, who leaves."""
        require_ids(group_id=group_id, user_id=user_id)
        await self._pushed(await self._store.remove_member(group_id, user_id, by=caller.user_id))

    async def rename(self, caller: Caller, group_id: int, name: str) -> GroupInfo:
        require_ids(group_id=group_id)
        await self._pushed(await self._store.rename_group(group_id, checked_name("name", name), by=caller.user_id))
        return await self.info(caller, group_id)

    async def hand_over(self, caller: Caller, group_id: int, user_id: int) -> GroupInfo:
        require_ids(group_id=group_id, user_id=user_id)
        await self._pushed(await self._store.hand_over(group_id, user_id, by=caller.user_id))
        return await self.info(caller, group_id)

    async def _as_member(self, caller: Caller, group_id: int) -> tuple[Group, list[int]]:
        require_ids(group_id=group_id)
        group = await self._store.group(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        members = (await self._store.members([group_id])).get(group_id, [])
        if caller.user_id not in members:
            raise Forbidden(f"only members of group {group_id} see it")
        return group, members

    async def _pushed(self, applied: Applied | None) -> None:
        if applied is None:
            return
        try:
            await self._push(applied)
        except Exception:  # noqa: BLE001 - the change is committed: the members catch up with sync
            log.exception("pushing a group change failed; its receivers catch up with sync")
