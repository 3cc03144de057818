"""The machine-readable contracts (services/im/protocol/schemas) as validators for tests: every frame
and every HTTP answer a test sees can be checked against them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
import orjson
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import im.protocol
from im.client import Exchange

__all__ = ["FRAMES", "OPENAPI", "FrameLog", "check_exchange", "check_frame", "frame_schema", "load_schema"]

SCHEMAS = Path(im.protocol.__file__).parent / "schemas"
FRAMES = SCHEMAS / "frames.json"
OPENAPI = SCHEMAS / "openapi.json"

Direction = Literal["in", "out"]


def load_schema(path: Path) -> dict[str, Any]:
    return dict(orjson.loads(path.read_bytes()))


@cache
def _registry() -> Registry[Any]:
    """Both documents under their file URIs, so openapi.json's `frames.json#/...` references resolve."""
    return Registry().with_resources(
        (path.as_uri(), Resource(load_schema(path), specification=DRAFT202012)) for path in (FRAMES, OPENAPI))


@cache
def _validator(pointer: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": pointer}, registry=_registry())


def frame_schema(direction: Direction) -> str:
    """The schema pointer for frames a client receives ("in") or sends ("out")."""
    return FRAMES.as_uri() + ("#/$defs/ServerFrame" if direction == "in" else "#/$defs/ClientFrame")


def check_frame(direction: Direction, frame: Any) -> None:
    error = jsonschema.exceptions.best_match(_validator(frame_schema(direction)).iter_errors(frame))
    if error is not None:
        raise AssertionError(f"{'server' if direction == 'in' else 'client'} frame {frame} breaks frames.json: "
                             f"{error.message} at {list(error.absolute_path)}")


@dataclass
class FrameLog:
    """A `trace=` for clients: records every frame both ways; `check()` validates them all."""

    frames: list[tuple[Direction, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, direction: Direction, frame: dict[str, Any]) -> None:
        self.frames.append((direction, frame))

    def types(self, direction: Direction) -> set[str]:
        return {frame["type"] for d, frame in self.frames if d == direction}

    def check(self) -> None:
        assert self.frames, "no frames recorded"
        for direction, frame in self.frames:
            check_frame(direction, frame)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@cache
def _operations() -> list[tuple[re.Pattern[str], str, bool]]:
    paths = load_schema(OPENAPI)["paths"]
    found = [(re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"), template,
              "{" in template) for template in paths]
    return sorted(found, key=lambda entry: entry[2])  # concrete paths before templated ones


def operation_of(method: str, path: str) -> tuple[str, str]:
    """The (path template, method) of openapi.json that a request falls under."""
    paths = load_schema(OPENAPI)["paths"]
    bare = path.split("?", 1)[0]
    for regex, template, _ in _operations():
        if regex.match(bare) and method.lower() in paths[template]:
            return template, method.lower()
    raise AssertionError(f"{method} {bare} is not in openapi.json")


def check_exchange(exchange: Exchange) -> tuple[str, str]:
    """The answer has a documented status and content type and its body fits the schema for them."""
    spec = load_schema(OPENAPI)
    template, method = operation_of(exchange.method, exchange.path)
    responses = spec["paths"][template][method]["responses"]
    status = str(exchange.status)
    assert status in responses, f"{exchange.method} {exchange.path}: status {status} is not documented"
    response = responses[status]
    pointer = f"#/paths/{_escape(template)}/{method}/responses/{status}"
    if "$ref" in response:
        pointer = response["$ref"]
        response = spec["components"]["responses"][pointer.rsplit("/", 1)[1]]
    content = response.get("content", {})
    if not content:
        assert not exchange.body, f"{exchange.method} {exchange.path}: {status} has a body, none is documented"
        return template, method
    media = exchange.content_type.split(";")[0].strip()
    assert media in content, f"{exchange.method} {exchange.path}: {status} as {media!r} is not documented"
    if media == "application/json":
        body = orjson.loads(exchange.body)
        validator = _validator(f"{OPENAPI.as_uri()}{pointer}/content/{_escape(media)}/schema")
        error = jsonschema.exceptions.best_match(validator.iter_errors(body))
        if error is not None:
            raise AssertionError(f"{exchange.method} {exchange.path} {status}: {body} breaks openapi.json: "
                                 f"{error.message} at {list(error.absolute_path)}")
    return template, method


def check_exchanges(exchanges: Iterable[Exchange]) -> set[tuple[str, str]]:
    """Every exchange checked; the operations they covered."""
    return {check_exchange(exchange) for exchange in exchanges}
