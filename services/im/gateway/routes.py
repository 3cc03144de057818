"""Which handler answers a request, and the HTTP semantics every route shares.

Routing works on the raw path: it is split on `/` first and each segment is percent-decoded after,
so `%2F` stays inside its segment. HEAD is answered by the GET handler (the connection drops the
body), OPTIONS lists the methods (and answers CORS preflights), a known path with another method is
405 with `Allow`. A handler's `ImError` becomes its error response; anything else is logged and a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote

from im import metrics
from im.gateway.errors import MethodNotAllowed
from im.gateway.http import Request, Response, error_response
from im.protocol.errors import BadRequest, Forbidden, ImError, NotFound, internal_error

__all__ = ["Handler", "Router"]

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Response]]

PREFLIGHT_MAX_AGE_SECONDS = 600
ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type"


@dataclass(frozen=True, slots=True)
class _Route:
    segments: tuple[str | None, ...]
    """Literal segments, or None where a parameter goes."""
    params: tuple[str, ...]
    handlers: dict[str, Handler]

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        values: list[str] = []
        for pattern, segment in zip(self.segments, segments, strict=True):
            if pattern is None:
                values.append(segment)
            elif pattern != segment:
                return None
        return dict(zip(self.params, values, strict=True))

    @property
    def allow(self) -> str:
        methods = set(self.handlers) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        return ", ".join(sorted(methods))


class Router:
    def __init__(self, *, cors_origins: frozenset[str] = frozenset()) -> None:
        self._routes: list[_Route] = []
        self._cors_origins = cors_origins

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """`pattern` like `/api/v1/groups/{id}/members`; a parameter is one whole segment."""
        parts = pattern.split("/")[1:]
        segments = tuple(None if p.startswith("{") else p for p in parts)
        params = tuple(p[1:-1] for p in parts if p.startswith("{"))
        for route in self._routes:
            if route.segments == segments:
                route.handlers[method] = handler
                return
        self._routes.append(_Route(segments, params, {method: handler}))

    async def dispatch(self, request: Request) -> Response:
        try:
            response = await self._dispatch(request)
        except ImError as error:
            metrics.ERRORS.labels(error.code).inc()
            response = error_response(error)
            if isinstance(error, MethodNotAllowed):
                response.headers["Allow"] = error.allow
        except Exception:
            metrics.ERRORS.labels("internal").inc()
            response = error_response(internal_error(f"HTTP {request.method} {request.path} failed", log))
        origin = request.headers.get("origin")
        if origin is not None and self._allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def _dispatch(self, request: Request) -> Response:
        segments = _decoded_segments(request.path)
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            if request.method == "OPTIONS":
                return self._options(request, route)
            method = "GET" if request.method == "HEAD" else request.method
            handler = route.handlers.get(method)
            if handler is None:
                raise MethodNotAllowed(f"{request.method} is not allowed here", allow=route.allow)
            response: Response = await handler(request, **params)
            return response
        raise NotFound("no such resource")

    def _options(self, request: Request, route: _Route) -> Response:
        origin = request.headers.get("origin")
        wanted = request.headers.get("access-control-request-method")
        if origin is None or wanted is None:
            return Response(204, headers={"Allow": route.allow})
        if not self._allows(origin):
            raise Forbidden("this origin may not call the API (IM_CORS_ORIGINS)")
        methods = [m for m in route.allow.split(", ") if m != "HEAD"]
        if wanted not in methods:
            raise Forbidden(f"{wanted[:20]} is not allowed here")
        return Response(204, headers={
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        })

    def _allows(self, origin: str) -> bool:
        return origin in self._cors_origins or "*" in self._cors_origins


def _decoded_segments(path: str) -> list[str]:
    try:
        return [unquote(segment, errors="strict") for segment in path.split("/")[1:]]
    except UnicodeDecodeError:
        raise BadRequest("the path is not valid UTF-8 once decoded") from None
