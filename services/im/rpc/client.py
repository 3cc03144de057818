"""The gateway's side of the gRPC contract: `GrpcLogicClient` is a `LogicApi` that lives in another process.

Every call has one deadline (`timeout`, default 3 s) that covers all its attempts, so the gateway can
promise its own clients an answer in bounded time. Calls wait for the channel to become ready within
that deadline (`wait_for_ready`) instead of failing at once while logic restarts: a request that never
left the gateway cannot have been executed, so waiting is safe for every method.

Once a request may have reached logic, only calls that are safe to repeat are retried on UNAVAILABLE
(with jittered exponential backoff, still within the deadline): reads, `login`, `validate_token` and
`add_member` (adding a member twice is not an error). `register` and `create_group` are not: a second
attempt could create a second group, or answer "email taken" for the caller's own first attempt.

Failures come back as the `ImError` subclass logic raised (`im.rpc.status`); a deadline that passes or
a logic that stays away is `Unavailable`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from im.contracts.logic_api import LogicApi
from im.contracts.records import Group, InboxPage, Session, User
from im.protocol.errors import ImError, Unavailable
from im.rpc.convert import group_from_pb, inbox_page_from_pb, user_from_pb
from im.rpc.status import ERROR_CODE_KEY, error_from_status
from im.rpc.v1 import auth_pb2, auth_pb2_grpc, group_pb2, group_pb2_grpc, inbox_pb2, inbox_pb2_grpc

__all__ = ["GrpcLogicClient"]

log = logging.getLogger(__name__)


class GrpcLogicClient:
    """`LogicApi` over a `grpc.aio` channel to `target` (e.g. `logic:9090`, `dns:///logic-headless:9090`).

    Create it inside the event loop that will use it, and `await close()` when done (or use it as an
    async context manager).

    Keyword arguments (times in seconds):
      timeout: deadline of one call, all attempts and waiting for a connection included.
      max_attempts: attempts of one retryable call, the first included; 1 turns retries off.
      backoff: delay before the first retry; doubled for each further one (each delay jittered down
        by up to half, so that gateways do not retry in step).
      max_backoff: the longest delay between two attempts.
      reconnect_backoff: how soon the channel tries again to connect after a failed connect, doubling
        up to `max_reconnect_backoff`. gRPC's defaults (1 s up to 120 s) would leave a gateway idle
        long after a restarted logic is back.
      load_balancing: gRPC policy across the addresses `target` resolves to: `round_robin` spreads calls
        over all logic pods behind a headless Service, `pick_first` sticks to one.
      options: further gRPC channel arguments, appended to ours.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 3.0,
        max_attempts: int = 5,
        backoff: float = 0.05,
        max_backoff: float = 1.0,
        reconnect_backoff: float = 0.1,
        max_reconnect_backoff: float = 1.0,
        load_balancing: str = "round_robin",
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.target = target
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        channel_options: list[tuple[str, Any]] = [
            ("grpc.initial_reconnect_backoff_ms", max(1, round(reconnect_backoff * 1000))),
            ("grpc.min_reconnect_backoff_ms", max(1, round(reconnect_backoff * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(1, round(max_reconnect_backoff * 1000))),
            ("grpc.service_config", json.dumps({"loadBalancingConfig": [{load_balancing: {}}]})),
            *options,
        ]
        self._channel = grpc.aio.insecure_channel(target, options=channel_options)
        # The generated stubs carry no annotations; every call on them goes through `_call`.
        self._auth = auth_pb2_grpc.AuthServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._groups = group_pb2_grpc.GroupServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._inbox = inbox_pb2_grpc.InboxServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> GrpcLogicClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    # -- LogicApi ------------------------------------------------------------------------------------

    async def register(self, email: str, password: str, nickname: str) -> User:
        request = auth_pb2.RegisterRequest(email=email, password=password, nickname=nickname)
        response: auth_pb2.RegisterResponse = await self._call(self._auth.Register, request, retry=False)
        return user_from_pb(response.user)

    async def login(self, email: str, password: str) -> Session:
        request = auth_pb2.LoginRequest(email=email, password=password)
        response: auth_pb2.LoginResponse = await self._call(self._auth.Login, request, retry=True)
        return Session(token=response.token, user_id=response.user_id, expires_at=response.expires_at)

    async def validate_token(self, token: str) -> tuple[int, int]:
        """The user id and expiry (unix seconds) of a valid token; `Unauthorized` otherwise."""
        request = auth_pb2.ValidateTokenRequest(token=token)
        response: auth_pb2.ValidateTokenResponse = await self._call(
            self._auth.ValidateToken, request, retry=True
        )
        return response.user_id, response.expires_at

    async def create_group(self, owner: int, name: str) -> Group:
        request = group_pb2.CreateGroupRequest(owner=owner, name=name)
        response: group_pb2.CreateGroupResponse = await self._call(
            self._groups.CreateGroup, request, retry=False
        )
        return group_from_pb(response.group)

    async def add_member(self, caller: int, group_id: int, user_id: int) -> None:
        request = group_pb2.AddMemberRequest(caller=caller, group_id=group_id, user_id=user_id)
        await self._call(self._groups.AddMember, request, retry=True)

    async def list_members(self, caller: int, group_id: int) -> list[int]:
        request = group_pb2.ListMembersRequest(caller=caller, group_id=group_id)
        response: group_pb2.ListMembersResponse = await self._call(
            self._groups.ListMembers, request, retry=True
        )
        return list(response.user_ids)

    async def my_groups(self, user_id: int) -> list[Group]:
        request = group_pb2.ListMyGroupsRequest(user_id=user_id)
        response: group_pb2.ListMyGroupsResponse = await self._call(
            self._groups.ListMyGroups, request, retry=True
        )
        return [group_from_pb(g) for g in response.groups]

    async def sync(self, user_id: int, after: int, limit: int) -> InboxPage:
        request = inbox_pb2.SyncRequest(user_id=user_id, after=after, limit=limit)
        response: inbox_pb2.SyncResponse = await self._call(self._inbox.Sync, request, retry=True)
        return inbox_page_from_pb(response)

    # -- health --------------------------------------------------------------------------------------

    async def serving(self, *, timeout: float | None = None) -> bool:
        """Whether logic answers its health check with SERVING (False when it does not answer)."""
        try:
            response = await self._health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout or self.timeout
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    # -- the one way calls are made ------------------------------------------------------------------

    async def _call(self, method: Any, request: Any, *, retry: bool) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        attempt = 1
        while True:
            try:
                return await method(request, timeout=deadline - loop.time(), wait_for_ready=True)
            except grpc.aio.AioRpcError as failure:
                error = self._error(failure)
                status = failure.code()
            delay = self._delay(attempt)
            if not (retry and status == grpc.StatusCode.UNAVAILABLE and attempt < self.max_attempts
                    and loop.time() + delay < deadline):
                raise error
            call = type(request).__name__.removesuffix("Request")
            log.info("retrying %s in %.0f ms after: %s", call, delay * 1000, error.message)
            await asyncio.sleep(delay)
            attempt += 1

    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def _error(self, failure: grpc.aio.AioRpcError) -> ImError:
        metadata = failure.trailing_metadata()
        ours = metadata is not None and any(key == ERROR_CODE_KEY for key, _ in metadata)
        if failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not ours:
            return Unavailable(f"logic at {self.target} did not answer within {self.timeout:g} s")
        return error_from_status(failure.code(), failure.details(), metadata)


if TYPE_CHECKING:
    def _implements_logic_api(client: GrpcLogicClient) -> LogicApi:
        return client
