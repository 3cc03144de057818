"""The gateway's side of the gRPC contract: `GrpcLogicClient` is a `LogicApi` that lives in another process.

Every call has one deadline (`timeout`, default 3 s) that covers all its attempts, so the gateway can
promise its own clients an answer in bounded time. Calls wait for the channel to become ready within
that deadline (`wait_for_ready`) instead of failing at once while logic restarts: a request that never
left the gateway cannot have been executed, so waiting is safe for every method.

Once a request may have reached logic, only calls that are safe to repeat are retried on UNAVAILABLE
(with jittered exponential backoff, still within the deadline): reads, `login`, and the changes that
change nothing the second time (`add_member`, `rename_group`, `set_nickname`, `block`, `unblock`).
`register`, `create_group`, `remove_member` and `hand_over` are not: a second attempt could create a
second group, or answer "email taken", "not a member" or "not the owner" for the caller's own first one.

A call made for a user carries the user's token in the `authorization` metadata (logic takes the
caller from it, `im.rpc.server`); ids are checked with `im.protocol.ids` before a request is built
(`BadRequest`), since protobuf's int64 cannot carry one out of range anyway.

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
from im.contracts.records import (
    Caller,
    ConversationCursor,
    ConversationPage,
    EventPage,
    Group,
    GroupInfo,
    InboxPage,
    Presence,
    Profile,
    Session,
    User,
)
from im.protocol.errors import ImError, Unavailable
from im.protocol.ids import require_ids, require_seq
from im.rpc.convert import (
    conversation_page_from_pb,
    cursor_to_pb,
    entries_from_pb,
    event_page_from_pb,
    group_from_pb,
    group_info_from_pb,
    presence_from_pb,
    profile_from_pb,
    user_from_pb,
)
from im.rpc.status import ERROR_CODE_KEY, error_from_status
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

__all__ = ["GrpcLogicClient"]

log = logging.getLogger(__name__)

_MAX_INT32 = 2**31 - 1


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
      credentials: TLS for the channel (`im.rpc.tls.channel_credentials`); plaintext without.
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
        credentials: grpc.ChannelCredentials | None = None,
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
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=channel_options)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=channel_options)
        # The generated stubs carry no annotations; every call on them goes through `_call`.
        self._auth = auth_pb2_grpc.AuthServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._groups = group_pb2_grpc.GroupServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._inbox = inbox_pb2_grpc.InboxServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._directory = directory_pb2_grpc.DirectoryServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._conversations = conversation_pb2_grpc.ConversationServiceStub(  # type: ignore[no-untyped-call]
            self._channel)
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

    async def login(self, email: str, password: str, client_address: str) -> Session:
        request = auth_pb2.LoginRequest(email=email, password=password, client_address=client_address)
        response: auth_pb2.LoginResponse = await self._call(self._auth.Login, request, retry=True)
        return Session(token=response.token, user_id=response.user_id, expires_at=response.expires_at)

    async def create_group(self, caller: Caller, name: str) -> Group:
        request = group_pb2.CreateGroupRequest(name=name)
        response: group_pb2.CreateGroupResponse = await self._call(
            self._groups.CreateGroup, request, retry=False, caller=caller
        )
        return group_from_pb(response.group)

    async def add_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        require_ids(group_id=group_id, user_id=user_id)
        request = group_pb2.AddMemberRequest(group_id=group_id, user_id=user_id)
        await self._call(self._groups.AddMember, request, retry=True, caller=caller)

    async def list_members(self, caller: Caller, group_id: int) -> list[int]:
        require_ids(group_id=group_id)
        request = group_pb2.ListMembersRequest(group_id=group_id)
        response: group_pb2.ListMembersResponse = await self._call(
            self._groups.ListMembers, request, retry=True, caller=caller
        )
        return list(response.user_ids)

    async def my_groups(self, caller: Caller) -> list[Group]:
        request = group_pb2.ListMyGroupsRequest()
        response: group_pb2.ListMyGroupsResponse = await self._call(
            self._groups.ListMyGroups, request, retry=True, caller=caller
        )
        return [group_from_pb(g) for g in response.groups]

    async def sync(self, caller: Caller, after: int, limit: int) -> EventPage:
        require_seq("after", after)
        request = inbox_pb2.SyncRequest(after=after, limit=min(limit, _MAX_INT32), events=True)
        response: inbox_pb2.SyncResponse = await self._call(self._inbox.Sync, request, retry=True, caller=caller)
        return event_page_from_pb(response)

    async def group_info(self, caller: Caller, group_id: int) -> GroupInfo:
        require_ids(group_id=group_id)
        request = group_pb2.GetGroupRequest(group_id=group_id)
        response: group_pb2.GetGroupResponse = await self._call(self._groups.GetGroup, request, retry=True,
                                                                caller=caller)
        return group_info_from_pb(response.group)

    async def rename_group(self, caller: Caller, group_id: int, name: str) -> GroupInfo:
        require_ids(group_id=group_id)
        request = group_pb2.RenameGroupRequest(group_id=group_id, name=name)
        response: group_pb2.RenameGroupResponse = await self._call(self._groups.RenameGroup, request, retry=True,
                                                                   caller=caller)
        return group_info_from_pb(response.group)

    async def remove_member(self, caller: Caller, group_id: int, user_id: int) -> None:
        require_ids(group_id=group_id, user_id=user_id)
        request = group_pb2.RemoveMemberRequest(group_id=group_id, user_id=user_id)
        await self._call(self._groups.RemoveMember, request, retry=False, caller=caller)

    async def hand_over(self, caller: Caller, group_id: int, user_id: int) -> GroupInfo:
        require_ids(group_id=group_id, user_id=user_id)
        request = group_pb2.HandOverRequest(group_id=group_id, user_id=user_id)
        response: group_pb2.HandOverResponse = await self._call(self._groups.HandOver, request, retry=False,
                                                                caller=caller)
        return group_info_from_pb(response.group)

    async def group_reads(self, caller: Caller, group_id: int) -> dict[int, int | None]:
        require_ids(group_id=group_id)
        request = group_pb2.GroupReadsRequest(group_id=group_id)
        response: group_pb2.GroupReadsResponse = await self._call(self._groups.GroupReads, request, retry=True,
                                                                  caller=caller)
        return {r.user_id: r.up_to if r.HasField("up_to") else None for r in response.reads}

    async def me(self, caller: Caller) -> User:
        response: directory_pb2.GetMeResponse = await self._call(
            self._directory.GetMe, directory_pb2.GetMeRequest(), retry=True, caller=caller)
        return user_from_pb(response.user)

    async def set_nickname(self, caller: Caller, nickname: str) -> User:
        request = directory_pb2.SetNicknameRequest(nickname=nickname)
        response: directory_pb2.SetNicknameResponse = await self._call(
            self._directory.SetNickname, request, retry=True, caller=caller)
        return user_from_pb(response.user)

    async def profiles(self, caller: Caller, user_ids: list[int]) -> list[Profile]:
        for user_id in user_ids:
            require_ids(user_id=user_id)
        request = directory_pb2.GetProfilesRequest(user_ids=user_ids)
        response: directory_pb2.GetProfilesResponse = await self._call(
            self._directory.GetProfiles, request, retry=True, caller=caller)
        return [profile_from_pb(p) for p in response.profiles]

    async def find_user(self, caller: Caller, email: str) -> Profile:
        request = directory_pb2.FindUserRequest(email=email)
        response: directory_pb2.FindUserResponse = await self._call(
            self._directory.FindUser, request, retry=True, caller=caller)
        return profile_from_pb(response.profile)

    async def block(self, caller: Caller, user_id: int) -> None:
        require_ids(user_id=user_id)
        await self._call(self._directory.Block, directory_pb2.BlockRequest(user_id=user_id), retry=True, caller=caller)

    async def unblock(self, caller: Caller, user_id: int) -> None:
        require_ids(user_id=user_id)
        await self._call(self._directory.Unblock, directory_pb2.UnblockRequest(user_id=user_id), retry=True,
                         caller=caller)

    async def blocked(self, caller: Caller) -> list[int]:
        response: directory_pb2.ListBlockedResponse = await self._call(
            self._directory.ListBlocked, directory_pb2.ListBlockedRequest(), retry=True, caller=caller)
        return list(response.user_ids)

    async def presence(self, caller: Caller, user_ids: list[int]) -> list[Presence]:
        for user_id in user_ids:
            require_ids(user_id=user_id)
        response: directory_pb2.GetPresenceResponse = await self._call(
            self._directory.GetPresence, directory_pb2.GetPresenceRequest(user_ids=user_ids), retry=True,
            caller=caller)
        return [presence_from_pb(p) for p in response.users]

    async def conversations(self, caller: Caller, limit: int | None, cursor: ConversationCursor | None,
                            ) -> ConversationPage:
        request = conversation_pb2.ListConversationsRequest(limit=_int32(limit))
        if cursor is not None:
            require_seq("cursor", cursor.updated_at)
            require_ids(cursor=cursor.id)
            request.cursor.CopyFrom(cursor_to_pb(cursor))
        response: conversation_pb2.ListConversationsResponse = await self._call(
            self._conversations.ListConversations, request, retry=True, caller=caller)
        return conversation_page_from_pb(response)

    async def history(self, caller: Caller, *, peer: int | None = None, group: int | None = None,
                      before: int | None = None, limit: int | None = None) -> InboxPage:
        require_ids(**({"group": group} if peer is None else {"peer": peer}))
        if before is not None:
            require_ids(before=before)
        request = conversation_pb2.HistoryRequest(peer=peer, group=group, before=before, limit=_int32(limit))
        response: conversation_pb2.HistoryResponse = await self._call(
            self._conversations.History, request, retry=True, caller=caller)
        return InboxPage(entries_from_pb(response.entries), response.more)

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

    async def _call(self, method: Any, request: Any, *, retry: bool, caller: Caller | None = None) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        metadata = (("authorization", f"Bearer {caller.token}"),) if caller is not None else None
        attempt = 1
        while True:
            try:
                return await method(request, timeout=deadline - loop.time(), wait_for_ready=True, metadata=metadata)
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


def _int32(limit: int | None) -> int | None:
    """A page size for an int32 field: past its range is past logic's largest page anyway."""
    return None if limit is None else max(-_MAX_INT32, min(limit, _MAX_INT32))


if TYPE_CHECKING:
    def _implements_logic_api(client: GrpcLogicClient) -> LogicApi:
        return client
