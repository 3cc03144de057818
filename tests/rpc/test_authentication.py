"""logic trusts no caller id from the wire: every call but Register and Login needs a valid token,
and a handler's caller is the token's user (`im.rpc.server`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from im.contracts.records import Caller, Group, Message
from im.protocol.errors import BadRequest, Forbidden, Unauthorized
from im.rpc.v1 import auth_pb2, auth_pb2_grpc, group_pb2, group_pb2_grpc, inbox_pb2, inbox_pb2_grpc
from tests.rpc.conftest import as_user

if TYPE_CHECKING:
    from im.rpc.client import GrpcLogicClient
    from tests.rpc.conftest import FakeLogic, LogicServer

Metadata = tuple[tuple[str, str], ...]
Call = Callable[[grpc.aio.Channel, Metadata], Awaitable[Any]]

GUARDED: dict[str, Call] = {
    "Sync": lambda ch, md: inbox_pb2_grpc.InboxServiceStub(ch).Sync(  # type: ignore[no-untyped-call]
        inbox_pb2.SyncRequest(after=0, limit=10), timeout=3, metadata=md),
    "CreateGroup": lambda ch, md: group_pb2_grpc.GroupServiceStub(ch).CreateGroup(  # type: ignore[no-untyped-call]
        group_pb2.CreateGroupRequest(name="g"), timeout=3, metadata=md),
    "AddMember": lambda ch, md: group_pb2_grpc.GroupServiceStub(ch).AddMember(  # type: ignore[no-untyped-call]
        group_pb2.AddMemberRequest(group_id=100, user_id=2), timeout=3, metadata=md),
    "ListMembers": lambda ch, md: group_pb2_grpc.GroupServiceStub(ch).ListMembers(  # type: ignore[no-untyped-call]
        group_pb2.ListMembersRequest(group_id=100), timeout=3, metadata=md),
    "ListMyGroups": lambda ch, md: group_pb2_grpc.GroupServiceStub(ch).ListMyGroups(  # type: ignore[no-untyped-call]
        group_pb2.ListMyGroupsRequest(), timeout=3, metadata=md),
}

NOT_A_TOKEN: list[Metadata] = [
    (),
    (("authorization", "Bearer forged"),),
    (("authorization", "token-1"),),  # no scheme
    (("authorization", "Basic token-1"),),
    (("authorization", "Bearer "),),
    (("authorization", "Bearer token-1"), ("authorization", "Bearer token-2")),
]


@pytest.mark.parametrize("method", sorted(GUARDED))
async def test_a_call_without_a_valid_token_is_unauthenticated_and_never_reaches_logic(
    logic: LogicServer, fake: FakeLogic, method: str,
) -> None:
    fake.groups[100] = Group(100, "g", 1)
    fake.members[100] = [1]
    async with grpc.aio.insecure_channel(logic.target) as channel:
        for metadata in NOT_A_TOKEN:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await GUARDED[method](channel, metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert ("im-error-code", "unauthorized") in tuple(refused.value.trailing_metadata())
    assert sum(fake.calls[name] for name in fake.calls if name != "verify_token") == 0


async def test_register_login_and_health_need_no_token(logic: LogicServer, fake: FakeLogic) -> None:
    async with grpc.aio.insecure_channel(logic.target) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        await auth.Register(auth_pb2.RegisterRequest(email="a@example.com", password="pw", nickname="A"), timeout=3)
        login = await auth.Login(auth_pb2.LoginRequest(email="a@example.com", password="pw"), timeout=3)
        assert login.token == "token-1"
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_caller_is_the_tokens_user(client: GrpcLogicClient, fake: FakeLogic) -> None:
    mine = Message(id=1, sender=2, to=7, group=None, content="for 7", cid="c", ts=1)
    fake.inboxes = {7: [(1, mine)], 8: [(1, Message(2, 2, 8, None, "for 8", "d", 1))]}
    assert (await client.sync(as_user(7), 0, 10)).entries == [(1, mine)]
    group = await client.create_group(as_user(7), "sevens")
    assert group.owner == 7
    with pytest.raises(Forbidden):
        await client.add_member(as_user(8), group.id, 8)


async def test_a_token_the_verifier_refuses_is_unauthorized(client: GrpcLogicClient) -> None:
    with pytest.raises(Unauthorized):
        await client.my_groups(Caller(1, "forged"))


async def test_ids_out_of_range_are_refused_before_a_request_is_built(client: GrpcLogicClient, fake: FakeLogic) -> None:
    for call in (client.add_member(as_user(1), 2**63, 2), client.add_member(as_user(1), 100, -1),
                 client.list_members(as_user(1), 0), client.sync(as_user(1), 2**63, 10)):
        with pytest.raises(BadRequest):
            await call
    assert not fake.calls
