"""Files served as they are, from fixed lists made at start: a request never names a path.

Two sets: the browser chat's files (`web/`, at `/` and `/<file>`) and the protocol's machine-readable
contracts (`protocol/schemas/`: `openapi.json` and `frames.json`, side by side under `/api/v1/`, so
the references between them resolve against the URL they were fetched from).
"""

from __future__ import annotations

import functools
from pathlib import Path

from im.gateway.http import Request, Response
from im.gateway.routes import Router
from im.protocol.errors import NotFound

__all__ = ["SCHEMAS_ROOT", "WEB_ROOT", "StaticFiles"]

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
SCHEMAS_ROOT = Path(__file__).resolve().parent.parent / "protocol" / "schemas"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon",
                 ".json": "application/json"}


class StaticFiles:
    def __init__(self, root: Path = WEB_ROOT) -> None:
        self._files = {
            path.name: (path, CONTENT_TYPES[path.suffix])
            for path in sorted(root.iterdir()) if path.is_file() and path.suffix in CONTENT_TYPES
        } if root.is_dir() else {}

    def add_routes(self, router: Router) -> None:
        """`/` is `index.html`; every file is `/<its name>`."""
        router.add("GET", "/", self.file)
        router.add("GET", "/{file}", self.file)

    def add_routes_under(self, router: Router, prefix: str) -> None:
        """One literal route per file, `<prefix>/<its name>`, beside the routes already there."""
        for name in self._files:
            router.add("GET", f"{prefix}/{name}", functools.partial(self.file, file=name))

    async def file(self, request: Request, file: str = "index.html") -> Response:
        found = self._files.get(file)
        if found is None:
            raise NotFound("no such page")
        path, content_type = found
        return Response(200, path.read_bytes(), content_type=content_type)

