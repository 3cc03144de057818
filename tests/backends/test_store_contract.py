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

from im.backends.base import Applied, BatchItem, Edit, Outcome, Read, Recall, Refused, Send, Store
from im.contracts.records import (
    EditEvent,
    GroupEvent,
    InboxEvent,
    MemberEvent,
    Message,
    Profile,
    ReadEvent,
    RecallEvent,
    User,
)
from im.protocol.errors import BadRequest, Conflict, Forbidden, ImError, NotFound
from tests.support.stores import commit_sends

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


async def seqs_of(store: Store, user: int) -> list[int]:
    page = await store.events(user, 0, 100_000)
    return [seq for seq, _ in page.entries]


T0 = 1_700_000_000_000
MINUTE = 60_000


def send(sender: int, cid: str, *, to: int | None = None, group: int | None = None, content: str = "hi",
         ts: int = T0) -> Send:
    return Send(sender, cid, content, ts, to=to, group=group)


async def commit(store: Store, *items: BatchItem, edit: int | None = 15 * MINUTE,
                 recall: int | None = 2 * MINUTE) -> list[Outcome]:
    return await store.commit(list(items), edit_window_ms=edit, recall_window_ms=recall)


def applied(outcome: Outcome) -> Applied:
    assert isinstance(outcome, Applied), outcome
    return outcome


def verdicts(outcomes: list[Outcome]) -> list[type[Applied] | type[ImError]]:
    """Applied, or the error class of each refusal."""
    return [type(o.error) if isinstance(o, Refused) else Applied for o in outcomes]


def refused(outcome: Outcome, kind: type[ImError]) -> ImError:
    assert isinstance(outcome, Refused), outcome
    assert isinstance(outcome.error, kind), outcome.error
    return outcome.error


async def sent(store: Store, *sends: Send) -> list[Message]:
    return [stored.message for stored in await commit_sends(store, sends)]


async def inbox_of(store: Store, user: int) -> list[tuple[int, InboxEvent]]:
    return (await store.events(user, 0, 100_000)).entries


async def group_of(store: Store, owner: int, *members: int, name: str = "g") -> int:
    group = await store.create_group(name, owner)
    for member in members:
        assert await store.join_group(group.id, member, by=owner) is not None
    return group.id


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


# -- plain messages --------------------------------------------------------------------------------

async def test_private_messages_get_gapless_seqs_in_batch_order(store: Store) -> None:
    a, b, c = await users(store, 3)
    awkward = "héllo ✓ 🦊 \\ ' \" %s"
    results = await commit_sends(store, [send(a, "1", to=b), send(b, "2", to=a), send(a, "3", to=c, content=awkward)])
    assert [r.seqs for r in results] == [{a: 1, b: 1}, {b: 2, a: 2}, {a: 3, c: 1}]
    assert not any(r.duplicate for r in results)
    ids = [r.message.id for r in results]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    assert results[2].message.content == awkward
    assert (results[0].message.sender, results[0].message.to, results[0].message.group) == (a, b, None)

    more = await commit_sends(store, [send(c, "4", to=a)])
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
    await commit_sends(store, [send(members[1], "p", to=members[2])])
    [result] = await commit_sends(store, [send(members[0], "g1", group=group.id)])
    assert result.seqs == {members[0]: 1, members[1]: 2, members[2]: 2, members[3]: 1, members[4]: 1}
    assert result.message.group == group.id and result.message.to is None
    for member in members:
        page = await store.inbox(member, result.seqs[member] - 1, 1)
        assert page.entries == [(result.seqs[member], result.message)]


async def test_a_duplicate_within_a_batch_is_stored_once(store: Store) -> None:
    a, b = await users(store, 2)
    batch = [send(a, "x", to=b, content="first"), send(a, "y", to=b), send(a, "x", to=b, content="again")]
    results = await commit_sends(store, batch)
    assert [r.duplicate for r in results] == [False, False, True]
    assert results[2].message == results[0].message
    assert results[2].message.content == "first"
    assert results[2].seqs == {a: 1}
    assert await seqs_of(store, b) == [1, 2]


async def test_a_redelivered_message_is_stored_once(store: Store) -> None:
    a, b = await users(store, 2)
    [first] = await commit_sends(store, [send(a, "x", to=b)])
    await commit_sends(store, [send(b, "other", to=a)])
    again = await commit_sends(store, [send(a, "new", to=b), send(a, "x", to=b)])
    assert again[1].duplicate
    assert again[1].message == first.message
    assert again[1].seqs == {a: 1}
    assert again[0].seqs == {a: 3, b: 3}
    assert await seqs_of(store, a) == [1, 2, 3]
    assert await seqs_of(store, b) == [1, 2, 3]


