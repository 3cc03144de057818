"""The HTTP API of ARCHITECTURE.md 4.1 against real servers, in both modes: `im serve` (logic in the
gateway's process) and `im-logic` + `im-gateway` over gRPC with MySQL, RabbitMQ and Redis.

Reads are made through `Store.commit` on the server's own database (the WebSocket `read` frame is
another part of this issue); everything else goes through the public HTTP API and the WebSocket.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from im.backends.base import Read, Store
from im.backends.store.mysql import MySqlStore
from im.backends.store.sqlite import SqliteStore
from im.client import ChatConnection, HttpClient, HttpError, Login
from tests.support.cluster import isolated_backends, local_cluster
from tests.support.processes import im_serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_emails = itertools.count()
TOO_BIG = 2**63


@dataclass
class Api:
    http: HttpClient
    open_store: Callable[[], Store]
    """A store on the server's own database, for what the HTTP API cannot do (reads)."""

    async def signup(self, name: str) -> Login:
        return await self.http.signup(f"{name}{next(_emails)}-{time.time_ns()}@example.test", nickname=name)

    async def read(self, reader: int, up_to: int, *, peer: int | None = None, group: int | None = None) -> None:
        store = self.open_store()
        await store.open()
        try:
            await store.commit([Read(reader, up_to, int(time.time() * 1000), peer=peer, group=group)],
                               edit_window_ms=None, recall_window_ms=None)
        finally:
            await store.close()


