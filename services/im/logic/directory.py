"""Who is who: my own account, other users' profiles, and whom I block.

A user sees their own email (`me`); anyone else only ever gets a `Profile`, which has none. Finding a
user by email takes the exact address, normalised as registration stores it, so one address answers
whatever its case; there is no search by prefix.
"""

from __future__ import annotations

from im.backends.base import Store
from im.contracts.records import Caller, Profile, User
from im.logic.accounts import checked_name, normalise_email
from im.protocol.errors import BadRequest, Forbidden, NotFound
from im.protocol.ids import require_ids

__all__ = ["Directory"]


class Directory:
    """`max_profiles`: ids one `profiles` call may name at most."""

    def __init__(self, store: Store, *, max_profiles: int = 200) -> None:
        self._store = store
        self._max_profiles = max_profiles

    async def me(self, caller: Caller) -> User:
        user = await self._store.user(caller.user_id)
        if user is None:
            raise NotFound("your account does not exist any more")
        return user

    async def set_nickname(self, caller: Caller, nickname: str) -> User:
        return await self._store.set_nickname(caller.user_id, checked_name("nickname", nickname))

    async def profiles(self, caller: Caller, user_ids: list[int]) -> list[Profile]:
        """The existing users among `user_ids`, ascending by id; ids that name nobody are left out."""
        if len(user_ids) > self._max_profiles:
            raise BadRequest(f"at most {self._max_profiles} ids at once")
        for user_id in user_ids:
            require_ids(user_id=user_id)
        return await self._store.profiles(user_ids)

    async def find(self, caller: Caller, email: str) -> Profile:
        profile = await self._store.find_user(normalise_email(email))
        if profile is None:
            raise NotFound("no user has this email address")
        return profile

    async def block(self, caller: Caller, user_id: int) -> None:
        require_ids(user_id=user_id)
        if user_id == caller.user_id:  # a well-formed request the server refuses: not a `BadRequest`
            raise Forbidden("you cannot block yourself")
        await self._store.block(caller.user_id, user_id)

    async def unblock(self, caller: Caller, user_id: int) -> None:
        require_ids(user_id=user_id)
        await self._store.unblock(caller.user_id, user_id)

    async def blocked(self, caller: Caller) -> list[int]:
        return await self._store.blocked(caller.user_id)
