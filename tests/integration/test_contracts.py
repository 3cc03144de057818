"""A real `im serve` speaks what frames.json and openapi.json say: every frame of a session that provokes
every server frame type, and every HTTP answer of every route, is validated against them."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import orjson
import pytest

from im.client import ChatConnection, Exchange, HttpClient, HttpError
from tests.support.contracts import FRAMES, OPENAPI, FrameLog, check_exchanges, load_schema

pytestmark = pytest.mark.integration


async def drain_errors(connection: ChatConnection, count: int) -> list[dict[str, Any]]:
    return [await connection.expect("error") for _ in range(count)]


async def test_every_frame_of_a_real_session_fits_the_frame_schema(server_factory: Any) -> None:
    server = server_factory("--drain-seconds", "1")
    http = HttpClient(server.url)
    alice, bob = await http.signup("alice@example.com"), await http.signup("bob@example.com")
    group = await http.create_group(alice.token, "team")
    await http.add_member(alice.token, group, bob.user_id)
    bobs_group = await http.create_group(bob.token, "bob only")
    log = FrameLog()
    ann = await ChatConnection.open(http.ws_url, alice.token, trace=log)
    ben = await ChatConnection.open(http.ws_url, bob.token, trace=log)

    await ann.sync_all()
    await ann.send_frame({"type": "ping"})
    await ann.expect("pong")
    acks = []
    for i in range(3):
        await ann.send(f"p{i}", f"private {i}", to=bob.user_id)
        acks.append(await ann.expect("ack"))
        await ben.expect("msg")
    await ann.send("g", "to the team", group=group)
    await ann.expect("ack")
    await ben.expect("msg")
    assert len(await ben.sync_all(limit=2)) == 5, "his join, then 4 messages: pages of 2 with `more`"
    first = acks[0]["id"]
    await ann.send_frame({"type": "edit", "cid": "e", "id": first, "content": "private 0, edited"})
    await ann.expect("ack")
    await ben.expect("edit")
    await ben.send_frame({"type": "read", "peer": alice.user_id, "up_to": first})
    await ben.expect("read")
    await ann.expect("read")
    await ann.send_frame({"type": "recall", "cid": "r", "id": first})
    await ann.expect("ack")
    await ben.expect("recall")
    await ann.send_frame({"type": "typing", "to": bob.user_id})
    await ben.expect("typing")
    await ben.send_frame({"type": "presence", "watch": [alice.user_id, bob.user_id + 1000]})
    await ben.expect("presence")
    synced = await ben.sync_all(limit=2)
    assert [e["type"] for e in synced] == ["member"] + ["msg"] * 4 + ["edit", "read", "recall"], \
        "every kind, in seq order"

    # Frames that break the schema go out as text, so the log keeps only what a correct client sends.
    await ann.send_frame("not json")
    await ann.send_frame('{"type":"typing"}')
    await ann.send_frame(orjson.dumps({"type": "send", "cid": "f", "to": bob.user_id, "content": "x",
                                       "from": 1}).decode())
    await ann.send_frame(orjson.dumps({"type": "send", "cid": "long", "to": bob.user_id,
                                       "content": "x" * 4001}).decode())
    await ann.send("nobody", "hello?", to=bob.user_id + 1000)
    await ann.send("outsider", "let me in", group=bobs_group)
    errors = await drain_errors(ann, 6)
    assert sorted(e["code"] for e in errors) == ["bad_frame", "bad_frame", "forbidden", "forbidden", "not_found",
                                                 "too_large"], "logic's refusals may come after the gateway's"
    for i in range(120):  # past the burst of 100
        await ann.send(f"burst{i}", "fast", to=bob.user_id)
    codes = set()
    for _ in range(120):
        codes.add((await ann.next())["type"])
    assert codes == {"ack", "error"}
    assert "rate_limited" in {f["code"] for d, f in log.frames if d == "in" and f["type"] == "error"}

    await asyncio.to_thread(server.stop, signal.SIGTERM)
    await ann.expect("reconnect", timeout=20)
    while (frame := await ann.next(timeout=20))["type"] != "_closed":
        pass
    assert frame["code"] == 1001

    log.check()
    server_types = {ref["$ref"].rsplit("/", 1)[1] for ref in load_schema(FRAMES)["$defs"]["ServerFrame"]["oneOf"]}
    # `member` and `group` come from group changes, which this session makes none of.
    assert log.types("in") == {"ack", "msg", "edit", "recall", "read", "typing", "presence", "sync", "pong",
                               "error", "reconnect"}
    assert len(server_types) == len(log.types("in")) + 2, "the session produced every other server frame type"
    assert log.types("out") == {"send", "edit", "recall", "read", "typing", "presence", "sync", "ping"}


async def test_every_http_answer_of_every_route_fits_the_openapi_document(standalone_server: Any) -> None:
    exchanges: list[Exchange] = []
    http = HttpClient(standalone_server.url, on_exchange=exchanges.append)
    ann = await http.signup("ann@example.com")
    ben = await http.signup("ben@example.com")
    group = await http.create_group(ann.token, "team")

    async def refused(method: str, path: str, body: Any = None, token: str | None = None) -> int:
        with pytest.raises(HttpError) as caught:
            await http.call(method, path, body, token)
        return caught.value.status

    assert await refused("POST", "/api/v1/register",
                         {"email": "ann@example.com", "password": "long enough", "nickname": "A"}) == 409
    assert await refused("POST", "/api/v1/register", {"email": "no-at", "password": "long enough",
                                                      "nickname": "A"}) == 400
    assert await refused("POST", "/api/v1/login", {"email": "ann@example.com", "password": "wrong one"}) == 401
    assert await refused("POST", "/api/v1/login", b"[1]") == 400
    await http.groups(ann.token)
    assert await refused("GET", "/api/v1/groups", None, "garbage") == 401
    assert await refused("POST", "/api/v1/groups", {"name": " "}, ann.token) == 400
    await http.add_member(ann.token, group, ben.user_id)
    assert await refused("POST", f"/api/v1/groups/{group}/members", {"user_id": "x"}, ann.token) == 400
    assert await refused("POST", f"/api/v1/groups/{group}/members", {"user_id": ann.user_id}, ben.token) == 403
    assert await refused("POST", "/api/v1/groups/999/members", {"user_id": ben.user_id}, ann.token) == 404
    assert await refused("POST", f"/api/v1/groups/{group}/members", None, None) == 401
    await http.members(ben.token, group)
    loner = await http.signup("loner@example.com")
    assert await refused("GET", f"/api/v1/groups/{group}/members", None, loner.token) == 403
    assert await refused("GET", "/api/v1/groups/999/members", None, ann.token) == 404
    assert await refused("GET", f"/api/v1/groups/{group}/members", None, None) == 401

    conversation = await ChatConnection.open(http.ws_url, ann.token)
    for i in range(3):
        await conversation.send(f"m{i}", "hello", to=ben.user_id)
        await conversation.expect("ack")
    await conversation.close()
    assert len(await http.history(ben.token, limit=2)) == 4, "his join and 3 messages: pages with `more`"
    assert await refused("GET", "/api/v1/messages?after=-1", None, ben.token) == 400
    assert await refused("GET", "/api/v1/messages", None, None) == 401

    ann_email = (await http.me(ann.token))["email"]
    await http.set_nickname(ann.token, "Ann")
    assert await refused("PATCH", "/api/v1/me", {"nickname": ""}, ann.token) == 400
    assert await refused("GET", "/api/v1/me", None, None) == 401
    await http.user(ben.token, ann.user_id)
    assert await refused("GET", "/api/v1/users/999", None, ben.token) == 404
    assert await refused("GET", "/api/v1/users/0", None, ben.token) == 400
    await http.users(ben.token, [ann.user_id, 999])
    assert await refused("GET", "/api/v1/users?ids=1,x", None, ben.token) == 400
    await http.lookup(ben.token, ann_email)
    assert await refused("GET", "/api/v1/users/lookup?email=nobody@example.com", None, ben.token) == 404
    assert await refused("GET", "/api/v1/users/lookup?email=no-at", None, ben.token) == 400

    await http.group(ben.token, group)
    assert await refused("GET", f"/api/v1/groups/{group}", None, loner.token) == 403
    await http.rename_group(ann.token, group, "crew")
    assert await refused("PATCH", f"/api/v1/groups/{group}", {"name": "x"}, ben.token) == 403
    await http.group_reads(ann.token, group)
    assert await refused("GET", f"/api/v1/groups/{group}/reads", None, loner.token) == 403
    assert await refused("DELETE", f"/api/v1/groups/{group}/members/{ann.user_id}", None, ann.token) == 409
    await http.hand_over(ann.token, group, ben.user_id)
    assert await refused("POST", f"/api/v1/groups/{group}/owner", {"user_id": ann.user_id}, ann.token) == 403
    await http.remove_member(ann.token, group, ann.user_id)

    conversations, _ = await http.conversations(ben.token, limit=1)
    assert conversations and await http.conversations(ben.token) != ([], None)
    assert await refused("GET", "/api/v1/conversations?cursor=bad", None, ben.token) == 400
    await http.conversation_messages(ben.token, peer=ann.user_id, limit=2)
    await http.conversation_messages(ben.token, group=group)
    assert await refused("GET", f"/api/v1/conversations/group/{group}/messages", None, loner.token) == 403
    assert await refused("GET", "/api/v1/conversations/peer/999/messages", None, ben.token) == 404

    await http.block(ben.token, loner.user_id)
    assert await refused("PUT", f"/api/v1/blocks/{ben.user_id}", None, ben.token) == 403
    assert await http.blocked(ben.token) == [loner.user_id]
    await http.unblock(ben.token, loner.user_id)
    assert [p["user_id"] for p in await http.presence(ben.token, [ann.user_id, 999])] == [ann.user_id, 999]
    assert await refused("GET", "/api/v1/presence?ids=1,x", None, ben.token) == 400
    assert await refused("GET", "/api/v1/presence?ids=1", None, None) == 401

    assert await http.healthy() and await http.ready()
    for path in ("/", "/app.js", "/style.css", "/index.html"):
        assert (await http.request("GET", path)).status == 200, path
    assert (await http.request("GET", "/no-such-file.js")).status == 404
    assert (await http.request("GET", "/ws")).status == 426, "without the upgrade headers"
    for name, document in (("openapi.json", OPENAPI), ("frames.json", FRAMES)):
        served = await http.request("GET", f"/api/v1/{name}")
        assert (served.status, orjson.loads(served.body)) == (200, load_schema(document)), name

    covered = check_exchanges(exchanges)
    spec = load_schema(OPENAPI)
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert covered == documented, f"not exercised: {documented - covered}"

    wrong_method = await http.request("DELETE", "/api/v1/register")
    assert wrong_method.status == 405
    assert orjson.loads(wrong_method.body)["error"]["code"] == "method_not_allowed"
