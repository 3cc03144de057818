"""The `Store` contract, run against every implementation.

Add an implementation by adding a factory to `FACTORIES`: an async context manager that gets a
temporary directory and yields an unopened store (and cleans up whatever it created on exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from im.backends.base import NewMessage, Store
from im.protocol.errors import Conflict

from .conftest import mysql_database

Factory = Callable[[Path], AbstractAsyncContextManager[Store]]


@contextlib.asynccontextmanager
async def _mysql(tmp_path: Path) -> AsyncIterator[Store]:
    from im.backends.store.mysql import MySqlStore

    with mysql_database() as url:
        yield MySqlStore(url, pool_size=8)


@contextlib.asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    try:
        from im.backends.store.sqlite import SqliteStore
    except ImportError as e:
        pytest.skip(f"SqliteStore not importable: {e}")
    yield SqliteStore(tmp_path / "store.db")


FACTORIES: dict[str, Factory] = {"mysql": _mysql, "sqlite": _sqlite}


@pytest.fixture(params=sorted(FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with FACTORIES[request.param](tmp_path) as created:
        await created.open()
        try:
            yield created
        finally:
            await created.close()


async def users(store: Store, n: int) -> list[int]:
    return [(await store.create_user(f"u{i}@example.com", "hash", f"user {i}")).id for i in range(n)]


def private(sender: int, to: int, cid: str, content: str = "hi", ts: int = 1_700_000_000_000) -> NewMessage:
    return NewMessage(sender=sender, cid=cid, to=to, group=None, content=content, ts=ts,
                      recipients=(sender, to))


def in_group(sender: int, group: int, members: list[int], cid: str) -> NewMessage:
    return NewMessage(sender=sender, cid=cid, to=None, group=group, content=f"to group {cid}",
                      ts=1_700_000_000_000, recipients=tuple(members))


async def seqs_of(store: Store, user: int) -> list[int]:
    page = await store.inbox(user, 0, 100_000)
    return [seq for seq, _ in page.entries]


# -- users and groups ------------------------------------------------------------------------------

async def test_a_registered_user_has_credentials(store: Store) -> None:
    user = await store.create_user("ann@example.com", "argon2$hash", "Ann 🦊")
    found = await store.credentials("ann@example.com")
    assert found is not None
    assert found.user == user
    assert found.password_hash == "argon2$hash"
    assert user.nickname == "Ann 🦊"
    assert await store.credentials("nobody@example.com") is None


async def test_a_taken_email_is_a_conflict(store: Store) -> None:
    await store.create_user("ann@example.com", "h", "Ann")
    with pytest.raises(Conflict):
        await store.create_user("ann@example.com", "h2", "Other Ann")


async def test_existing_users_filters_unknown_ids(store: Store) -> None:
    a, b = await users(store, 2)
    assert await store.existing_users([a, b, b + 1000]) == {a, b}
    assert await store.existing_users([]) == set()


async def test_groups_and_members(store: Store) -> None:
    owner, bob, carol = await users(store, 3)
    group = await store.create_group("friends", owner)
    assert (group.name, group.owner) == ("friends", owner)
    assert await store.group(group.id) == group
    assert await store.group(group.id + 1000) is None
    assert sorted((await store.members([group.id]))[group.id]) == [owner]

    assert await store.add_member(group.id, bob) is True
    assert await store.add_member(group.id, bob) is False
    other = await store.create_group("other", carol)
    await store.add_member(other.id, bob)

    members = await store.members([group.id, other.id, other.id + 1000])
    assert set(members) == {group.id, other.id}
    assert sorted(members[group.id]) == sorted([owner, bob])
    assert sorted(members[other.id]) == sorted([carol, bob])
    assert [g.id for g in await store.groups_of(bob)] == sorted([group.id, other.id])
    assert await store.groups_of(owner) == [group]


# -- persist ---------------------------------------------------------------------------------------

async def test_private_messages_get_gapless_seqs_in_batch_order(store: Store) -> None:
    a, b, c = await users(store, 3)
    awkward = "héllo ✓ 🦊 \\ ' \" %s"
    results = await store.persist([private(a, b, "1"), private(b, a, "2"), private(a, c, "3", awkward)])
    assert [r.seqs for r in results] == [{a: 1, b: 1}, {b: 2, a: 2}, {a: 3, c: 1}]
    assert not any(r.duplicate for r in results)
    ids = [r.message.id for r in results]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    assert results[2].message.content == awkward
    assert (results[0].message.sender, results[0].message.to, results[0].message.group) == (a, b, None)

    more = await store.persist([private(c, a, "4")])
    assert more[0].seqs == {c: 2, a: 4}
    page = await store.inbox(a, 0, 10)
    assert [seq for seq, _ in page.entries] == [1, 2, 3, 4]
    assert [m.cid for _, m in page.entries] == ["1", "2", "3", "4"]
    assert page.entries[0][1] == results[0].message
    assert not page.more


async def test_a_group_message_reaches_every_members_inbox(store: Store) -> None:
    members = await users(store, 5)
    group = await store.create_group("g", members[0])
    for member in members[1:]:
        await store.add_member(group.id, member)
    await store.persist([private(members[1], members[2], "p")])
    [result] = await store.persist([in_group(members[0], group.id, members, "g1")])
    assert result.seqs == {members[0]: 1, members[1]: 2, members[2]: 2, members[3]: 1, members[4]: 1}
    assert result.message.group == group.id and result.message.to is None
    for member in members:
        page = await store.inbox(member, result.seqs[member] - 1, 1)
        assert page.entries == [(result.seqs[member], result.message)]


async def test_a_duplicate_within_a_batch_is_stored_once(store: Store) -> None:
    a, b = await users(store, 2)
    batch = [private(a, b, "x", "first"), private(a, b, "y"), private(a, b, "x", "again")]
    results = await store.persist(batch)
    assert [r.duplicate for r in results] == [False, False, True]
    assert results[2].message == results[0].message
    assert results[2].message.content == "first"
    assert results[2].seqs == {a: 1}
    assert await seqs_of(store, b) == [1, 2]


async def test_a_redelivered_message_is_stored_once(store: Store) -> None:
    a, b = await users(store, 2)
    [first] = await store.persist([private(a, b, "x")])
    await store.persist([private(b, a, "other")])
    again = await store.persist([private(a, b, "new"), private(a, b, "x")])
    assert again[1].duplicate
    assert again[1].message == first.message
    assert again[1].seqs == {a: 1}
    assert again[0].seqs == {a: 3, b: 3}
    assert await seqs_of(store, a) == [1, 2, 3]
    assert await seqs_of(store, b) == [1, 2, 3]


async def test_cids_are_compared_exactly_and_per_sender(store: Store) -> None:
    a, b = await users(store, 2)
    batch = [private(a, b, "x"), private(a, b, "X"), private(a, b, "x "), private(b, a, "x")]
    results = await store.persist(batch)
    assert not any(r.duplicate for r in results)
    assert len({r.message.id for r in results}) == 4


async def test_an_empty_batch_is_nothing(store: Store) -> None:
    assert await store.persist([]) == []


async def test_inbox_pages_with_after_limit_and_more(store: Store) -> None:
    a, b = await users(store, 2)
    await store.persist([private(a, b, str(i)) for i in range(7)])
    page = await store.inbox(b, 0, 3)
    assert [seq for seq, _ in page.entries] == [1, 2, 3] and page.more
    page = await store.inbox(b, 3, 3)
    assert [seq for seq, _ in page.entries] == [4, 5, 6] and page.more
    page = await store.inbox(b, 6, 3)
    assert [seq for seq, _ in page.entries] == [7] and not page.more
    page = await store.inbox(b, 4, 3)
    assert [seq for seq, _ in page.entries] == [5, 6, 7] and not page.more
    assert (await store.inbox(b, 7, 3)).entries == []
    assert (await store.inbox(b + a + 100, 0, 3)).entries == []


async def test_concurrent_batches_keep_every_inbox_gapless(store: Store) -> None:
    people = await users(store, 8)
    group = await store.create_group("all", people[0])
    for person in people[1:]:
        await store.add_member(group.id, person)
    rng = random.Random(7)
    batches: list[list[NewMessage]] = []
    for b in range(24):
        batch = []
        for i in range(rng.randrange(1, 30)):
            sender = rng.choice(people)
            if rng.random() < 0.2:
                batch.append(in_group(sender, group.id, people, f"{b}-{i}"))
            else:
                batch.append(private(sender, rng.choice([p for p in people if p != sender]), f"{b}-{i}"))
        batches.append(batch)
    # Every batch is also sent again, as a redelivery would.
    runs = await asyncio.gather(*(store.persist(batch) for batch in batches + batches[:6]))

    received: dict[int, list[int]] = {p: [] for p in people}
    for result in (r for run in runs[:len(batches)] for r in run):
        if not result.duplicate:
            for user, seq in result.seqs.items():
                received[user].append(seq)
    for person in people:
        stored = await seqs_of(store, person)
        assert stored == list(range(1, len(stored) + 1))
        assert sorted(received[person]) == stored
    originals = {(r.message.sender, r.message.cid): r for run in runs for r in run if not r.duplicate}
    assert len(originals) == sum(len(b) for b in batches)
    for result in (r for run in runs for r in run if r.duplicate):
        original = originals[(result.message.sender, result.message.cid)]
        assert result.message == original.message
        assert result.seqs == {result.message.sender: original.seqs[result.message.sender]}


def _describe(results: list[Any]) -> str:  # pragma: no cover - debugging aid
    return "\n".join(repr(r) for r in results)
