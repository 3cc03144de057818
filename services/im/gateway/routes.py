"""A tiny router: `METHOD /path/{param}` patterns to async handlers."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from im.gateway.http import Request, Response, json_response

__all__ = ["Router"]

Handler = Callable[..., Awaitable[Response]]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    async def dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if match is None:
                continue
            if method == request.method:
                params: dict[str, Any] = match.groupdict()
                return await handler(request, **params)
            allowed.append(method)
        if allowed:
            response = json_response(405, {"error": {"code": "bad_request", "message": "method not allowed"}})
            response.headers["Allow"] = ", ".join(sorted(set(allowed)))
            return response
        return json_response(404, {"error": {"code": "not_found", "message": f"no route {request.path}"}})
