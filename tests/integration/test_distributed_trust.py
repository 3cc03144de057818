"""Real `im-logic` and `im-gateway` processes: logic trusts no caller id from the wire, ids out of range
are bad frames, and infrastructure detail never reaches a client."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest

from im.client import ChatConnection, HttpClient, HttpError, Login
from im.rpc.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    conversation_pb2,
    conversation_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    group_pb2,
    group_pb2_grpc,
    inbox_pb2,
    inbox_pb2_grpc,
)
from tests.support.cluster import Backends, LocalCluster, isolated_backends, local_cluster
from tests.support.private_servers import private_mariadb
from tests.support.servers import RABBITMQ_URL, REDIS_URL, rabbitmq_vhost, redis_prefix
from tests.support.tls import ThrowawayCa

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

_emails = itertools.count()
TOO_BIG = 2**63
Metadata = tuple[tuple[str, str], ...]


async def signup(http: HttpClient) -> Login:
    return await http.signup(f"trust{next(_emails)}-{time.time_ns()}@example.test")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with isolated_backends() as backends, local_cluster(tmp_path, backends) as cluster:
        yield cluster


async def started_chat(cluster: LocalCluster) -> tuple[HttpClient, Login, Login, ChatConnection]:
    """One logic, one gateway, two users, the first one connected."""
    cluster.start_logic()
    http = HttpClient(cluster.start_gateway().url)
    alice, bob = await signup(http), await signup(http)
    return http, alice, bob, await ChatConnection.open(http.ws_url, alice.token)


def logic_target(cluster: LocalCluster) -> str:
    return f"127.0.0.1:{cluster.logics[0].grpc_port}"  # type: ignore[attr-defined]


async def test_logic_refuses_every_call_without_a_valid_token_except_register_and_login(
    cluster: LocalCluster,
) -> None:
    http, alice, bob, a = await started_chat(cluster)
    group = await http.create_group(alice.token, "alice's")
    await a.send("secret", "for bob only", to=bob.user_id)
    await a.expect("ack")

    async with grpc.aio.insecure_channel(logic_target(cluster)) as channel:
        inbox = inbox_pb2_grpc.InboxServiceStub(channel)  # type: ignore[no-untyped-call]
        groups = group_pb2_grpc.GroupServiceStub(channel)  # type: ignore[no-untyped-call]
        auth = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        directory = directory_pb2_grpc.DirectoryServiceStub(channel)  # type: ignore[no-untyped-call]
        conversations = conversation_pb2_grpc.ConversationServiceStub(channel)  # type: ignore[no-untyped-call]
        calls: dict[str, Callable[[Metadata], Awaitable[Any]]] = {
            "Sync": lambda md: inbox.Sync(inbox_pb2.SyncRequest(after=0, limit=10), timeout=5, metadata=md),
            "AddMember": lambda md: groups.AddMember(
                group_pb2.AddMemberRequest(group_id=group, user_id=bob.user_id), timeout=5, metadata=md),
            "ListMembers": lambda md: groups.ListMembers(
                group_pb2.ListMembersRequest(group_id=group), timeout=5, metadata=md),
            "ListMyGroups": lambda md: groups.ListMyGroups(group_pb2.ListMyGroupsRequest(), timeout=5, metadata=md),
            "CreateGroup": lambda md: groups.CreateGroup(
                group_pb2.CreateGroupRequest(name="mine"), timeout=5, metadata=md),
            "RemoveMember": lambda md: groups.RemoveMember(
                group_pb2.RemoveMemberRequest(group_id=group, user_id=alice.user_id), timeout=5, metadata=md),
            "GetMe": lambda md: directory.GetMe(directory_pb2.GetMeRequest(), timeout=5, metadata=md),
            "Block": lambda md: directory.Block(
                directory_pb2.BlockRequest(user_id=bob.user_id), timeout=5, metadata=md),
            "ListConversations": lambda md: conversations.ListConversations(
                conversation_pb2.ListConversationsRequest(), timeout=5, metadata=md),
            "History": lambda md: conversations.History(
                conversation_pb2.HistoryRequest(peer=bob.user_id), timeout=5, metadata=md),
        }
        no_token: list[Metadata] = [(), (("authorization", "Bearer forged"),), (("authorization", alice.token),),
                                    (("authorization", "Bearer "),)]
        for metadata in no_token:
            for name, call in calls.items():
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call(metadata)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (name, metadata)

        # Register and Login need no token.
        email = f"public{time.time_ns()}@example.test"
        await auth.Register(auth_pb2.RegisterRequest(email=email, password="correct horse", nickname="p"),
                            timeout=5)
        carol = await auth.Login(auth_pb2.LoginRequest(email=email, password="correct horse"), timeout=5)

        # With a token, the caller is the token's user, whatever else the request says.
        as_carol = (("authorization", f"Bearer {carol.token}"),)
        page = await inbox.Sync(inbox_pb2.SyncRequest(after=0, limit=10), timeout=5, metadata=as_carol)
        assert list(page.entries) == []
        with pytest.raises(grpc.aio.AioRpcError) as forbidden:
            await groups.AddMember(group_pb2.AddMemberRequest(group_id=group, user_id=carol.user_id),
                                   timeout=5, metadata=as_carol)
        assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
        me = await directory.GetMe(directory_pb2.GetMeRequest(), timeout=5, metadata=as_carol)
        assert (me.user.id, me.user.email) == (carol.user_id, email)
        with pytest.raises(grpc.aio.AioRpcError) as forbidden:
            await groups.RemoveMember(group_pb2.RemoveMemberRequest(group_id=group, user_id=alice.user_id),
                                      timeout=5, metadata=as_carol)
        assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
        history = await conversations.History(conversation_pb2.HistoryRequest(peer=bob.user_id), timeout=5,
                                              metadata=as_carol)
        assert list(history.entries) == [], "carol's inbox, not alice's"
    assert await http.members(alice.token, group) == [alice.user_id]
    await a.close()


async def test_ids_and_cids_the_store_cannot_hold_are_bad_frames_and_messaging_carries_on(
    cluster: LocalCluster,
) -> None:
    http, alice, bob, a = await started_chat(cluster)
    for frame in [{"type": "send", "cid": "big-to", "to": TOO_BIG, "content": "x"},
                  {"type": "send", "cid": "big-group", "group": TOO_BIG, "content": "x"},
                  {"type": "sync", "after": TOO_BIG},
                  # 64 characters but 256 bytes: MySQL's cid column holds 255 (main stalled on it)
                  {"type": "send", "cid": "😀" * 64, "to": bob.user_id, "content": "x"}]:
        await a.send_frame(frame)
        assert (await a.expect("error"))["code"] == "bad_frame", frame
    await a.send("fine", "after the bad ones", to=bob.user_id)
    assert (await a.expect("ack"))["cid"] == "fine"
    await a.close()


async def test_with_mysql_down_a_client_is_told_unavailable_with_a_request_id_and_no_detail(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        mariadb = stack.enter_context(private_mariadb(tmp_path / "mariadb"))
        prefix = stack.enter_context(redis_prefix(REDIS_URL))
        amqp = stack.enter_context(rabbitmq_vhost(RABBITMQ_URL))
        backends = Backends(f"{mariadb.url}/im_test", REDIS_URL, prefix, amqp)
        cluster = stack.enter_context(local_cluster(tmp_path, backends))
        logic = cluster.start_logic()
        gateway = cluster.start_gateway()
        http = HttpClient(gateway.url)
        alice = await signup(http)
        a = await ChatConnection.open(http.ws_url, alice.token)
        await asyncio.to_thread(mariadb.kill)
        await a.send_frame({"type": "sync", "after": 0})
        error = await a.expect("error", timeout=30)
        assert error["code"] == "unavailable"
        leaks = re.compile(r"mysql|maria|127\.0\.0\.1|:\d{2,5}\b|\(\d{4}|errno|operationalerror", re.IGNORECASE)
        assert not leaks.search(error["message"]), error["message"]
        assert re.fullmatch(r"[0-9a-f]{16}", error["request_id"]), error
        logged = [line for line in logic.log().splitlines() if error["request_id"] in line]
        assert logged and any(str(mariadb.port) in line for line in logged), logic.log()
        with pytest.raises(HttpError) as refused:
            await http.call("GET", "/api/v1/messages?after=0", token=alice.token)
        body = refused.value.body["error"]
        assert (refused.value.status, body["code"]) == (503, "unavailable")
        assert not leaks.search(body["message"]), body
        assert any(body["request_id"] in line and str(mariadb.port) in line for line in logic.log().splitlines())
        await a.close()


async def test_gateway_and_logic_talk_over_mutual_tls_and_nobody_else_gets_in(
    cluster: LocalCluster, tmp_path: Path,
) -> None:
    ca = ThrowawayCa(tmp_path / "ca")
    logic_cert, gateway_cert = ca.issue("logic", server=True), ca.issue("gateway", server=False)
    cluster.start_logic(IM_GRPC_TLS_CERT_FILE=str(logic_cert.cert), IM_GRPC_TLS_KEY_FILE=str(logic_cert.key),
                        IM_GRPC_TLS_CA_FILE=str(logic_cert.ca))
    gateway = cluster.start_gateway(IM_GRPC_TLS_CERT_FILE=str(gateway_cert.cert),
                                    IM_GRPC_TLS_KEY_FILE=str(gateway_cert.key), IM_GRPC_TLS_CA_FILE=str(ca.ca_file))
    assert "mutual TLS" in cluster.logics[0].log()
    http = HttpClient(gateway.url)
    alice, bob = await signup(http), await signup(http)
    a = await ChatConnection.open(http.ws_url, alice.token)
    b = await ChatConnection.open(http.ws_url, bob.token)
    await a.send("over-tls", "hello through mTLS", to=bob.user_id)
    assert (await a.expect("ack"))["cid"] == "over-tls"
    assert (await b.expect("msg"))["content"] == "hello through mTLS"
    assert [m["cid"] for m in await b.sync_all()] == ["over-tls"]

    register = auth_pb2.RegisterRequest(email=f"x{time.time_ns()}@example.test", password="correct horse",
                                        nickname="x")
    plaintext = grpc.aio.insecure_channel(logic_target(cluster))
    without_cert = grpc.aio.secure_channel(logic_target(cluster).replace("127.0.0.1", "localhost"),
                                           grpc.ssl_channel_credentials(ca.ca_file.read_bytes()))
    for channel in (plaintext, without_cert):
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await auth_pb2_grpc.AuthServiceStub(channel).Register(register, timeout=3)  # type: ignore[no-untyped-call]
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    await a.close()
    await b.close()