@pytest.fixture(scope="module", params=["standalone", "distributed"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server (or cluster) for the whole module: every test signs up its own users, so no test
    sees another's conversations, groups or blocks."""
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "standalone":
        with im_serve(workdir) as server:
            yield Api(HttpClient(server.url), lambda: SqliteStore(server.data_dir / "im.sqlite3"))
        return
    with isolated_backends() as backends, local_cluster(workdir, backends) as cluster:
        cluster.start_logic()
        gateway = cluster.start_gateway()
        yield Api(HttpClient(gateway.url), lambda: MySqlStore(backends.mysql_url, pool_size=1))


async def status(call: Awaitable[Any]) -> int:
    """The status of a call that must be refused, and its body is an error of the protocol's shape."""
    with pytest.raises(HttpError) as refused:
        await call
    assert set(refused.value.body["error"]) >= {"code", "message", "request_id"}
    return refused.value.status


async def answer(connection: ChatConnection, cid: str) -> dict[str, Any]:
    """The `ack` or `error` answering `cid`, past frames pushed meanwhile (messages, group events)."""
    while True:
        frame = await connection.next()
        if frame["type"] in ("ack", "error") and frame.get("cid") == cid:
            return frame


@asynccontextmanager
async def connected(api: Api, who: Login) -> AsyncIterator[ChatConnection]:
    connection = await ChatConnection.open(api.http.ws_url, who.token)
    try:
        yield connection
    finally:
        await connection.close()


async def sent(connection: ChatConnection, cid: str, content: str, *, to: int | None = None,
               group: int | None = None) -> int:
    """Send and wait for the ack: the message's id."""
    await connection.send(cid, content, to=to, group=group)
    ack = await answer(connection, cid)
    assert ack["type"] == "ack", ack
    return int(ack["id"])


def named(conversation: dict[str, Any]) -> tuple[str, int]:
    """A conversation's name: ("peer", user id) or ("group", group id); the two kinds share id values."""
    return ("peer", conversation["peer"]) if "peer" in conversation else ("group", conversation["group"])


async def test_me_profiles_and_lookup_show_my_email_to_me_only(api: Api) -> None:
    http = api.http
    ann, ben = await api.signup("ann"), await api.signup("ben")
    me = await http.me(ann.token)
    assert me["user_id"] == ann.user_id and me["nickname"] == "ann" and me["email"].startswith("ann")

    assert (await http.set_nickname(ann.token, "  Annie  "))["nickname"] == "Annie", "trimmed like at registration"
    assert (await http.me(ann.token))["nickname"] == "Annie"
    for bad in (" ", "x" * 65):
        assert await status(http.set_nickname(ann.token, bad)) == 400
    assert await status(http.call("PATCH", "/api/v1/me", {"nickname": 5}, ann.token)) == 400
    assert await status(http.me("not a token")) == 401

    assert await http.user(ben.token, ann.user_id) == {"user_id": ann.user_id, "nickname": "Annie"}
    assert await status(http.user(ben.token, ann.user_id + 10_000)) == 404
    for bad in ("0", "abc", "-1", "01", str(TOO_BIG)):
        assert await status(http.call("GET", f"/api/v1/users/{bad}", None, ben.token)) == 400, bad

    profiles = await http.users(ben.token, [ben.user_id, ann.user_id, ann.user_id + 10_000])
    assert profiles == sorted([{"user_id": ann.user_id, "nickname": "Annie"},
                               {"user_id": ben.user_id, "nickname": "ben"}], key=lambda p: p["user_id"])
    assert len(await http.users(ben.token, [ann.user_id] * 200)) == 1, "200 ids are fine"
    assert await status(http.users(ben.token, [ann.user_id] * 201)) == 400
    for bad in ("", "1,,2", "1,x", "0", f"1,{TOO_BIG}", "1;2"):
        assert await status(http.call("GET", f"/api/v1/users?ids={bad}", None, ben.token)) == 400, bad
    assert await status(http.call("GET", "/api/v1/users", None, ben.token)) == 400

    email = me["email"]
    assert await http.lookup(ben.token, email.upper()) == {"user_id": ann.user_id, "nickname": "Annie"}, \
        "normalised like registration"
    assert await http.lookup(ben.token, f"  {email}") == {"user_id": ann.user_id, "nickname": "Annie"}
    assert await status(http.lookup(ben.token, "nobody-" + email)) == 404
    assert await status(http.lookup(ben.token, email[:-3])) == 404, "exact match only, no prefix search"
    assert await status(http.lookup(ben.token, "not an address")) == 400
    assert await status(http.call("GET", "/api/v1/users/lookup", None, ben.token)) == 400

    for answer_to_ben in (await http.user(ben.token, ann.user_id), await http.lookup(ben.token, email),
                          await http.users(ben.token, [ann.user_id])):
        assert email not in orjson.dumps(answer_to_ben).decode() and "email" not in orjson.dumps(answer_to_ben).decode()


async def test_the_owner_renames_hands_over_and_removes_and_members_leave(api: Api) -> None:
    http = api.http
    ann, ben, cat, out = [await api.signup(n) for n in ("ann", "ben", "cat", "out")]
    group = await http.create_group(ann.token, "team")
    await http.add_member(ann.token, group, ben.user_id)
    await http.add_member(ann.token, group, cat.user_id)
    await http.add_member(ann.token, group, cat.user_id)  # twice is not an error
    assert await http.group(ben.token, group) == {"group_id": group, "name": "team", "owner": ann.user_id,
                                                  "member_count": 3}
    assert await status(http.group(out.token, group)) == 403
    assert await status(http.group(ann.token, group + 10_000)) == 404
    assert await status(http.call("GET", f"/api/v1/groups/{TOO_BIG}", None, ann.token)) == 400

    assert await status(http.rename_group(ben.token, group, "mine now")) == 403
    assert await status(http.rename_group(ann.token, group, " ")) == 400
    assert (await http.rename_group(ann.token, group, " crew "))["name"] == "crew"
    assert (await http.group(cat.token, group))["name"] == "crew"

    assert await status(http.hand_over(ben.token, group, ben.user_id)) == 403, "only the owner hands over"
    assert await status(http.hand_over(ann.token, group, out.user_id)) == 404, "to a member only"
    assert await status(http.call("POST", f"/api/v1/groups/{group}/owner", {"user_id": "2"}, ann.token)) == 400

    assert await status(http.remove_member(ben.token, group, cat.user_id)) == 403, "only the owner removes"
    assert await status(http.remove_member(ann.token, group, ann.user_id)) == 409, "the owner leaves last"
    assert await status(http.remove_member(ann.token, group, out.user_id)) == 404
    assert await status(http.call("DELETE", f"/api/v1/groups/{group}/members/0", None, ann.token)) == 400
    await http.remove_member(ann.token, group, cat.user_id)
    assert await http.members(ann.token, group) == sorted([ann.user_id, ben.user_id]), "current members only"
    assert await status(http.group(cat.token, group)) == 403
    assert await status(http.members(cat.token, group)) == 403
    assert await status(http.group_reads(cat.token, group)) == 403
    assert group not in [g["group_id"] for g in await http.groups(cat.token)]

    assert (await http.hand_over(ann.token, group, ben.user_id))["owner"] == ben.user_id
    assert await status(http.rename_group(ann.token, group, "back")) == 403, "no longer the owner"
    await http.remove_member(ann.token, group, ann.user_id)  # a member leaves
    assert await http.group(ben.token, group) == {"group_id": group, "name": "crew", "owner": ben.user_id,
                                                  "member_count": 1}
    await http.remove_member(ben.token, group, ben.user_id)  # the last one, the owner, may leave
    assert await status(http.group(ben.token, group)) == 403


async def test_a_removed_member_cannot_send_and_its_history_stops_at_the_removal(api: Api) -> None:
    http = api.http
    ann, ben = await api.signup("ann"), await api.signup("ben")
    never = await api.signup("never")
    group = await http.create_group(ann.token, "team")
    await http.add_member(ann.token, group, ben.user_id)
    async with connected(api, ann) as a, connected(api, ben) as b:
        before = [await sent(a, f"before{i}", f"before {i}", group=group) for i in range(2)]
        assert await sent(b, "mine", "from ben", group=group) > before[-1]
        await http.remove_member(ann.token, group, ben.user_id)
        after = await sent(a, "after", "after the removal", group=group)

        await b.send("again", "still here?", group=group)
        refused = await answer(b, "again")
        assert (refused["type"], refused["code"]) == ("error", "forbidden")

    history, more = await http.conversation_messages(ben.token, group=group)
    assert [m["content"] for m in history] == ["from ben", "before 1", "before 0"] and not more, "newest first"
    assert after in [m["id"] for m in (await http.conversation_messages(ann.token, group=group))[0]]
    assert await status(http.conversation_messages(never.token, group=group)) == 403, "never a member"
    assert await status(http.conversation_messages(never.token, group=group + 10_000)) == 404
    older, more = await http.conversation_messages(ben.token, group=group, before=history[0]["id"], limit=1)
    assert [m["content"] for m in older] == ["before 1"] and more
    last, more = await http.conversation_messages(ben.token, group=group, before=before[0])
    assert last == [] and not more, "a former member paging past its oldest message gets an empty page"


async def test_private_history_pages_newest_first(api: Api) -> None:
    http = api.http
    ann, ben = await api.signup("ann"), await api.signup("ben")
    async with connected(api, ann) as a:
        ids = [await sent(a, f"m{i}", f"hello {i}", to=ben.user_id) for i in range(5)]
    page, more = await http.conversation_messages(ben.token, peer=ann.user_id, limit=2)
    assert [m["id"] for m in page] == ids[:-3:-1] and more
    assert all(m["from"] == ann.user_id and m["to"] == ben.user_id for m in page)
    page, more = await http.conversation_messages(ann.token, peer=ben.user_id, before=ids[2])
    assert [m["id"] for m in page] == [ids[1], ids[0]] and not more
    assert (await http.conversation_messages(ann.token, peer=ben.user_id, limit=10**6))[0][0]["id"] == ids[-1], \
        "past the largest page is the largest page"
    assert await status(http.conversation_messages(ann.token, peer=ben.user_id + 10_000)) == 404
    for query in ("before=0", "before=x", f"before={TOO_BIG}", "limit=0", "limit=-1"):
        path = f"/api/v1/conversations/peer/{ben.user_id}/messages?{query}"
        assert await status(http.call("GET", path, None, ann.token)) == 400, query
    assert await status(http.call("GET", "/api/v1/conversations/peer/0/messages", None, ann.token)) == 400


async def test_the_conversation_list_counts_unread_messages_and_pages_with_its_cursor(api: Api) -> None:
    http = api.http
    ann, ben, cat = await api.signup("ann"), await api.signup("ben"), await api.signup("cat")
    group = await http.create_group(ann.token, "team")
    await http.add_member(ann.token, group, ben.user_id)
    async with connected(api, ann) as a, connected(api, ben) as b, connected(api, cat) as c:
        from_ben = [await sent(b, f"b{i}", f"ben {i}", to=ann.user_id) for i in range(3)]
        mine = await sent(a, "a0", "ann to ben", to=ben.user_id)
        in_group = [await sent(b, "g0", "ben in the group", group=group),
                    await sent(a, "g1", "ann in the group", group=group),
                    await sent(b, "g2", "ben again", group=group)]
        from_cat = await sent(c, "c0", "cat to ann", to=ann.user_id)

    conversations = await http.all_conversations(ann.token)
    assert [named(c) for c in conversations] == [("peer", cat.user_id), ("group", group), ("peer", ben.user_id)], \
        "most recent activity first"
    by_cat, by_group, by_ben = conversations
    assert (by_cat["unread"], by_cat["last"]["id"], by_cat["read_up_to"]) == (1, from_cat, None)
    assert (by_group["unread"], by_group["last"]["id"]) == (2, in_group[-1]), "my own message is not unread"
    assert "peer_read_up_to" not in by_group
    assert (by_ben["unread"], by_ben["last"]["id"], by_ben["peer_read_up_to"]) == (3, mine, None)
    assert by_ben["last"]["content"] == "ann to ben" and by_ben["updated_ts"] >= by_ben["last"]["ts"]

    await api.read(ann.user_id, from_ben[1], peer=ben.user_id)
    await api.read(ann.user_id, in_group[-1], group=group)
    await api.read(ben.user_id, mine, peer=ann.user_id)
    after = {named(c): c for c in await http.all_conversations(ann.token)}
    assert (after["peer", ben.user_id]["unread"], after["peer", ben.user_id]["read_up_to"]) == (1, from_ben[1])
    assert after["peer", ben.user_id]["peer_read_up_to"] == mine, "ben read my message"
    assert (after["group", group]["unread"], after["group", group]["read_up_to"]) == (0, in_group[-1])
    assert after["peer", cat.user_id]["unread"] == 1
    assert (await http.group_reads(ben.token, group)) == {ann.user_id: in_group[-1], ben.user_id: None}
    bens = {named(c): c for c in await http.all_conversations(ben.token)}
    assert (bens["peer", ann.user_id]["unread"], bens["peer", ann.user_id]["peer_read_up_to"]) == (0, from_ben[1])
    assert bens["group", group]["unread"] == 1, "ann's one message in the group"

    first, cursor = await http.conversations(ann.token, limit=2)
    assert len(first) == 2 and cursor is not None
    rest, end = await http.conversations(ann.token, limit=2, cursor=cursor)
    assert [c.get("peer") for c in rest] == [ben.user_id] and end is None
    assert await http.all_conversations(ann.token, limit=1) == await http.all_conversations(ann.token)
    assert len((await http.conversations(ann.token, limit=10**6))[0]) == 3, "past the largest page: the largest"
    assert (await http.conversations(cat.token))[0][0]["peer"] == ann.user_id
    for bad in ("abc", "1.3.1", "1.1.0", "-1.1.1", f"1.1.{TOO_BIG}", "1.1", "1.1.1.1", cursor + "0" * 20, ""):
        assert await status(http.conversations(ann.token, cursor=bad)) == 400, bad
    for bad in ("0", "x", "-1"):
        assert await status(http.call("GET", f"/api/v1/conversations?limit={bad}", None, ann.token)) == 400


async def test_a_blocked_user_cannot_send_me_private_messages_but_groups_are_unaffected(api: Api) -> None:
    http = api.http
    ann, ben = await api.signup("ann"), await api.signup("ben")
    group = await http.create_group(ann.token, "team")
    await http.add_member(ann.token, group, ben.user_id)
    await http.block(ann.token, ben.user_id)
    await http.block(ann.token, ben.user_id)  # twice is not an error
    assert await http.blocked(ann.token) == [ben.user_id]
    assert await http.blocked(ben.token) == []
    assert await status(http.block(ann.token, ann.user_id)) == 403, "not oneself"
    assert await status(http.block(ann.token, ben.user_id + 10_000)) == 404
    assert await status(http.call("PUT", "/api/v1/blocks/0", None, ann.token)) == 400

    async with connected(api, ben) as b, connected(api, ann) as a:
        await b.send("blocked", "hi ann", to=ann.user_id)
        refused = await answer(b, "blocked")
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
        await sent(b, "in group", "hi team", group=group)
        await sent(a, "to ben", "ann may still write", to=ben.user_id)
        assert "hi ann" not in [m.get("content") for m in await http.history(ann.token)], "nothing stored"

        await http.unblock(ann.token, ben.user_id)
        await http.unblock(ann.token, ben.user_id)  # twice is not an error
        assert await http.blocked(ann.token) == []
        await sent(b, "unblocked", "hi again", to=ann.user_id)


async def pushed(connection: ChatConnection, kind: str) -> dict[str, Any]:
    """The next frame of this `type`, past messages and other events."""
    while True:
        frame = await connection.next()
        if frame["type"] == kind:
            return frame


async def test_group_changes_are_pushed_to_the_online_members_and_stop_at_a_removal(api: Api) -> None:
    http = api.http
    ann, ben, cat = await api.signup("ann"), await api.signup("ben"), await api.signup("cat")
    group = await http.create_group(ann.token, "team")
    await http.add_member(ann.token, group, ben.user_id)
    async with connected(api, ben) as b, connected(api, cat) as c:
        await http.add_member(ann.token, group, cat.user_id)
        for connection in (b, c):
            joined = await pushed(connection, "member")
            assert (joined["group"], joined["user"], joined["action"], joined["by"]) == (
                group, cat.user_id, "joined", ann.user_id)

        await http.rename_group(ann.token, group, "crew")
        for connection in (b, c):
            renamed = await pushed(connection, "group")
            assert (renamed["name"], renamed["owner"], renamed["by"]) == ("crew", ann.user_id, ann.user_id)

        await http.remove_member(ann.token, group, cat.user_id)
        for connection in (b, c):
            removed = await pushed(connection, "member")
            assert (removed["user"], removed["action"]) == (cat.user_id, "removed")

        await http.hand_over(ann.token, group, ben.user_id)
        handed = await pushed(b, "group")
        assert handed["owner"] == ben.user_id
        await c.send_frame({"type": "ping"})
        assert (await c.next())["type"] == "pong", "nothing more reaches the removed member"
