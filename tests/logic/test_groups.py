"""Group changes: each one that changes something hands its `Applied` to `push`, once; the rest push nothing."""

from __future__ import annotations

import pytest

from im.backends.base import Applied
from im.backends.store.sqlite import SqliteStore
from im.contracts.records import Caller, GroupEvent, MemberEvent
from im.logic.groups import Groups
from im.protocol.errors import BadRequest, Conflict, Forbidden, NotFound


class RecordingPush:
    def __init__(self) -> None:
        self.pushed: list[Applied] = []

    async def __call__(self, applied: Applied) -> None:
        self.pushed.append(applied)


async def users(store: SqliteStore, *names: str) -> list[Caller]:
    return [Caller((await store.create_user(f"{n}@example.test", "hash", n)).id, "token") for n in names]


async def test_every_change_pushes_its_event_to_the_members_it_reaches(store: SqliteStore) -> None:
    push = RecordingPush()
    groups = Groups(store, push)
    ann, ben, cat = await users(store, "ann", "ben", "cat")
    group = (await groups.create(ann, " team ")).id

    await groups.add_member(ann, group, ben.user_id)
    await groups.add_member(ann, group, cat.user_id)
    joined = push.pushed[-1]
    assert joined.event == MemberEvent(group, cat.user_id, "joined", ann.user_id, joined.event.ts)
    assert set(joined.seqs) == {ann.user_id, ben.user_id, cat.user_id}

    assert (await groups.rename(ann, group, "crew")).name == "crew"
    renamed = push.pushed[-1]
    assert isinstance(renamed.event, GroupEvent) and renamed.event.name == "crew"

    await groups.remove_member(ann, group, cat.user_id)
    removed = push.pushed[-1]
    assert isinstance(removed.event, MemberEvent) and removed.event.action == "removed"
    assert set(removed.seqs) == {ann.user_id, ben.user_id, cat.user_id}, "the removed user hears it too"

    assert (await groups.hand_over(ann, group, ben.user_id)).owner == ben.user_id
    handed = push.pushed[-1]
    assert isinstance(handed.event, GroupEvent) and handed.event.owner == ben.user_id
    assert set(handed.seqs) == {ann.user_id, ben.user_id}, "no longer to the removed user"

    await groups.remove_member(ann, group, ann.user_id)
    left = push.pushed[-1]
    assert isinstance(left.event, MemberEvent) and (left.event.action, left.event.by) == ("left", ann.user_id)
    assert len(push.pushed) == 6


async def test_a_change_that_changes_nothing_or_is_refused_pushes_nothing(store: SqliteStore) -> None:
    push = RecordingPush()
    groups = Groups(store, push)
    ann, ben, out = await users(store, "ann", "ben", "out")
    group = (await groups.create(ann, "team")).id
    await groups.add_member(ann, group, ben.user_id)
    push.pushed.clear()

    await groups.add_member(ann, group, ben.user_id)
    await groups.rename(ann, group, "team")
    await groups.hand_over(ann, group, ann.user_id)
    refusals = [
        (groups.add_member(ben, group, out.user_id), Forbidden),
        (groups.rename(ben, group, "mine"), Forbidden),
        (groups.rename(ann, group, "  "), BadRequest),
        (groups.remove_member(ann, group, ann.user_id), Conflict),
        (groups.remove_member(ann, group, out.user_id), NotFound),
        (groups.hand_over(ann, group, out.user_id), NotFound),
        (groups.remove_member(ann, 2**63, ben.user_id), BadRequest),
        (groups.info(out, group), Forbidden),
        (groups.reads(out, group), Forbidden),
        (groups.members(ann, group + 1), NotFound),
    ]
    for call, error in refusals:
        with pytest.raises(error):
            await call
    assert push.pushed == []


async def test_a_failing_push_does_not_undo_or_fail_the_change(store: SqliteStore) -> None:
    async def broken(applied: Applied) -> None:
        raise ConnectionError("the bus is gone")

    groups = Groups(store, broken)
    ann, ben = await users(store, "ann", "ben")
    group = (await groups.create(ann, "team")).id
    await groups.add_member(ann, group, ben.user_id)
    assert await groups.members(ann, group) == [ann.user_id, ben.user_id]