async def test_cids_are_compared_exactly_and_per_sender(store: Store) -> None:
    a, b = await users(store, 2)
    batch = [send(a, "x", to=b), send(a, "X", to=b), send(a, "x ", to=b), send(b, "x", to=a)]
    results = await commit_sends(store, batch)
    assert not any(r.duplicate for r in results)
    assert len({r.message.id for r in results}) == 4


async def test_an_empty_batch_is_nothing(store: Store) -> None:
    assert await commit(store) == []


async def test_inbox_pages_with_after_limit_and_more(store: Store) -> None:
    a, b = await users(store, 2)
    await commit_sends(store, [send(a, str(i), to=b) for i in range(7)])
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
    batches: list[list[Send]] = []
    for b in range(24):
        batch = []
        for i in range(rng.randrange(1, 30)):
            sender = rng.choice(people)
            if rng.random() < 0.2:
                batch.append(send(sender, f"{b}-{i}", group=group.id))
            else:
                batch.append(send(sender, f"{b}-{i}", to=rng.choice([p for p in people if p != sender])))
        batches.append(batch)
    # Every batch is also sent again, as a redelivery would.
    runs = await asyncio.gather(*(commit_sends(store, batch) for batch in batches + batches[:6]))

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


# -- the batch transaction: commit -----------------------------------------------------------------

