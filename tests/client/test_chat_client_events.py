"""`ChatClient` with the inbox events of a real `im serve`: edits, recalls and reads it sends, and every
kind it receives, typed, once per seq, pushed live or synced, and gapless; typing and presence, typed,
the watch set kept across a server restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from im.client import (
    Acked,
    Changed,
    ChatClient,
    ClientOptions,
    Edited,
    Event,
    GroupChanged,
    HttpClient,
    MemberChanged,
    MemoryStore,
    Presence,
    PresenceUpdate,
    ReadMoved,
    Recalled,
    Received,
    ReconnectPolicy,
    SendRefused,
    TypingNotice,
)

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self, client: ChatClient) -> None:
        self.events: list[Event] = []
        self.task = asyncio.create_task(self._read(client))

    async def _read(self, client: ChatClient) -> None:
        async for event in client.events():
            self.events.append(event)

    def inbox(self) -> list[Received | Changed]:
        return [e for e in self.events if isinstance(e, Received | Changed)]

    def typing(self) -> list[TypingNotice]:
        return [e for e in self.events if isinstance(e, TypingNotice)]

    def presence(self, user_id: int) -> list[Presence]:
        return [p for e in self.events if isinstance(e, PresenceUpdate) for p in e.users if p.user_id == user_id]

    def changes(self, kind: type) -> list[Any]:
        return [e.change for e in self.events if isinstance(e, Changed) and isinstance(e.change, kind)]

    async def until(self, condition: Callable[[], bool], timeout: float = 15) -> None:
        async def wait() -> None:
            while not condition():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(wait(), timeout)


def assert_gapless_once(recorder: Recorder) -> None:
    seqs = [e.seq for e in recorder.inbox()]
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"each seq once, none missing: {seqs}"


async def test_edits_recalls_reads_and_group_changes_arrive_typed_once_per_seq(standalone_server: Any) -> None:
    http = HttpClient(standalone_server.url)
    alice_login, bob_login = await http.signup("alice@example.com"), await http.signup("bob@example.com")
    alice = ChatClient(standalone_server.url, alice_login, store=MemoryStore())
    bob = ChatClient(standalone_server.url, bob_login, store=MemoryStore())
    bob_phone = ChatClient(standalone_server.url, bob_login, store=MemoryStore())
    for client in (alice, bob, bob_phone):
        await client.start()
    alice_events, bob_events, phone_events = Recorder(alice), Recorder(bob), Recorder(bob_phone)

    message = await (await alice.send("helo", to=bob_login.user_id))
    edited = await (await alice.edit(message.id, "hello"))
    assert isinstance(edited, Acked) and edited.id == message.id and edited.seq == message.seq + 1
    await bob.read(message.id, peer=alice_login.user_id)
    second = await (await alice.send("oops", to=bob_login.user_id))
    recalled = await (await alice.recall(second.id))
    assert recalled.id == second.id

    await bob_events.until(lambda: len(bob_events.changes(Recalled)) == 1)
    [bob_edit] = bob_events.changes(Edited)
    assert (bob_edit.id, bob_edit.sender, bob_edit.to, bob_edit.content) == (
        message.id, alice_login.user_id, bob_login.user_id, "hello")
    await alice_events.until(lambda: bool(alice_events.changes(ReadMoved)))
    [seen] = alice_events.changes(ReadMoved)
    assert (seen.by, seen.peer, seen.up_to) == (bob_login.user_id, bob_login.user_id, message.id), \
        "the peer's read, named from my side"
    await phone_events.until(lambda: len(phone_events.changes(Recalled)) == 1)
    [own_read] = phone_events.changes(ReadMoved)
    assert (own_read.by, own_read.peer) == (bob_login.user_id, alice_login.user_id), "my other device follows"
    assert [c.source for c in alice_events.events if isinstance(c, Changed) and not isinstance(c.change, ReadMoved)
            ] == ["ack", "ack"], "my own edit and recall come as their acks"

    with pytest.raises(SendRefused) as refused:
        await (await bob.edit(message.id, "not mine"))
    assert refused.value.code == "forbidden"

    group = await http.create_group(alice_login.token, "team")
    await http.add_member(alice_login.token, group, bob_login.user_id)
    await http.rename_group(alice_login.token, group, "the team")
    await bob_events.until(lambda: bool(bob_events.changes(GroupChanged)))
    assert [(m.group, m.user, m.action) for m in bob_events.changes(MemberChanged)] == [
        (group, bob_login.user_id, "joined")]
    assert [(g.group, g.name, g.owner) for g in bob_events.changes(GroupChanged)] == [
        (group, "the team", alice_login.user_id)]

    # A client starting afresh gets the same entries by sync, messages in their current state.
    late = ChatClient(standalone_server.url, bob_login, store=MemoryStore())
    await late.start()
    late_events = Recorder(late)
    await late_events.until(lambda: bool(late_events.changes(GroupChanged)))
    synced = [m.message for m in late_events.events if isinstance(m, Received)]
    assert [(m.content, m.edited_ts is not None, m.recalled) for m in synced] == [
        ("hello", True, False), ("", False, True)]
    assert {e.source for e in late_events.inbox()} == {"sync"}
    await bob_events.until(lambda: len(bob_events.inbox()) == len(late_events.inbox()))
    for recorder in (alice_events, bob_events, late_events):
        assert_gapless_once(recorder)
    for client in (alice, bob, bob_phone, late):
        await client.close()


async def test_typing_and_presence_arrive_typed_and_the_watch_is_sent_again_after_a_restart(
    server_factory: Any,
) -> None:
    server = server_factory()
    http = HttpClient(server.url)
    alice_login, bob_login = await http.signup("alice@example.com"), await http.signup("bob@example.com")
    bob_id = bob_login.user_id
    options = ClientOptions(reconnect=ReconnectPolicy(first_delay_seconds=0.2, max_delay_seconds=1.0))
    watches: list[dict[str, Any]] = []

    def record_watches(way: str, frame: dict[str, Any]) -> None:
        if way == "out" and frame["type"] == "presence":
            watches.append(frame)

    alice = ChatClient(server.url, alice_login, store=MemoryStore(), options=options, trace=record_watches)
    bob = ChatClient(server.url, bob_login, store=MemoryStore(), options=options)
    await alice.watch_presence([bob_id])
    await alice.start()
    alice_events = Recorder(alice)
    await alice_events.until(lambda: alice_events.presence(bob_id) == [Presence(bob_id, False, None)])

    await bob.start()
    bob_events = Recorder(bob)
    await alice_events.until(lambda: alice_events.presence(bob_id)[-1].online)
    await bob_events.until(lambda: bob.connected)
    assert await bob.typing(to=alice_login.user_id)
    assert not await bob.typing(to=alice_login.user_id), "once per interval"
    await alice_events.until(lambda: alice_events.typing() == [TypingNotice(bob_id, bob_id, None)])
    group = await http.create_group(bob_login.token, "team")
    await http.add_member(bob_login.token, group, alice_login.user_id)
    assert await bob.typing(group=group)
    await alice_events.until(lambda: len(alice_events.typing()) == 2)
    assert alice_events.typing()[1] == TypingNotice(bob_id, None, group)
    assert bob_events.typing() == [], "the typist's own connections are not told"

    assert watches == [{"type": "presence", "watch": [bob_id]}]
    await asyncio.to_thread(server.stop)
    await alice_events.until(lambda: not alice.connected)
    await asyncio.to_thread(server.start)
    await alice_events.until(lambda: len(watches) == 2 and len(alice_events.presence(bob_id)) >= 3, timeout=30)
    await alice_events.until(lambda: alice_events.presence(bob_id)[-1].online)

    await bob.close()
    await alice_events.until(lambda: not alice_events.presence(bob_id)[-1].online)
    last_seen = alice_events.presence(bob_id)[-1].last_seen
    assert last_seen is not None and abs(last_seen - time.time() * 1000) < 60_000
    await alice.close()
