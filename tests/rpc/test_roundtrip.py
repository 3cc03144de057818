"""Every `LogicApi` call and every `ImError` crosses gRPC and comes back as it left."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc
import pytest

from im.contracts.records import (
    EditEvent,
    EventPage,
    Group,
    GroupEvent,
    MemberEvent,
    Message,
    ReadEvent,
    RecallEvent,
    Session,
    User,
)
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
from tests.rpc.conftest import as_user

if TYPE_CHECKING:
    from tests.rpc.conftest import FakeLogic, LogicServer

ERRORS: list[type[ImError]] = [
    BadFrame, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, RateLimited, Unavailable,
    Internal,
]


def test_every_error_type_is_covered() -> None:
    # The gateway's HTTP edge errors (im.gateway.errors) never come from logic.
    protocol_errors = {cls for cls in ImError.__subclasses__() if cls.__module__ == ImError.__module__}
    assert set(ERRORS) == protocol_errors


async def test_register_and_login(client: GrpcLogicClient, fake: FakeLogic) -> None:
    user = await client.register("ann@example.com", "secret-pw", "Ann ✓")
    assert user == User(id=1, email="ann@example.com", nickname="Ann ✓")
    session = await client.login("ann@example.com", "secret-pw", "203.0.113.9")
    assert session == Session(token="token-1", user_id=1, expires_at=2_000_000_000)
    assert fake.last_client_address == "203.0.113.9"


async def test_groups(client: GrpcLogicClient) -> None:
    group = await client.create_group(as_user(1), "team")
    assert group == Group(id=100, name="team", owner=1)
    await client.add_member(as_user(1), group.id, 2)
    await client.add_member(as_user(1), group.id, 3)
    assert await client.list_members(as_user(2), group.id) == [1, 2, 3]
    assert await client.my_groups(as_user(2)) == [group]
    assert await client.my_groups(as_user(99)) == []
    assert await client.list_members(as_user(1), (await client.create_group(as_user(1), "empty")).id) == [1]


async def test_sync_carries_seq_messages_and_more(client: GrpcLogicClient, fake: FakeLogic) -> None:
    private = Message(id=7, sender=2, to=1, group=None, content="hi 👋", cid="c-1", ts=1_700_000_000_123)
    to_group = Message(id=8, sender=3, to=None, group=100, content="", cid="c-2", ts=1_700_000_000_456)
    to_user_zero = Message(id=9, sender=1, to=0, group=None, content="edge", cid="", ts=0)
    fake.inboxes[1] = [(1, private), (2, to_group), (3, to_user_zero)]

    assert await client.sync(as_user(1), 0, 10) == EventPage(
        entries=[(1, private), (2, to_group), (3, to_user_zero)], more=False
    )
    assert await client.sync(as_user(1), 0, 2) == EventPage(entries=[(1, private), (2, to_group)], more=True)
    assert await client.sync(as_user(1), 3, 10) == EventPage(entries=[], more=False)


@pytest.mark.parametrize("error_type", ERRORS, ids=lambda t: t.code)
async def test_logic_errors_come_back_as_the_same_type_and_message(
    client: GrpcLogicClient, fake: FakeLogic, error_type: type[ImError]
) -> None:
    raised = fake.fail_with = error_type("nöpe: \"quoted\" and\nnew line", retry_after=2.5)
    with pytest.raises(ImError) as caught:
        await client.create_group(as_user(1), "team")
    assert type(caught.value) is error_type
    assert caught.value.request_id == raised.request_id
    assert caught.value.retry_after == 2.5
    if error_type.client_message is None:
        assert caught.value.message == "nöpe: \"quoted\" and\nnew line"
    else:  # the detail of an infrastructure error stays in logic's log
        assert caught.value.message == error_type.client_message


async def test_the_detail_of_an_infrastructure_error_is_logged_by_logic_under_the_id_the_client_gets(
    client: GrpcLogicClient, fake: FakeLogic, caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_with = Unavailable("MySQL at 10.0.0.7:3306 unavailable: (2003, ...)")
    with caplog.at_level(logging.WARNING), pytest.raises(Unavailable) as caught:
        await client.my_groups(as_user(1))
    assert "10.0.0.7" not in caught.value.message
    assert [r.getMessage() for r in caplog.records if caught.value.request_id in r.getMessage()] == [
        f"unavailable [request_id={caught.value.request_id}]: MySQL at 10.0.0.7:3306 unavailable: (2003, ...)"]


async def test_a_frame_id_travels_with_the_error(client: GrpcLogicClient, fake: FakeLogic) -> None:
    fake.fail_with = Forbidden("not a member", cid="ćid-1")
    with pytest.raises(Forbidden) as caught:
        await client.sync(as_user(1), 0, 10)
    assert caught.value.cid == "ćid-1"


async def test_errors_raised_by_the_fake_itself(client: GrpcLogicClient) -> None:
    await client.register("ann@example.com", "pw", "Ann")
    with pytest.raises(Conflict, match="ann@example.com is taken"):
        await client.register("ann@example.com", "pw", "Ann")
    with pytest.raises(Unauthorized):
        await client.login("ann@example.com", "wrong", "203.0.113.9")
    with pytest.raises(NotFound):
        await client.add_member(as_user(1), 12345, 2)


async def test_an_unexpected_exception_is_internal_and_keeps_its_secrets(
    client: GrpcLogicClient, fake: FakeLogic, caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_with = RuntimeError("password=hunter2")
    with caplog.at_level(logging.ERROR), pytest.raises(Internal) as caught:
        await client.my_groups(as_user(1))
    assert "hunter2" not in caught.value.message
    [logged] = [r for r in caplog.records if caught.value.request_id in r.getMessage()]
    assert logged.exc_info is not None, "the traceback is in logic's log, under the id the client got"


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
                await stub.ListMyGroups(group_pb2.ListMyGroupsRequest(), timeout=2,
                                        metadata=(("authorization", "Bearer token-1"),))
            assert caught.value.code() == status
            assert ("im-error-code", error.code) in tuple(caught.value.trailing_metadata())


async def test_sync_carries_every_kind_of_inbox_event_and_an_older_gateway_gets_only_messages(
    client: GrpcLogicClient, fake: FakeLogic, logic: LogicServer,
) -> None:
    from im.rpc.v1 import inbox_pb2, inbox_pb2_grpc

    entries = [
        (1, Message(7, 2, 1, None, "", "c-1", 1_700_000_000_000, edited_ts=1_700_000_000_100, recalled=True)),
        (2, EditEvent(7, 2, 1, None, "", 1_700_000_000_100)),
        (3, RecallEvent(7, 2, None, 100, 1_700_000_000_200)),
        (4, ReadEvent(1, 2, None, 7, 1_700_000_000_300)),
        (5, ReadEvent(1, None, 100, 8, 1_700_000_000_301)),
        (6, MemberEvent(100, 3, "removed", 1, 1_700_000_000_400)),
        (7, GroupEvent(100, "renamed", 1, 1, 1_700_000_000_500)),
    ]
    fake.inboxes[1] = entries
    assert await client.sync(as_user(1), 0, 10) == EventPage(entries=entries, more=False)
    async with grpc.aio.insecure_channel(logic.target) as channel:
        older = inbox_pb2_grpc.InboxServiceStub(channel)  # type: ignore[no-untyped-call]
        # What a gateway from before inbox events asks: no `events`.
        response = await older.Sync(inbox_pb2.SyncRequest(after=0, limit=10),
                                    metadata=[("authorization", f"Bearer {as_user(1).token}")])
    assert [(e.seq, e.WhichOneof("event")) for e in response.entries] == [(1, "message")]