async def test_a_batch_refuses_items_one_by_one_and_commits_the_rest(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await store.create_group("g", a)
    outcomes = await commit(
        store,
        send(a, "1", to=b),
        send(a, "2", to=b + c + 1000),        # no such user
        send(c, "3", group=group.id),         # not a member
        send(a, "4", group=group.id + 1000),  # no such group
        send(a, "5", to=b, group=group.id),   # both
        send(2**64, "6", to=a),               # past 64 bits: names nobody
        send(b, "7", to=a),
    )
    assert verdicts(outcomes) == [Applied, NotFound, Forbidden, NotFound, BadRequest, NotFound, Applied]
    assert applied(outcomes[0]).seqs == {a: 1, b: 1}
    assert applied(outcomes[6]).seqs == {b: 2, a: 2}
    assert await seqs_of(store, a) == [1, 2] and await seqs_of(store, b) == [1, 2] and await seqs_of(store, c) == []


async def test_a_note_to_self_is_one_inbox_row_and_its_own_conversation(store: Store) -> None:
    [a] = await users(store, 1)
    [outcome] = await commit(store, send(a, "n", to=a, content="remember"))
    assert applied(outcome).seqs == {a: 1}
    [conversation] = (await store.conversations(a, 10)).entries
    assert (conversation.peer, conversation.unread) == (a, 0)


async def test_group_messages_reach_the_members_at_commit_time(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await group_of(store, a, b)
    [m] = await sent(store, send(b, "g1", group=group))
    assert [seq for seq, _ in await inbox_of(store, c)] == []
    await store.join_group(group, c, by=a)
    [outcome] = await commit(store, send(c, "g2", group=group))
    assert set(applied(outcome).seqs) == {a, b, c}
    assert m.group == group and m.to is None


async def test_duplicates_are_answered_with_the_original_whatever_their_kind(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(a, "x", to=b))
    first = await commit(store, Edit(a, "e", m.id, "edited", T0 + 1), send(a, "x", to=b, content="again"),
                         Edit(a, "e", m.id, "edited twice", T0 + 2))
    edit = applied(first[0])
    assert not edit.duplicate and edit.seqs == {a: 2, b: 2}
    assert applied(first[1]).duplicate and applied(first[1]).event == m and applied(first[1]).seqs == {a: 1}
    assert applied(first[2]).duplicate and applied(first[2]).event == edit.event and applied(first[2]).seqs == {a: 2}
    # Redelivered after the window: still the original answer, not a refusal.
    [again] = await commit(store, Edit(a, "e", m.id, "edited", T0 + 60 * MINUTE))
    assert applied(again).duplicate and applied(again).seqs == {a: 2}
    assert isinstance(applied(again).event, EditEvent) and applied(again).event.content == "edited"
    assert await seqs_of(store, b) == [1, 2]


# -- blocks ----------------------------------------------------------------------------------------

async def test_a_blocked_senders_private_message_is_refused_and_nothing_is_stored(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await group_of(store, a, b)
    assert await store.block(b, a) is True
    assert await store.block(b, a) is False
    assert await store.blocked(b) == [a] and await store.blocked(a) == []
    outcomes = await commit(store, send(a, "1", to=b), send(b, "2", to=a), send(a, "3", group=group),
                            send(c, "4", to=b))
    refused(outcomes[0], Forbidden)
    assert applied(outcomes[1]).seqs == {b: 2, a: 2}        # the blocker may still write (1: b joined)
    assert applied(outcomes[2]).seqs == {a: 3, b: 3}        # groups are unaffected
    assert applied(outcomes[3]).seqs == {c: 1, b: 4}
    assert [m.cid for _, m in await inbox_of(store, b) if isinstance(m, Message)] == ["2", "3", "4"]
    assert await store.unblock(b, a) is True
    assert await store.unblock(b, a) is False
    assert await store.blocked(b) == []
    assert applied((await commit(store, send(a, "1", to=b)))[0]).seqs == {a: 4, b: 5}


async def test_blocking_oneself_or_nobody_is_refused(store: Store) -> None:
    [a] = await users(store, 1)
    with pytest.raises(BadRequest):
        await store.block(a, a)
    with pytest.raises(NotFound):
        await store.block(a, a + 1000)
    assert await store.unblock(a, a + 1000) is False
    assert await store.unblock(a, 2**64) is False
    assert await store.blocked(2**64) == []


# -- edit and recall -------------------------------------------------------------------------------

async def test_the_sender_edits_within_the_window_and_sync_shows_the_current_content(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(a, "m", to=b, content="helo"))
    [outcome] = await commit(store, Edit(a, "e1", m.id, "hello", T0 + MINUTE))
    edit = applied(outcome)
    assert edit.event == EditEvent(m.id, a, b, None, "hello", T0 + MINUTE)
    assert edit.seqs == {a: 2, b: 2}
    for user in (a, b):
        entries = await inbox_of(store, user)
        assert [seq for seq, _ in entries] == [1, 2]
        message = entries[0][1]
        assert isinstance(message, Message)
        assert (message.content, message.edited_ts, message.recalled) == ("hello", T0 + MINUTE, False)
        assert entries[1][1] == edit.event


async def test_an_edit_or_recall_is_refused_to_others_after_the_window_and_of_nothing(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(a, "m", to=b))
    outcomes = await commit(
        store,
        Edit(b, "e1", m.id, "not yours", T0),
        Recall(b, "r1", m.id, T0),
        Edit(a, "e2", m.id + 1000, "nothing", T0),
        Edit(a, "e3", m.id, "late", T0 + 15 * MINUTE + 1),
        Recall(a, "r2", m.id, T0 + 2 * MINUTE + 1),
        Edit(a, "e4", 2**64, "past 64 bits", T0),
        Edit(a, "e5", m.id, "just in time", T0 + 15 * MINUTE),
    )
    assert verdicts(outcomes) == [Forbidden, Forbidden, NotFound, Forbidden, Forbidden, NotFound, Applied]
    assert applied(outcomes[6]).seqs == {a: 2, b: 2}
    # No window: any time.
    late = await store.commit([Recall(a, "r3", m.id, T0 + 10**9)], edit_window_ms=None, recall_window_ms=None)
    assert applied(late[0]).seqs == {a: 3, b: 3}


async def test_a_recall_erases_the_content_and_a_second_recall_answers_the_first(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(a, "m", to=b, content="oops"))
    [first] = await commit(store, Recall(a, "r1", m.id, T0 + 1000))
    recall = applied(first)
    assert recall.event == RecallEvent(m.id, a, b, None, T0 + 1000) and recall.seqs == {a: 2, b: 2}
    outcomes = await commit(store, Recall(a, "r2", m.id, T0 + 2000), Edit(a, "e", m.id, "back", T0 + 2000))
    assert applied(outcomes[0]).duplicate and applied(outcomes[0]).event == recall.event
    assert applied(outcomes[0]).seqs == {a: 2}
    refused(outcomes[1], Forbidden)
    for user in (a, b):
        message = (await inbox_of(store, user))[0][1]
        assert isinstance(message, Message) and message.recalled and message.content == ""
        [(_, last)] = [c.last for c in (await store.conversations(user, 10)).entries if c.last]
        assert last.recalled and last.content == ""
    assert (await store.history(b, peer=a, limit=10)).entries[0][1].content == ""


async def test_a_recalled_message_leaves_the_unread_counts_it_was_in(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await group_of(store, a, b, c)
    [m1, m2, m3, g1, g2] = await sent(store, send(a, "1", to=b), send(a, "2", to=b), send(a, "3", to=b),
                                      send(a, "g1", group=group), send(a, "g2", group=group))
    await commit(store, Read(c, g1.id, T0, group=group))
    await commit(store, Recall(a, "r2", m2.id, T0), Recall(a, "rg1", g1.id, T0), Recall(a, "rg2", g2.id, T0))

    async def unread(user: int) -> dict[tuple[int | None, int | None], int]:
        return {(x.peer, x.group): x.unread for x in (await store.conversations(user, 10)).entries}

    assert await unread(b) == {(a, None): 2, (None, group): 0}
    assert await unread(c) == {(None, group): 0}  # g1 was read before its recall, g2 was not
    assert await unread(a) == {(b, None): 0, (None, group): 0}
    await commit(store, Recall(a, "r2 again", m2.id, T0))  # a second recall is the first one's answer
    await commit(store, Read(b, m2.id, T0, peer=a))  # a read over a recalled message does not count it
    assert (await unread(b))[(a, None)] == 1
    await commit(store, Read(b, m3.id, T0, peer=a), Recall(a, "r1", m1.id, T0))  # m1 was read already
    assert (await unread(b))[(a, None)] == 0
    [m4, m5] = await sent(store, send(a, "4", to=b), send(a, "5", to=b))
    await commit(store, Read(b, m4.id, T0, peer=a), Recall(a, "r4", m4.id, T0), Recall(a, "r5", m5.id, T0))
    assert (await unread(b))[(a, None)] == 0


async def test_an_edit_later_recalled_shows_no_content_and_in_one_batch_too(store: Store) -> None:
    a, b = await users(store, 2)
    [m, n] = await sent(store, send(a, "m", to=b), send(a, "n", to=b))
    outcomes = await commit(store, Edit(a, "e1", m.id, "secret", T0), Recall(a, "r1", m.id, T0),
                            Recall(a, "r2", m.id, T0), Edit(a, "e2", n.id, "fine", T0))
    assert applied(outcomes[2]).duplicate and applied(outcomes[2]).event == applied(outcomes[1]).event
    rendered = [e for _, e in await inbox_of(store, b)]
    assert rendered[2] == EditEvent(m.id, a, b, None, "", T0)
    assert rendered[3] == RecallEvent(m.id, a, b, None, T0)
    assert rendered[4] == EditEvent(n.id, a, b, None, "fine", T0)


async def test_a_group_edit_reaches_whoever_has_the_message_former_members_too(store: Store) -> None:
    a, b, c, d = await users(store, 4)
    group = await group_of(store, a, b, c)
    [m] = await sent(store, send(b, "m", group=group))
    await store.remove_member(group, c, by=a)
    await store.join_group(group, d, by=a)
    [outcome] = await commit(store, Edit(b, "e", m.id, "edited", T0))
    assert set(applied(outcome).seqs) == {a, b, c}
    assert not [e for _, e in await inbox_of(store, d) if isinstance(e, EditEvent)]


async def test_a_recall_leaves_no_copy_of_the_content_in_any_table(store: Store) -> None:
    a, b = await users(store, 2)
    group = await group_of(store, a, b)
    secret = "the launch code is 0000"
    [m, g] = await sent(store, send(a, "m", to=b, content="x"), send(a, "g", group=group, content=secret))
    await commit(store, Edit(a, "e", m.id, secret, T0), Recall(a, "r", m.id, T0), Recall(a, "r2", g.id, T0))
    assert await _tables_containing(store, "launch code") == []


async def _tables_containing(store: Store, text: str) -> list[str]:
    """Every (table, column) of the store's database with `text` in a text value."""
    found = []
    if hasattr(store, "_db"):
        db = store._db
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                found += [table for value in row if isinstance(value, str | bytes) and text in str(value)]
        # And nowhere in the file once the log is folded in: recalled pages were zeroed (secure_delete).
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if text.encode() in Path(db.execute("PRAGMA database_list").fetchone()[2]).read_bytes():
            found.append("<database file>")
        return found
    async with store._connection() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
        await cur.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                          "WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('varchar', 'varbinary', 'mediumtext', "
                          "'text', 'blob', 'mediumblob', 'char', 'binary')")
        for table, column in await cur.fetchall():
            await cur.execute(f"SELECT COUNT(*) FROM `{table}` WHERE INSTR(`{column}`, %s) > 0", (text,))
            if (await cur.fetchone())[0]:
                found.append(f"{table}.{column}")
    return found


# -- reads -----------------------------------------------------------------------------------------

async def test_a_read_moves_my_pointer_tells_the_peer_and_recounts_unread(store: Store) -> None:
    a, b = await users(store, 2)
    messages = await sent(store, *(send(a, str(i), to=b, ts=T0 + i) for i in range(5)), send(b, "mine", to=a))
    [conversation] = (await store.conversations(b, 10)).entries
    assert (conversation.peer, conversation.unread, conversation.read_up_to) == (a, 5, None)
    [outcome] = await commit(store, Read(b, messages[2].id, T0 + 10, peer=a))
    read = applied(outcome)
    assert read.event == ReadEvent(b, a, None, messages[2].id, T0 + 10)
    assert read.seqs == {b: 7, a: 7}
    assert (await inbox_of(store, a))[-1] == (7, ReadEvent(b, b, None, messages[2].id, T0 + 10))  # a's side
    assert (await inbox_of(store, b))[-1] == (7, read.event)
    [mine] = (await store.conversations(b, 10)).entries
    assert (mine.unread, mine.read_up_to, mine.peer_read_up_to) == (2, messages[2].id, None)
    [theirs] = (await store.conversations(a, 10)).entries
    assert (theirs.unread, theirs.read_up_to, theirs.peer_read_up_to) == (1, None, messages[2].id)


async def test_a_read_that_moves_nothing_stores_nothing(store: Store) -> None:
    a, b, c = await users(store, 3)
    [m1, m2] = await sent(store, send(a, "1", to=b), send(a, "2", to=b))
    await commit(store, Read(b, m2.id, T0, peer=a))
    outcomes = await commit(store, Read(b, m1.id, T0, peer=a), Read(b, m2.id, T0, peer=a),
                            Read(c, m2.id, T0, peer=a), Read(b, m2.id, T0, group=12345))
    for outcome in outcomes:
        assert applied(outcome).seqs == {}
    assert applied(outcomes[0]).event == ReadEvent(b, a, None, m2.id, T0)
    assert await seqs_of(store, b) == [1, 2, 3] and await seqs_of(store, c) == []


async def test_a_read_past_the_last_message_stops_at_it(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(a, "1", to=b))
    [outcome] = await commit(store, Read(b, 2**63 - 1, T0, peer=a))
    assert isinstance(applied(outcome).event, ReadEvent) and applied(outcome).event.up_to == m.id
    [n] = await sent(store, send(a, "2", to=b))
    [conversation] = (await store.conversations(b, 10)).entries
    assert (conversation.read_up_to, conversation.unread) == (m.id, 1)
    assert n.id > m.id


async def test_group_reads_reach_only_the_reader_and_every_pointer_is_listed(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await group_of(store, a, b, c)
    messages = await sent(store, send(a, "1", group=group), send(b, "2", group=group))
    [outcome] = await commit(store, Read(c, messages[1].id, T0, group=group))
    assert set(applied(outcome).seqs) == {c}
    assert applied(outcome).event == ReadEvent(c, None, group, messages[1].id, T0)
    assert await store.group_reads(group) == {a: None, b: None, c: messages[1].id}
    assert await store.group_reads(group + 1000) == {} and await store.group_reads(2**64) == {}
    conversation = next(x for x in (await store.conversations(c, 10)).entries if x.group == group)
    assert (conversation.unread, conversation.peer_read_up_to) == (0, None)


async def test_a_read_towards_a_user_who_blocked_me_reaches_only_my_devices(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(b, "1", to=a))
    await store.block(b, a)
    [outcome] = await commit(store, Read(a, m.id, T0, peer=b))
    assert set(applied(outcome).seqs) == {a}
    [theirs] = (await store.conversations(b, 10)).entries
    assert theirs.peer_read_up_to is None  # b blocked a: a's pointer is not shown to b


async def test_unread_counts_follow_any_mix_of_sends_and_reads_in_and_across_batches(store: Store) -> None:
    """Each conversation's unread count is always its messages from others after my pointer, not
    recalled, however sends, reads (forward, backward, several in one batch) and recalls were grouped
    into commits."""
    people = await users(store, 3)
    group = await group_of(store, *people)
    keys = [(me, other, None) for me in people for other in people if other != me]
    keys += [(me, None, group) for me in people]
    from_others: dict[tuple[int, int | None, int | None], list[int]] = {key: [] for key in keys}
    pointers = dict.fromkeys(keys, 0)
    mine: dict[int, list[int]] = {me: [] for me in people}
    recalled: set[int] = set()
    rng = random.Random(7)
    for round_ in range(40):
        items: list[BatchItem] = []
        for i in range(rng.randint(1, 8)):
            me, peer, in_group_ = rng.choice(keys)
            draw = rng.random()
            if draw < 0.15 and mine[me]:
                items.append(Recall(me, f"r{round_}.{i}", rng.choice(mine[me]), T0))
            elif draw < 0.6:
                items.append(send(me, f"{round_}.{i}", to=peer, group=in_group_))
            else:
                seen = from_others[(me, peer, in_group_)]
                up_to = rng.choice(seen) if seen else 1
                items.append(Read(me, up_to, T0, peer=peer, group=in_group_))
        for item, outcome in zip(items, await commit(store, *items), strict=True):
            event = applied(outcome).event
            if isinstance(event, Message):
                mine[event.sender].append(event.id)
                receivers = people if event.group is not None else [event.to]
                for user in receivers:
                    if user != event.sender:
                        key = (user, None, group) if event.group is not None else (user, event.sender, None)
                        from_others[key].append(event.id)
            elif isinstance(item, Read) and isinstance(event, ReadEvent):
                key = (item.reader, item.peer, item.group)
                pointers[key] = max(pointers[key], event.up_to)
            elif isinstance(event, RecallEvent):
                recalled.add(event.message_id)
        for me in people:
            for conversation in (await store.conversations(me, 10)).entries:
                key = (me, conversation.peer, conversation.group)
                expected = sum(1 for message in from_others[key] if message > pointers[key] and message not in recalled)
                assert conversation.unread == expected, f"round {round_}, {key}"


# -- the inbox: every kind in seq order ------------------------------------------------------------

async def test_seqs_follow_batch_order_across_kinds(store: Store) -> None:
    a, b = await users(store, 2)
    [m] = await sent(store, send(a, "m", to=b))
    outcomes = await commit(store, send(b, "1", to=a), Read(a, m.id, T0, peer=b), Edit(a, "e", m.id, "x", T0),
                            send(a, "2", to=b), Read(b, m.id, T0, peer=a), Read(b, m.id, T0, peer=a))
    assert [applied(o).seqs.get(a) for o in outcomes] == [2, 3, 4, 5, 6, None]
    assert [applied(o).seqs.get(b) for o in outcomes] == [2, 3, 4, 5, 6, None]
    kinds = [type(e).__name__ for _, e in await inbox_of(store, b)]
    assert kinds == ["Message", "Message", "ReadEvent", "EditEvent", "Message", "ReadEvent"]
    page = await store.events(b, 2, 2)
    assert [seq for seq, _ in page.entries] == [3, 4] and page.more
    legacy = await store.inbox(b, 0, 100)
    assert [seq for seq, _ in legacy.entries] == [1, 2, 5]


async def test_reads_of_out_of_range_values_return_nothing(store: Store) -> None:
    [a] = await users(store, 1)
    assert (await store.events(2**64, 0, 10)).entries == []
    assert (await store.events(a, 2**64, 10)).entries == []
    assert (await store.events(a, 0, 2**64)).entries == []
    assert (await store.conversations(2**64, 10)).entries == []
    assert (await store.history(a, peer=2**64, limit=10)).entries == []
    assert (await store.history(a, peer=a, before=2**64, limit=2**64)).entries == []
    assert await store.user(2**64) is None and await store.profiles([2**64, -1]) == []
    assert await store.group(2**64) is None and await store.members([2**64]) == {}
    assert await store.groups_of(2**64) == [] and await store.existing_users([2**64]) == set()


async def test_out_of_range_ids_are_refused_like_unknown_ones_by_every_write(store: Store) -> None:
    a, b = await users(store, 2)
    group = await group_of(store, a, b)
    huge = 2**64
    with pytest.raises(NotFound):
        await store.create_group("g", huge)
    with pytest.raises(NotFound):
        await store.add_member(group, huge)
    with pytest.raises(NotFound):
        await store.join_group(group, huge, by=a)
    with pytest.raises(NotFound):
        await store.join_group(huge, b, by=a)
    with pytest.raises(NotFound):
        await store.remove_member(group, huge, by=a)
    with pytest.raises(NotFound):
        await store.hand_over(group, huge, by=a)
    with pytest.raises(Forbidden):
        await store.rename_group(group, "x", by=huge)
    with pytest.raises(NotFound):
        await store.block(a, huge)
    assert await store.members([group]) == {group: sorted([a, b])}


# -- group lifecycle -------------------------------------------------------------------------------

async def test_joining_is_an_event_for_every_member_and_the_new_one(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = (await store.create_group("g", a)).id
    joined = await store.join_group(group, b, by=a)
    assert joined is not None and joined.event == MemberEvent(group, b, "joined", a, joined.event.ts)
    assert joined.seqs == {a: 1, b: 1}
    assert await store.join_group(group, b, by=a) is None
    with pytest.raises(Forbidden):
        await store.join_group(group, c, by=b)
    with pytest.raises(NotFound):
        await store.join_group(group, c + 1000, by=a)
    with pytest.raises(NotFound):
        await store.join_group(group + 1000, c, by=a)
    assert [g.id for g in await store.groups_of(b)] == [group]
    assert any(x.group == group for x in (await store.conversations(b, 10)).entries)


async def test_after_removal_nothing_more_arrives_and_sending_is_forbidden(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await group_of(store, a, b, c)
    removed = await store.remove_member(group, c, by=a)
    assert isinstance(removed.event, MemberEvent) and (removed.event.user, removed.event.action) == (c, "removed")
    assert set(removed.seqs) == {a, b, c}
    outcomes = await commit(store, send(a, "1", group=group), send(c, "2", group=group))
    assert set(applied(outcomes[0]).seqs) == {a, b}
    refused(outcomes[1], Forbidden)
    assert (await inbox_of(store, c))[-1][1] == removed.event
    assert await store.members([group]) == {group: sorted([a, b])}
    assert await store.groups_of(c) == []
    assert await store.rename_group(group, "new", by=a) is not None
    assert (await inbox_of(store, c))[-1][1] == removed.event
    with pytest.raises(NotFound):
        await store.remove_member(group, c, by=a)
    with pytest.raises(Forbidden):
        await store.remove_member(group, a, by=b)


async def test_leaving_and_the_owner_who_cannot_leave_while_others_remain(store: Store) -> None:
    a, b = await users(store, 2)
    group = await group_of(store, a, b)
    with pytest.raises(Conflict):
        await store.remove_member(group, a, by=a)
    left = await store.remove_member(group, b, by=b)
    assert left.event == MemberEvent(group, b, "left", b, left.event.ts) and set(left.seqs) == {a, b}
    with pytest.raises(NotFound):
        await store.remove_member(group, b, by=b)
    alone = await store.remove_member(group, a, by=a)
    assert set(alone.seqs) == {a}
    assert await store.members([group]) == {group: []}
    refused((await commit(store, send(a, "x", group=group)))[0], Forbidden)


async def test_renaming_and_handing_over_are_the_owners_and_reach_every_member(store: Store) -> None:
    a, b, c = await users(store, 3)
    group = await group_of(store, a, b)
    renamed = await store.rename_group(group, "friends", by=a)
    assert renamed is not None and renamed.event == GroupEvent(group, "friends", a, a, renamed.event.ts)
    assert set(renamed.seqs) == {a, b}
    assert await store.rename_group(group, "friends", by=a) is None
    with pytest.raises(Forbidden):
        await store.rename_group(group, "mine", by=b)
    with pytest.raises(NotFound):
        await store.hand_over(group, c, by=a)
    assert await store.hand_over(group, a, by=a) is None
    handed = await store.hand_over(group, b, by=a)
    assert handed is not None and handed.event == GroupEvent(group, "friends", b, a, handed.event.ts)
    assert await store.group(group) == type(await store.group(group))(group, "friends", b)  # type: ignore[misc]
    with pytest.raises(Forbidden):
        await store.rename_group(group, "mine", by=a)
    assert (await store.remove_member(group, a, by=a)).seqs.keys() == {a, b}


async def test_a_member_who_left_and_joined_again_receives_again(store: Store) -> None:
    a, b = await users(store, 2)
    group = await group_of(store, a, b)
    await store.remove_member(group, b, by=b)
    await sent(store, send(a, "while away", group=group))
    await store.join_group(group, b, by=a)
    [m] = await sent(store, send(a, "back", group=group))
    history = (await store.history(b, group=group, limit=10)).entries
    assert [x.cid for _, x in history] == ["back"] and history[0][1] == m


# -- profiles --------------------------------------------------------------------------------------

async def test_profiles_show_nicknames_and_only_the_user_itself_gets_the_email(store: Store) -> None:
    a, b = await users(store, 2)
    assert await store.user(a) == User(a, "u0@example.com", "user 0")
    assert await store.user(a + 1000) is None
    assert await store.profiles([b, a, a + 1000]) == [Profile(a, "user 0"), Profile(b, "user 1")]
    assert await store.find_user("u1@example.com") == Profile(b, "user 1")
    assert await store.find_user("u1@example.co") is None
    assert await store.set_nickname(a, "Ann ✓") == User(a, "u0@example.com", "Ann ✓")
    assert await store.profiles([a]) == [Profile(a, "Ann ✓")]
    with pytest.raises(NotFound):
        await store.set_nickname(a + 1000, "x")
    with pytest.raises(NotFound):
        await store.set_nickname(2**64, "x")


# -- conversations and history ---------------------------------------------------------------------

async def test_conversations_are_listed_by_activity_with_a_cursor(store: Store) -> None:
    me, *peers = await users(store, 6)
    group = await group_of(store, peers[0], me)
    for i, peer in enumerate(peers):
        await commit(store, send(peer, f"p{i}", to=me, ts=T0 + 10 * i))
    await commit(store, send(peers[1], "again", to=me, ts=T0 + 100), send(me, "reply", to=peers[1], ts=T0 + 101))
    await commit(store, send(peers[0], "g", group=group, ts=T0 + 200))
    page = await store.conversations(me, 3)
    order = [(c.peer, c.group) for c in page.entries]
    assert order == [(None, group), (peers[1], None), (peers[4], None)]
    assert page.entries[1].unread == 2 and page.entries[1].last is not None
    assert page.entries[1].last[1].cid == "reply" and page.entries[1].updated_ts == T0 + 101
    assert page.next is not None
    rest = await store.conversations(me, 3, page.next)
    assert [c.peer for c in rest.entries] == [peers[3], peers[2], peers[0]] and rest.next is None
    assert (await store.conversations(me, 0)).entries == []


async def test_history_is_newest_first_with_before_and_limit(store: Store) -> None:
    a, b, c = await users(store, 3)
    await sent(store, *(send(a if i % 2 else b, str(i), to=b if i % 2 else a) for i in range(7)), send(c, "x", to=b))
    page = await store.history(b, peer=a, limit=3)
    assert [m.cid for _, m in page.entries] == ["6", "5", "4"] and page.more
    older = await store.history(b, peer=a, before=page.entries[-1][1].id, limit=10)
    assert [m.cid for _, m in older.entries] == ["3", "2", "1", "0"] and not older.more
    seqs = {m.cid: seq for seq, m in (await store.inbox(b, 0, 100)).entries}
    assert all(seqs[m.cid] == seq for seq, m in page.entries + older.entries)
    assert (await store.history(b, group=999, limit=10)).entries == []


async def test_events_of_every_kind_keep_every_inbox_gapless_under_concurrent_batches(store: Store) -> None:
    people = await users(store, 8)
    owner = people[0]
    groups = [(await store.create_group(name, owner)).id for name in ("one", "two")]
    joins = [await store.join_group(groups[0], p, by=owner) for p in people[1:6]]
    joins += [await store.join_group(groups[1], p, by=owner) for p in people[3:]]
    rng = random.Random(11)
    first = await commit(store, *(send(p, f"m{p}.{i}", to=rng.choice([q for q in people if q != p]), ts=T0)
                                  for i, p in enumerate(people * 3)),
                         *(send(owner, f"g{g}", group=g, ts=T0) for g in groups))
    messages = [applied(o).event for o in first]
    await store.block(people[7], people[6])
    batches: list[list[BatchItem]] = []
    for b in range(16):
        batch: list[BatchItem] = []
        for i in range(rng.randrange(1, 25)):
            actor = rng.choice(people)
            roll = rng.random()
            message = rng.choice(messages)
            assert isinstance(message, Message)
            if roll < 0.4:
                to = rng.choice(people)
                batch.append(send(actor, f"{b}.{i}", to=to, ts=T0 + b))
            elif roll < 0.55:
                batch.append(send(actor, f"{b}.{i}", group=rng.choice(groups), ts=T0 + b))
            elif roll < 0.7:
                batch.append(Edit(message.sender, f"{b}.{i}", message.id, f"edit {b}.{i}", T0 + b))
            elif roll < 0.75:
                batch.append(Recall(message.sender, f"{b}.{i}", message.id, T0 + b))
            elif message.group is not None:
                batch.append(Read(actor, message.id + rng.randrange(3), T0 + b, group=message.group))
            else:
                peer = message.sender if actor != message.sender else message.to
                batch.append(Read(actor, message.id + rng.randrange(3), T0 + b, peer=peer))
        batches.append(batch)

    async def changes() -> list[Applied | None]:
        done: list[Applied | None] = []
        for step in range(6):
            group = groups[step % 2]
            member = people[1 + step]
            try:
                done.append(await store.remove_member(group, member, by=owner))
            except NotFound:
                done.append(await store.join_group(group, member, by=owner))
            done.append(await store.rename_group(group, f"name {step}", by=owner))
        return done

    runs = await asyncio.gather(*(commit(store, *batch) for batch in batches), changes(), *(
        commit(store, *batch) for batch in batches[:4]))  # and some batches again, as a redelivery would
    changed = runs.pop(len(batches))
    assigned: dict[int, list[int]] = {p: [] for p in people}
    for outcome in [*joins, *first, *changed, *(o for run in runs for o in run)]:
        if isinstance(outcome, Applied) and not outcome.duplicate:
            for user, seq in outcome.seqs.items():
                assigned[user].append(seq)
    kinds: set[str] = set()
    for person in people:
        stored = await inbox_of(store, person)
        kinds |= {type(event).__name__ for _, event in stored}
        assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
        assert sorted(assigned[person]) == [seq for seq, _ in stored]  # each seq given out once, none lost
    assert kinds == {"Message", "EditEvent", "RecallEvent", "ReadEvent", "MemberEvent", "GroupEvent"}


def _describe(results: list[Any]) -> str:  # pragma: no cover - debugging aid
    return "\n".join(repr(r) for r in results)


# -- presence --------------------------------------------------------------------------------------


async def test_last_seen_keeps_the_latest_moment_of_each_user(store: Store) -> None:
    a, b, c = await users(store, 3)
    assert await store.last_seen([a, b, c]) == {}
    await store.record_last_seen({a: T0 + 5, b: T0})
    await store.record_last_seen({a: T0 + 1, b: T0 + 9})  # an earlier moment of a never wins
    assert await store.last_seen([a, b, c, 2**63, -1]) == {a: T0 + 5, b: T0 + 9}
    await store.record_last_seen({})


async def test_blockers_are_those_among_the_ids_who_blocked_the_user(store: Store) -> None:
    a, b, c, d = await users(store, 4)
    await store.block(b, a)
    await store.block(c, a)
    await store.block(a, d)  # a blocking d is not d blocking a
    assert await store.blockers(a, [b, c, d, 2**63]) == {b, c}
    assert await store.blockers(d, [a, b]) == {a}
    assert await store.blockers(a, []) == set()
