"""The REST API and the health endpoints: JSON in, calls to logic, JSON out.

Handlers take a `Request` and return a `Response`; refusals are `ImError`s, which the router turns
into error responses. The caller of an authenticated call is found by `RestApi.caller`, and only there.

The conversation list's cursor is opaque to clients (they pass back the `next` they got); on the wire
it is `<updated_at>.<kind>.<id>` in canonical decimal, a form openapi.json states exactly, so anything
else is a `BadRequest` here, before logic is asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from im.contracts.logic_api import LogicApi
from im.contracts.records import Caller, Conversation, ConversationCursor, Group, GroupInfo, InboxPage, Profile, User
from im.gateway.errors import UpgradeRequired
from im.gateway.http import Request, Response, json_response
from im.gateway.presence import presence_fields
from im.gateway.routes import Router
from im.protocol.errors import BadRequest, NotFound, Unauthorized, Unavailable
from im.protocol.frames import event_fields, message_fields
from im.protocol.ids import is_id, parse_id, parse_seq
from im.protocol.limits import Limits
from im.protocol.tokens import TokenCodec

__all__ = ["GatewayStatus", "RestApi", "decode_cursor", "encode_cursor"]

READINESS_TIMEOUT_SECONDS = 2.0


class GatewayStatus(Protocol):
    """What `/readyz` reports of the gateway."""

    @property
    def draining(self) -> bool: ...

    @property
    def session_count(self) -> int:
        """Open WebSocket sessions (completed upgrades)."""


class RestApi:
    def __init__(self, api: LogicApi, tokens: TokenCodec, limits: Limits, status: GatewayStatus,
                 readiness: Callable[[], Awaitable[None]] | None = None) -> None:
        self.api = api
        self.tokens = tokens
        self.limits = limits
        self.status = status
        self.readiness = readiness

    def add_routes(self, router: Router) -> None:
        route = router.add
        route("GET", "/healthz", self.healthz)
        route("GET", "/readyz", self.readyz)
        route("GET", "/ws", self.not_a_websocket)
        route("POST", "/api/v1/register", self.register)
        route("POST", "/api/v1/login", self.login)
        route("GET", "/api/v1/groups", self.my_groups)
        route("POST", "/api/v1/groups", self.create_group)
        route("GET", "/api/v1/groups/{id}/members", self.list_members)
        route("POST", "/api/v1/groups/{id}/members", self.add_member)
        route("GET", "/api/v1/groups/{id}", self.group_info)
        route("PATCH", "/api/v1/groups/{id}", self.rename_group)
        route("DELETE", "/api/v1/groups/{id}/members/{user_id}", self.remove_member)
        route("POST", "/api/v1/groups/{id}/owner", self.hand_over)
        route("GET", "/api/v1/groups/{id}/reads", self.group_reads)
        route("GET", "/api/v1/messages", self.messages)
        route("GET", "/api/v1/me", self.me)
        route("PATCH", "/api/v1/me", self.set_nickname)
        route("GET", "/api/v1/users", self.profiles)
        route("GET", "/api/v1/users/lookup", self.find_user)  # before `{id}`, which would take "lookup"
        route("GET", "/api/v1/users/{id}", self.profile)
        route("GET", "/api/v1/conversations", self.conversations)
        route("GET", "/api/v1/conversations/peer/{id}/messages", self.peer_history)
        route("GET", "/api/v1/conversations/group/{id}/messages", self.group_history)
        route("GET", "/api/v1/blocks", self.blocked)
        route("PUT", "/api/v1/blocks/{user_id}", self.block)
        route("DELETE", "/api/v1/blocks/{user_id}", self.unblock)
        route("GET", "/api/v1/presence", self.presence)

    def caller(self, request: Request) -> Caller:
        """The authenticated user a REST call is made for (from its bearer token, which logic gets too)."""
        token = request.bearer_token()
        if not token:
            raise Unauthorized("a bearer token is required")
        user_id = self.tokens.verify(token)[0]
        request.user_id = user_id
        return Caller(user_id, token)

    async def healthz(self, request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self.status.draining:
            return json_response(503, {"status": "draining"})
        if self.readiness is not None:
            try:
                await asyncio.wait_for(self.readiness(), READINESS_TIMEOUT_SECONDS)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                # The port is public: which dependency failed, and how, goes to the log only.
                body = Unavailable(f"not ready: {exc!r}").client_body()
                return json_response(503, {"status": "unavailable", "request_id": body["request_id"]})
        return json_response(200, {"status": "ready", "connections": self.status.session_count})

    async def not_a_websocket(self, request: Request) -> Response:
        raise UpgradeRequired("this is the WebSocket endpoint: open it with a WebSocket handshake")

    async def register(self, request: Request) -> Response:
        body = request.json()
        user = await self.api.register(_str(body, "email"), _str(body, "password"), _str(body, "nickname"))
        return json_response(201, {"user_id": user.id})

    async def login(self, request: Request) -> Response:
        body = request.json()
        session = await self.api.login(_str(body, "email"), _str(body, "password"), request.client_address)
        return json_response(200, {"token": session.token, "user_id": session.user_id,
                                   "expires_at": session.expires_at})

    async def my_groups(self, request: Request) -> Response:
        groups = await self.api.my_groups(self.caller(request))
        return json_response(200, {"groups": [_group(g) for g in groups]})

    async def create_group(self, request: Request) -> Response:
        caller = self.caller(request)
        group = await self.api.create_group(caller, _str(request.json(), "name"))
        return json_response(201, _group(group))

    async def list_members(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        members = await self.api.list_members(caller, _path_id(id))
        return json_response(200, {"members": members})

    async def add_member(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        group_id = _path_id(id)
        user_id = _body_id(request.json(), "user_id")
        await self.api.add_member(caller, group_id, user_id)
        return json_response(201, {"group_id": group_id, "user_id": user_id})

    async def group_info(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        return json_response(200, _group_info(await self.api.group_info(caller, _path_id(id))))

    async def rename_group(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        group = await self.api.rename_group(caller, _path_id(id), _str(request.json(), "name"))
        return json_response(200, _group_info(group))

    async def remove_member(self, request: Request, id: str, user_id: str) -> Response:
        caller = self.caller(request)
        await self.api.remove_member(caller, _path_id(id), _path_id(user_id))
        return Response(204)

    async def hand_over(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        group = await self.api.hand_over(caller, _path_id(id), _body_id(request.json(), "user_id"))
        return json_response(200, _group_info(group))

    async def group_reads(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        reads = await self.api.group_reads(caller, _path_id(id))
        return json_response(200, {"reads": [{"user_id": user, "up_to": up_to} for user, up_to in reads.items()]})

    async def me(self, request: Request) -> Response:
        return json_response(200, _user(await self.api.me(self.caller(request))))

    async def set_nickname(self, request: Request) -> Response:
        caller = self.caller(request)
        return json_response(200, _user(await self.api.set_nickname(caller, _str(request.json(), "nickname"))))

    async def profiles(self, request: Request) -> Response:
        caller = self.caller(request)
        profiles = await self.api.profiles(caller, _query_ids(request, "ids"))
        return json_response(200, {"users": [_profile(p) for p in profiles]})

    async def presence(self, request: Request) -> Response:
        caller = self.caller(request)
        users = await self.api.presence(caller, _query_ids(request, "ids"))
        return json_response(200, {"users": [presence_fields(p) for p in users]})

    async def find_user(self, request: Request) -> Response:
        caller = self.caller(request)
        email = request.query.get("email")
        if email is None:
            raise BadRequest("'email' is required")
        return json_response(200, _profile(await self.api.find_user(caller, email)))

    async def profile(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        user_id = _path_id(id)
        found = await self.api.profiles(caller, [user_id])
        if not found:
            raise NotFound(f"no user {user_id}")
        return json_response(200, _profile(found[0]))

    async def conversations(self, request: Request) -> Response:
        caller = self.caller(request)
        cursor = request.query.get("cursor")
        page = await self.api.conversations(caller, _query_limit(request),
                                            None if cursor is None else decode_cursor(cursor))
        return json_response(200, {
            "conversations": [_conversation(c) for c in page.entries],
            "next": None if page.next is None else encode_cursor(page.next),
        })

    async def peer_history(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        page = await self.api.history(caller, peer=_path_id(id), before=_query_id(request, "before"),
                                      limit=_query_limit(request))
        return _history(page)

    async def group_history(self, request: Request, id: str) -> Response:
        caller = self.caller(request)
        page = await self.api.history(caller, group=_path_id(id), before=_query_id(request, "before"),
                                      limit=_query_limit(request))
        return _history(page)

    async def blocked(self, request: Request) -> Response:
        return json_response(200, {"blocked": await self.api.blocked(self.caller(request))})

    async def block(self, request: Request, user_id: str) -> Response:
        caller = self.caller(request)
        await self.api.block(caller, _path_id(user_id))
        return Response(204)

    async def unblock(self, request: Request, user_id: str) -> Response:
        caller = self.caller(request)
        await self.api.unblock(caller, _path_id(user_id))
        return Response(204)

    async def messages(self, request: Request) -> Response:
        caller = self.caller(request)
        after = _query_seq(request, "after", 0)
        limit = min(_query_seq(request, "limit", self.limits.default_sync_limit), self.limits.max_sync_limit)
        page = await self.api.sync(caller, after, limit)
        return json_response(200, {
            "messages": [event_fields(event, seq) for seq, event in page.entries], "more": page.more,
        })


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _body_id(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not is_id(value):
        raise BadRequest(f"'{name}' must be a positive 64-bit integer")
    return value


def _path_id(value: str) -> int:
    parsed = parse_id(value)
    if parsed is None:
        raise BadRequest("an id in the path must be a positive 64-bit integer in decimal")
    return parsed


def _query_seq(request: Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    parsed = parse_seq(value)
    if parsed is None:
        raise BadRequest(f"'{name}' must be a non-negative 64-bit integer in decimal")
    return parsed


def _query_id(request: Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    parsed = parse_id(value)
    if parsed is None:
        raise BadRequest(f"'{name}' must be a positive 64-bit integer in decimal")
    return parsed


def _query_limit(request: Request) -> int | None:
    """`limit` as given (logic has the default and the largest), or None."""
    return _query_id(request, "limit")


def _query_ids(request: Request, name: str) -> list[int]:
    """`?ids=1,2,3`: ids in canonical decimal, comma separated."""
    value = request.query.get(name)
    if not value:
        raise BadRequest(f"'{name}' is required: ids separated by commas")
    ids = [parse_id(part) for part in value.split(",")]
    if None in ids:
        raise BadRequest(f"'{name}' must be positive 64-bit integers in decimal, separated by commas")
    return [i for i in ids if i is not None]


def _group(group: Group) -> dict[str, Any]:
    return {"group_id": group.id, "name": group.name, "owner": group.owner}


def _group_info(group: GroupInfo) -> dict[str, Any]:
    return {"group_id": group.id, "name": group.name, "owner": group.owner, "member_count": group.member_count}


def _user(user: User) -> dict[str, Any]:
    return {"user_id": user.id, "email": user.email, "nickname": user.nickname}


def _profile(profile: Profile) -> dict[str, Any]:
    return {"user_id": profile.id, "nickname": profile.nickname}


def _conversation(conversation: Conversation) -> dict[str, Any]:
    last = conversation.last
    fields: dict[str, Any] = (
        {"peer": conversation.peer} if conversation.peer is not None else {"group": conversation.group})
    fields.update({
        "last": None if last is None else message_fields(last[1], last[0]),
        "unread": conversation.unread,
        "read_up_to": conversation.read_up_to,
    })
    if conversation.peer is not None:
        fields["peer_read_up_to"] = conversation.peer_read_up_to
    fields["updated_ts"] = conversation.updated_ts
    return fields


def _history(page: InboxPage) -> Response:
    return json_response(200, {
        "messages": [message_fields(message, seq) for seq, message in page.entries], "more": page.more,
    })


_CURSOR_KINDS = {"1": 1, "2": 2}


def encode_cursor(cursor: ConversationCursor) -> str:
    return f"{cursor.updated_at}.{cursor.kind}.{cursor.id}"


def decode_cursor(text: str) -> ConversationCursor:
    parts = text.split(".")
    if len(parts) == 3:
        updated_at, kind, conversation = parse_seq(parts[0]), _CURSOR_KINDS.get(parts[1]), parse_id(parts[2])
        if updated_at is not None and kind is not None and conversation is not None:
            return ConversationCursor(updated_at, kind, conversation)
    raise BadRequest("'cursor' is not one this server gave out: pass back the `next` of a page as it is")
