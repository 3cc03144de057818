"""logic's gRPC face: `AuthService`, `GroupService`, `InboxService`, `DirectoryService` and
`ConversationService` over any `LogicApi`, plus health.

**Who is calling** comes from the token, never from a request field: every call but `Register` and
`Login` (and the health checks) must carry the user's JWT in the `authorization` metadata
(`Bearer <token>`). An interceptor verifies it before any handler runs and refuses a call without a
valid one with UNAUTHENTICATED; the handlers take the `Caller` it made (`_caller()`), so there is no
caller id in any request to trust.

Each handler turns the request into one `LogicApi` call and the result into the response. An `ImError`
becomes a gRPC status that the client turns back into the same error type (`im.rpc.status`); any other
exception is logged here with a request id and reported as `internal`, without its text.

The standard health service (`grpc.health.v1.Health`) answers for the server as a whole (`""`) and for
each of the services; `set_serving()` flips them all, e.g. while logic's backends are down or
when it starts draining.

`serve_logic(..., credentials=...)` serves over TLS (`im.rpc.tls.server_credentials`: mutual TLS
when a CA for the gateways' certificates is given); without credentials it serves plaintext.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from im.contracts.logic_api import LogicApi
from im.contracts.records import Caller, EventPage, Message
from im.protocol.errors import ImError, Unauthorized, internal_error
from im.rpc.convert import (
    conversation_page_to_pb,
    cursor_from_pb,
    entries_to_pb,
    event_page_to_pb,
    group_info_to_pb,
    group_to_pb,
    presence_to_pb,
    profile_to_pb,
    user_to_pb,
)
from im.rpc.status import error_metadata, status_for
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

__all__ = ["PUBLIC_METHODS", "SERVICE_NAMES", "TokenVerifier", "drain", "logic_server", "serve_logic",
           "set_serving"]

log = logging.getLogger(__name__)

SERVICE_NAMES: tuple[str, ...] = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in ((auth_pb2, "AuthService"), (group_pb2, "GroupService"), (inbox_pb2, "InboxService"),
                         (directory_pb2, "DirectoryService"), (conversation_pb2, "ConversationService"))
)
"""Full names of the services, as the health service knows them."""

PUBLIC_METHODS: frozenset[str] = frozenset({
    f"/{SERVICE_NAMES[0]}/Register",
    f"/{SERVICE_NAMES[0]}/Login",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
})
"""The only methods served without a token; everything else, unknown methods included, needs one."""

TokenVerifier = Callable[[str], tuple[int, int] | Awaitable[tuple[int, int]]]
"""Token → (user id, expires at): `im.protocol.tokens.TokenCodec.verify`, or an async equivalent;
raises `Unauthorized` for a token that is not valid."""

_HEALTH: weakref.WeakKeyDictionary[Any, HealthServicer] = weakref.WeakKeyDictionary()
_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("im_rpc_caller")

_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Handler = Callable[[_Servicer, _Request, Any], Awaitable[_Response]]


async def _abort(context: Any, error: ImError) -> NoReturn:
    body = error.client_body()  # logs an infrastructure error's detail here, under its request id
    await context.abort(status_for(error), body["message"], trailing_metadata=error_metadata(error))
    raise AssertionError("ServicerContext.abort returned")  # it always raises


def _translating_errors(
    handler: _Handler[_Servicer, _Request, _Response],
) -> Callable[[_Servicer, _Request, Any], Coroutine[Any, Any, _Response]]:
    @functools.wraps(handler)
    async def wrapper(self: _Servicer, request: _Request, context: Any) -> _Response:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except ImError as error:
            await _abort(context, error)
        except Exception:
            await _abort(context, internal_error(f"{handler.__qualname__} failed", log))

    return wrapper


def _caller() -> Caller:
    """The caller the authenticating interceptor verified for this call."""
    return _CALLER.get()


class _Authenticator(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Verifies the `authorization` token of every call but the public ones, before its handler runs."""

    def __init__(self, verify_token: TokenVerifier) -> None:
        self._verify_token = verify_token

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if details.method in PUBLIC_METHODS or handler is None:
            return handler
        behaviour = handler.unary_unary
        if behaviour is None:
            return None  # no streaming method needs a caller: UNIMPLEMENTED
        try:
            caller = await self._caller(details.invocation_metadata or ())
        except ImError as error:
            return _refusing(handler, error)

        async def as_caller(request: Any, context: Any) -> Any:
            token = _CALLER.set(caller)
            try:
                return await behaviour(request, context)
            finally:
                _CALLER.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            as_caller, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _caller(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        values = [value for key, value in metadata if key == "authorization"]
        if len(values) != 1 or not isinstance(values[0], str) or values[0][:7].lower() != "bearer ":
            raise Unauthorized("a token is required: authorization: Bearer <token>")
        token = values[0][7:].strip()
        result = self._verify_token(token)
        user_id, _ = await result if inspect.isawaitable(result) else result
        return Caller(user_id, token)


def _refusing(handler: Any, error: ImError) -> Any:
    async def refuse(request: Any, context: Any) -> Any:
        await _abort(context, error)

    return grpc.unary_unary_rpc_method_handler(
        refuse, request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def Register(self, request: auth_pb2.RegisterRequest, context: Any) -> auth_pb2.RegisterResponse:
        user = await self._api.register(request.email, request.password, request.nickname)
        return auth_pb2.RegisterResponse(user=user_to_pb(user))

    @_translating_errors
    async def Login(self, request: auth_pb2.LoginRequest, context: Any) -> auth_pb2.LoginResponse:
        session = await self._api.login(request.email, request.password, request.client_address)
        return auth_pb2.LoginResponse(
            token=session.token, user_id=session.user_id, expires_at=session.expires_at
        )


class _GroupServicer(group_pb2_grpc.GroupServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def CreateGroup(
        self, request: group_pb2.CreateGroupRequest, context: Any
    ) -> group_pb2.CreateGroupResponse:
        group = await self._api.create_group(_caller(), request.name)
        return group_pb2.CreateGroupResponse(group=group_to_pb(group))

    @_translating_errors
    async def AddMember(
        self, request: group_pb2.AddMemberRequest, context: Any
    ) -> group_pb2.AddMemberResponse:
        await self._api.add_member(_caller(), request.group_id, request.user_id)
        return group_pb2.AddMemberResponse()

    @_translating_errors
    async def ListMembers(
        self, request: group_pb2.ListMembersRequest, context: Any
    ) -> group_pb2.ListMembersResponse:
        members = await self._api.list_members(_caller(), request.group_id)
        return group_pb2.ListMembersResponse(user_ids=members)

    @_translating_errors
    async def ListMyGroups(
        self, request: group_pb2.ListMyGroupsRequest, context: Any
    ) -> group_pb2.ListMyGroupsResponse:
        groups = await self._api.my_groups(_caller())
        return group_pb2.ListMyGroupsResponse(groups=[group_to_pb(g) for g in groups])

    @_translating_errors
    async def GetGroup(self, request: group_pb2.GetGroupRequest, context: Any) -> group_pb2.GetGroupResponse:
        group = await self._api.group_info(_caller(), request.group_id)
        return group_pb2.GetGroupResponse(group=group_info_to_pb(group))

    @_translating_errors
    async def RenameGroup(
        self, request: group_pb2.RenameGroupRequest, context: Any
    ) -> group_pb2.RenameGroupResponse:
        group = await self._api.rename_group(_caller(), request.group_id, request.name)
        return group_pb2.RenameGroupResponse(group=group_info_to_pb(group))

    @_translating_errors
    async def RemoveMember(
        self, request: group_pb2.RemoveMemberRequest, context: Any
    ) -> group_pb2.RemoveMemberResponse:
        await self._api.remove_member(_caller(), request.group_id, request.user_id)
        return group_pb2.RemoveMemberResponse()

    @_translating_errors
    async def HandOver(self, request: group_pb2.HandOverRequest, context: Any) -> group_pb2.HandOverResponse:
        group = await self._api.hand_over(_caller(), request.group_id, request.user_id)
        return group_pb2.HandOverResponse(group=group_info_to_pb(group))

    @_translating_errors
    async def GroupReads(
        self, request: group_pb2.GroupReadsRequest, context: Any
    ) -> group_pb2.GroupReadsResponse:
        reads = await self._api.group_reads(_caller(), request.group_id)
        return group_pb2.GroupReadsResponse(
            reads=[group_pb2.MemberRead(user_id=user, up_to=up_to) for user, up_to in reads.items()])


class _InboxServicer(inbox_pb2_grpc.InboxServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def Sync(self, request: inbox_pb2.SyncRequest, context: Any) -> inbox_pb2.SyncResponse:
        page = await self._api.sync(_caller(), request.after, request.limit)
        if not request.events:
            page = EventPage([(seq, e) for seq, e in page.entries if isinstance(e, Message)], page.more)
        return event_page_to_pb(page)


class _DirectoryServicer(directory_pb2_grpc.DirectoryServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def GetMe(self, request: directory_pb2.GetMeRequest, context: Any) -> directory_pb2.GetMeResponse:
        return directory_pb2.GetMeResponse(user=user_to_pb(await self._api.me(_caller())))

    @_translating_errors
    async def SetNickname(
        self, request: directory_pb2.SetNicknameRequest, context: Any
    ) -> directory_pb2.SetNicknameResponse:
        user = await self._api.set_nickname(_caller(), request.nickname)
        return directory_pb2.SetNicknameResponse(user=user_to_pb(user))

    @_translating_errors
    async def GetProfiles(
        self, request: directory_pb2.GetProfilesRequest, context: Any
    ) -> directory_pb2.GetProfilesResponse:
        profiles = await self._api.profiles(_caller(), list(request.user_ids))
        return directory_pb2.GetProfilesResponse(profiles=[profile_to_pb(p) for p in profiles])

    @_translating_errors
    async def FindUser(
        self, request: directory_pb2.FindUserRequest, context: Any
    ) -> directory_pb2.FindUserResponse:
        profile = await self._api.find_user(_caller(), request.email)
        return directory_pb2.FindUserResponse(profile=profile_to_pb(profile))

    @_translating_errors
    async def Block(self, request: directory_pb2.BlockRequest, context: Any) -> directory_pb2.BlockResponse:
        await self._api.block(_caller(), request.user_id)
        return directory_pb2.BlockResponse()

    @_translating_errors
    async def Unblock(self, request: directory_pb2.UnblockRequest, context: Any) -> directory_pb2.UnblockResponse:
        await self._api.unblock(_caller(), request.user_id)
        return directory_pb2.UnblockResponse()

    @_translating_errors
    async def ListBlocked(
        self, request: directory_pb2.ListBlockedRequest, context: Any
    ) -> directory_pb2.ListBlockedResponse:
        return directory_pb2.ListBlockedResponse(user_ids=await self._api.blocked(_caller()))

    @_translating_errors
    async def GetPresence(
        self, request: directory_pb2.GetPresenceRequest, context: Any
    ) -> directory_pb2.GetPresenceResponse:
        users = await self._api.presence(_caller(), list(request.user_ids))
        return directory_pb2.GetPresenceResponse(users=[presence_to_pb(p) for p in users])


class _ConversationServicer(conversation_pb2_grpc.ConversationServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def ListConversations(
        self, request: conversation_pb2.ListConversationsRequest, context: Any
    ) -> conversation_pb2.ListConversationsResponse:
        cursor = cursor_from_pb(request.cursor) if request.HasField("cursor") else None
        limit = request.limit if request.HasField("limit") else None
        return conversation_page_to_pb(await self._api.conversations(_caller(), limit, cursor))

    @_translating_errors
    async def History(
        self, request: conversation_pb2.HistoryRequest, context: Any
    ) -> conversation_pb2.HistoryResponse:
        named = request.WhichOneof("conversation")
        page = await self._api.history(
            _caller(),
            peer=request.peer if named == "peer" else None,
            group=request.group if named == "group" else None,
            before=request.before if request.HasField("before") else None,
            limit=request.limit if request.HasField("limit") else None,
        )
        return conversation_pb2.HistoryResponse(entries=entries_to_pb(page.entries), more=page.more)


class _Health(HealthServicer):  # type: ignore[misc]
    """The stock asyncio health servicer, knowing our services from the start.

    Its `set()` is a coroutine, but services must be known before the first check arrives, which may be
    before anyone awaits anything: with no watchers yet, seeding the status table directly is what
    `set()` would do.
    """

    def __init__(self, serving: bool) -> None:
        super().__init__()
        status = _status(serving)
        for service in ("", *SERVICE_NAMES):
            self._server_status[service] = status


def _status(serving: bool) -> int:
    statuses = health_pb2.HealthCheckResponse
    return int(statuses.SERVING if serving else statuses.NOT_SERVING)


def logic_server(
    api: LogicApi,
    *,
    verify_token: TokenVerifier,
    serving: bool = True,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Server:
    """A gRPC server (not yet bound or started) for `api`, its calls authenticated with `verify_token`,
    with the health service; `serving` is the initial health status."""
    server = grpc.aio.server(interceptors=[_Authenticator(verify_token)], options=options)
    # The generated registration functions carry no annotations.
    auth_pb2_grpc.add_AuthServiceServicer_to_server(_AuthServicer(api), server)  # type: ignore[no-untyped-call]
    group_pb2_grpc.add_GroupServiceServicer_to_server(_GroupServicer(api), server)  # type: ignore[no-untyped-call]
    inbox_pb2_grpc.add_InboxServiceServicer_to_server(_InboxServicer(api), server)  # type: ignore[no-untyped-call]
    directory_pb2_grpc.add_DirectoryServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _DirectoryServicer(api), server)
    conversation_pb2_grpc.add_ConversationServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _ConversationServicer(api), server)
    health = _Health(serving)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    _HEALTH[server] = health
    return server


async def set_serving(server: grpc.aio.Server, serving: bool) -> None:
    """Report the server and all its logic services as SERVING or NOT_SERVING to health checks."""
    health = _HEALTH.get(server)
    if health is None:
        raise ValueError("this server was not made by logic_server()")
    status = _status(serving)
    for service in ("", *SERVICE_NAMES):
        await health.set(service, status)


async def drain(server: grpc.aio.Server, grace: float) -> None:
    """Stop for good: report NOT_SERVING from now on, let calls in flight finish within `grace` seconds."""
    health = _HEALTH.get(server)
    if health is not None:
        await health.enter_graceful_shutdown()
    await server.stop(grace)


async def serve_logic(
    api: LogicApi,
    host: str,
    port: int,
    *,
    verify_token: TokenVerifier,
    credentials: grpc.ServerCredentials | None = None,
    serving: bool = True,
    options: tuple[tuple[str, Any], ...] = (),
) -> grpc.aio.Server:
    """Start a gRPC server for `api` on `host:port`, over TLS with `credentials`; stop it with `drain()`.

    A port that is already taken is an `OSError`: gRPC's default `SO_REUSEPORT` would let a second
    logic share the port silently, so it is off unless `options` turn it back on.
    """
    server = logic_server(api, verify_token=verify_token, serving=serving,
                          options=(("grpc.so_reuseport", 0), *options))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as error:  # recent grpcio raises where older ones returned 0
        raise OSError(f"cannot listen for gRPC on {address}: {error}") from None
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    await server.start()
    return server
