"""Every `LogicApi` call and every `ImError` crosses gRPC and comes back as it left."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from im.contracts.records import Group, InboxPage, Message, Session, User
from im.protocol.errors import (
    BadFrame,
    BadRequest,
    Conflict,
    Forbidden,
    ImError,
    Internal,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from im.rpc.client import GrpcLogicClient

if TYPE_CHECKING:
    from tests.rpc.conftest import ClientFactory, FakeLogic, LogicServer, ServerFactory

ERRORS: list[type[ImError]] = [
    BadFrame, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, RateLimited, Unavailable,
    Internal,
]


def test_every_error_type_is_covered() -> None:
    assert set(ERRORS) == set(ImError.__subclasses__())


async def test_register_and_login(client: GrpcLogicClient, fake: FakeLogic) -> None:
    user = await client.register("ann@example.com", "secret-pw", "Ann ✓")
    assert user == User(id=1, email="ann@example.com", nickname="Ann ✓")
    session = await client.login("ann@example.com", "secret-pw")
    assert session == Session(token="token-1", user_id=1, expires_at=2_000_000_000)
    assert await client.validate_token(session.token) == (1, 2_000_000_000)


async def test_groups(client: GrpcLogicClient) -> None:
    group = await client.create_group(1, "team")
    assert group == Group(id=100, name="team", owner=1)
    await client.add_member(1, group.id, 2)
    await client.add_member(1, group.id, 3)
    assert await client.list_members(2, group.id) == [1, 2, 3]
    assert await client.my_groups(2) == [group]
    assert await client.my_groups(99) == []
    assert await client.list_members(1, (await client.create_group(1, "empty")).id) == [1]


async def test_sync_carries_seq_messages_and_more(client: GrpcLogicClient, fake: FakeLogic) -> None:
    private = Message(id=7, sender=2, to=1, group=None, content="hi 👋", cid="c-1", ts=1_700_000_000_123)
    to_group = Message(id=8, sender=3, to=None, group=100, content="", cid="c-2", ts=1_700_000_000_456)
    to_user_zero = Message(id=9, sender=1, to=0, group=None, content="edge", cid="", ts=0)
    fake.inboxes[1] = [(1, private), (2, to_group), (3, to_user_zero)]

    assert await client.sync(1, 0, 10) == InboxPage(
        entries=[(1, private), (2, to_group), (3, to_user_zero)], more=False
    )
    assert await client.sync(1, 0, 2) == InboxPage(entries=[(1, private), (2, to_group)], more=True)
    assert await client.sync(1, 3, 10) == InboxPage(entries=[], more=False)


@pytest.mark.parametrize("error_type", ERRORS, ids=lambda t: t.code)
async def test_logic_errors_come_back_as_the_same_type_and_message(
    client: GrpcLogicClient, fake: FakeLogic, error_type: type[ImError]
) -> None:
    fake.fail_with = error_type("nöpe: \"quoted\" and\nnew line")
    with pytest.raises(ImError) as caught:
        await client.create_group(1, "team")
    assert type(caught.value) is error_type
    assert caught.value.message == "nöpe: \"quoted\" and\nnew line"


async def test_a_frame_id_travels_with_the_error(client: GrpcLogicClient, fake: FakeLogic) -> None:
    fake.fail_with = Forbidden("not a member", cid="ćid-1")
    with pytest.raises(Forbidden) as caught:
        await client.sync(1, 0, 10)
    assert caught.value.cid == "ćid-1"


async def test_errors_raised_by_the_fake_itself(client: GrpcLogicClient) -> None:
    await client.register("ann@example.com", "pw", "Ann")
    with pytest.raises(Conflict, match="ann@example.com is taken"):
        await client.register("ann@example.com", "pw", "Ann")
    with pytest.raises(Unauthorized):
        await client.login("ann@example.com", "wrong")
    with pytest.raises(Unauthorized):
        await client.validate_token("forged")
    with pytest.raises(NotFound):
        await client.add_member(1, 12345, 2)


async def test_an_unexpected_exception_is_internal_and_keeps_its_secrets(
    client: GrpcLogicClient, fake: FakeLogic
) -> None:
    fake.fail_with = RuntimeError("password=hunter2")
    with pytest.raises(Internal) as caught:
        await client.my_groups(1)
    assert "hunter2" not in caught.value.message


async def test_status_codes_speak_grpc_to_other_clients(logic: LogicServer, fake: FakeLogic) -> None:
    from im.rpc.v1 import group_pb2, group_pb2_grpc

    async with grpc.aio.insecure_channel(logic.target) as channel:
        stub = group_pb2_grpc.GroupServiceStub(channel)  # type: ignore[no-untyped-call]
        for error, status in [
            (Conflict("x"), grpc.StatusCode.ALREADY_EXISTS),
            (Unauthorized("x"), grpc.StatusCode.UNAUTHENTICATED),
            (Forbidden("x"), grpc.StatusCode.PERMISSION_DENIED),
            (NotFound("x"), grpc.StatusCode.NOT_FOUND),
            (BadRequest("x"), grpc.StatusCode.INVALID_ARGUMENT),
            (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
            (RateLimited("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
            (Internal("x"), grpc.StatusCode.INTERNAL),
        ]:
            fake.fail_with = error
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListMyGroups(group_pb2.ListMyGroupsRequest(user_id=1), timeout=2)
            assert caught.value.code() == status
            assert ("im-error-code", error.code) in tuple(caught.value.trailing_metadata())


async def test_token_verification_can_be_given_to_the_server(
    start_logic: ServerFactory, make_client: ClientFactory
) -> None:
    class NoTokens:
        """A LogicApi without validate_token: the verifier comes from elsewhere."""

    def verify(token: str) -> tuple[int, int]:
        if token != "good":
            raise Unauthorized("bad token")
        return 42, 1234

    logic = await start_logic(NoTokens(), verify_token=verify)
    client = await make_client(logic.target)
    assert await client.validate_token("good") == (42, 1234)
    with pytest.raises(Unauthorized, match="bad token"):
        await client.validate_token("bad")


async def test_without_a_token_verifier_validate_token_is_an_internal_error(
    start_logic: ServerFactory, make_client: ClientFactory
) -> None:
    logic = await start_logic(object())
    client = await make_client(logic.target, max_attempts=1)
    with pytest.raises(Internal):
        await client.validate_token("any")
