"""logic's gRPC face: `AuthService`, `GroupService` and `InboxService` over any `LogicApi`, plus health.

Each handler turns the request into one `LogicApi` call and the result into the response. An `ImError`
becomes a gRPC status that the client turns back into the same error type (`im.rpc.status`); any other
exception is logged here and reported as `internal`, without its text (it may hold internals).

The standard health service (`grpc.health.v1.Health`) answers for the server as a whole (`""`) and for
each of the three services; `set_serving()` flips them all, e.g. while logic's backends are down or
when it starts draining.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from im.contracts.logic_api import LogicApi
from im.protocol.errors import ImError, Internal
from im.rpc.convert import group_to_pb, inbox_page_to_pb, user_to_pb
from im.rpc.status import error_metadata, status_for
from im.rpc.v1 import auth_pb2, auth_pb2_grpc, group_pb2, group_pb2_grpc, inbox_pb2, inbox_pb2_grpc

__all__ = ["SERVICE_NAMES", "TokenVerifier", "add_logic_services", "drain", "serve_logic", "set_serving"]

log = logging.getLogger(__name__)

SERVICE_NAMES: tuple[str, ...] = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in ((auth_pb2, "AuthService"), (group_pb2, "GroupService"), (inbox_pb2, "InboxService"))
)
"""Full names of the services, as the health service knows them."""

TokenVerifier = Callable[[str], tuple[int, int] | Awaitable[tuple[int, int]]]
"""Token → (user id, expires at): `im.protocol.tokens.TokenCodec.verify`, or an async equivalent."""

_HEALTH: weakref.WeakKeyDictionary[Any, HealthServicer] = weakref.WeakKeyDictionary()

_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Handler = Callable[[_Servicer, _Request, Any], Awaitable[_Response]]


async def _abort(context: Any, error: ImError) -> NoReturn:
    await context.abort(status_for(error), error.message, trailing_metadata=error_metadata(error))
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
            log.exception("%s failed", handler.__qualname__)
            await _abort(context, Internal("internal error"))

    return wrapper


class _AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, api: LogicApi, verify_token: TokenVerifier | None) -> None:
        self._api = api
        self._verify_token = verify_token

    @_translating_errors
    async def Register(self, request: auth_pb2.RegisterRequest, context: Any) -> auth_pb2.RegisterResponse:
        user = await self._api.register(request.email, request.password, request.nickname)
        return auth_pb2.RegisterResponse(user=user_to_pb(user))

    @_translating_errors
    async def Login(self, request: auth_pb2.LoginRequest, context: Any) -> auth_pb2.LoginResponse:
        session = await self._api.login(request.email, request.password)
        return auth_pb2.LoginResponse(
            token=session.token, user_id=session.user_id, expires_at=session.expires_at
        )

    @_translating_errors
    async def ValidateToken(
        self, request: auth_pb2.ValidateTokenRequest, context: Any
    ) -> auth_pb2.ValidateTokenResponse:
        if self._verify_token is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this logic server cannot verify tokens")
        assert self._verify_token is not None
        result = self._verify_token(request.token)
        user_id, expires_at = await result if inspect.isawaitable(result) else result
        return auth_pb2.ValidateTokenResponse(user_id=user_id, expires_at=expires_at)


class _GroupServicer(group_pb2_grpc.GroupServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def CreateGroup(
        self, request: group_pb2.CreateGroupRequest, context: Any
    ) -> group_pb2.CreateGroupResponse:
        group = await self._api.create_group(request.owner, request.name)
        return group_pb2.CreateGroupResponse(group=group_to_pb(group))

    @_translating_errors
    async def AddMember(
        self, request: group_pb2.AddMemberRequest, context: Any
    ) -> group_pb2.AddMemberResponse:
        await self._api.add_member(request.caller, request.group_id, request.user_id)
        return group_pb2.AddMemberResponse()

    @_translating_errors
    async def ListMembers(
        self, request: group_pb2.ListMembersRequest, context: Any
    ) -> group_pb2.ListMembersResponse:
        members = await self._api.list_members(request.caller, request.group_id)
        return group_pb2.ListMembersResponse(user_ids=members)

    @_translating_errors
    async def ListMyGroups(
        self, request: group_pb2.ListMyGroupsRequest, context: Any
    ) -> group_pb2.ListMyGroupsResponse:
        groups = await self._api.my_groups(request.user_id)
        return group_pb2.ListMyGroupsResponse(groups=[group_to_pb(g) for g in groups])


class _InboxServicer(inbox_pb2_grpc.InboxServiceServicer):
    def __init__(self, api: LogicApi) -> None:
        self._api = api

    @_translating_errors
    async def Sync(self, request: inbox_pb2.SyncRequest, context: Any) -> inbox_pb2.SyncResponse:
        page = await self._api.sync(request.user_id, request.after, request.limit)
        return inbox_page_to_pb(page)


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


def add_logic_services(
    server: grpc.aio.Server,
    api: LogicApi,
    *,
    verify_token: TokenVerifier | None = None,
    serving: bool = True,
) -> None:
    """Register the three services over `api`, and the health service, on `server` (not yet started).

    `verify_token` answers `ValidateToken`; without it, an `api` with a `validate_token` method does.
    `serving` is the initial health status.
    """
    if verify_token is None:
        verify_token = getattr(api, "validate_token", None)
    # The generated registration functions carry no annotations.
    auth_pb2_grpc.add_AuthServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _AuthServicer(api, verify_token), server
    )
    group_pb2_grpc.add_GroupServiceServicer_to_server(_GroupServicer(api), server)  # type: ignore[no-untyped-call]
    inbox_pb2_grpc.add_InboxServiceServicer_to_server(_InboxServicer(api), server)  # type: ignore[no-untyped-call]
    health = _Health(serving)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    _HEALTH[server] = health


async def set_serving(server: grpc.aio.Server, serving: bool) -> None:
    """Report the server and all its logic services as SERVING or NOT_SERVING to health checks."""
    health = _HEALTH.get(server)
    if health is None:
        raise ValueError("add_logic_services() was not called on this server")
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
    verify_token: TokenVerifier | None = None,
    serving: bool = True,
    options: tuple[tuple[str, Any], ...] = (),
) -> grpc.aio.Server:
    """Start a plaintext gRPC server for `api` on `host:port`; stop it with `drain()`.

    A port that is already taken is an `OSError`: gRPC's default `SO_REUSEPORT` would let a second
    logic share the port silently, so it is off unless `options` turn it back on.
    """
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0), *options))
    add_logic_services(server, api, verify_token=verify_token, serving=serving)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:  # recent grpcio raises where older ones returned 0
        raise OSError(f"cannot listen for gRPC on {address}: {error}") from None
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    await server.start()
    return server
