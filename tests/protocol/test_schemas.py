"""frames.json and openapi.json are valid documents and agree with the code that speaks the protocol."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import jsonschema
import orjson
import pytest
from openapi_spec_validator import validate as validate_openapi

from im.contracts.records import EditEvent, EventPage, GroupEvent, MemberEvent, Message, ReadEvent, RecallEvent
from im.gateway import errors as edge_errors
from im.protocol import errors
from im.protocol.errors import CloseCode, ImError
from im.protocol.frames import (
    MessageEncoder,
    encode_ack,
    encode_error,
    encode_event,
    encode_pong,
    encode_reconnect,
    encode_sync,
    parse_client_frame,
)
from im.protocol.ids import parse_id
from im.protocol.limits import Limits
from tests.support.contracts import FRAMES, OPENAPI, check_frame, load_schema


def consts(definition: dict[str, Any]) -> set[Any]:
    return {choice["const"] for choice in definition["oneOf"]}


def test_the_frame_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema(FRAMES)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    spec = load_schema(OPENAPI)
    assert spec["openapi"].startswith("3.1")
    validate_openapi(spec, base_uri=OPENAPI.as_uri())


def test_every_error_code_and_close_code_of_the_server_is_in_the_schema_and_no_other() -> None:
    defs = load_schema(FRAMES)["$defs"]
    assert edge_errors.__name__, "the HTTP edge's errors (im.gateway.errors) are ImErrors too"
    codes = set()
    pending = [ImError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    assert consts(defs["ErrorCode"]) == codes
    assert consts(defs["CloseCode"]) == {int(code) for code in CloseCode}


MESSAGE = Message(id=981, sender=1, to=42, group=None, content="hi", cid="c-1", ts=1767225600123)
GROUP_MESSAGE = Message(id=982, sender=1, to=None, group=7, content="hi all", cid="c-2", ts=1767225600124)


@pytest.mark.parametrize("encoded", [
    encode_ack("c-1", 981, 121, 1767225600123),
    MessageEncoder(MESSAGE).encode(57),
    MessageEncoder(GROUP_MESSAGE).encode(58),
    encode_sync(EventPage([(57, MESSAGE), (58, GROUP_MESSAGE)], more=True)),
    encode_sync(EventPage([], more=False)),
    encode_sync(EventPage([
        (59, replace(MESSAGE, content="", edited_ts=1767225600200, recalled=True)),
        (60, EditEvent(981, 1, 42, None, "hi, edited", 1767225600200)),
        (61, EditEvent(982, 1, None, 7, "", 1767225600201)),
        (62, RecallEvent(981, 1, 42, None, 1767225600300)),
        (63, ReadEvent(42, 1, None, 981, 1767225600400)),
        (64, ReadEvent(42, None, 7, 982, 1767225600401)),
        (65, MemberEvent(7, 42, "left", 42, 1767225600500)),
        (66, GroupEvent(7, "renamed", 1, 1, 1767225600600)),
    ], more=False)),
    encode_event(EditEvent(981, 1, 42, None, "hi, edited", 1767225600200), 60),
    encode_event(RecallEvent(982, 1, None, 7, 1767225600300), 61),
    encode_event(ReadEvent(42, 1, None, 981, 1767225600400).seen_by(1), 62),
    encode_event(MemberEvent(7, 42, "joined", 1, 1767225600500), 63),
    encode_event(GroupEvent(7, "renamed", 42, 1, 1767225600600), 64),
    encode_pong(),
    encode_reconnect(2300),
    *(encode_error(cls("refused", cid=cid)) for cls in (
        errors.BadFrame, errors.Forbidden, errors.NotFound, errors.TooLarge, errors.RateLimited,
        errors.Unavailable, errors.Internal) for cid in (None, "c-3")),
], ids=lambda encoded: encoded[:40].decode())
def test_every_frame_the_server_encodes_fits_the_schema(encoded: bytes) -> None:
    check_frame("in", orjson.loads(encoded))


ACCEPTED = [
    {"type": "send", "cid": "c-1", "to": 42, "content": "hi"},
    {"type": "send", "cid": "c" * 64, "group": 7, "content": "x" * 4000},
    {"type": "sync"},
    {"type": "sync", "after": 120, "limit": 100},
    {"type": "sync", "after": 0, "limit": 10_000},
    {"type": "ping"},
    {"type": "edit", "cid": "e-1", "id": 981, "content": "hi, edited"},
    {"type": "recall", "cid": "r-1", "id": 981},
    {"type": "read", "peer": 42, "up_to": 981},
    {"type": "read", "group": 7, "up_to": 982, "cid": "read-1"},
]
REFUSED = [
    {"type": "edit", "cid": "e-1", "id": 981},
    {"type": "edit", "cid": "e-1", "id": 0, "content": "x"},
    {"type": "edit", "id": 981, "content": "x"},
    {"type": "edit", "cid": "e-1", "id": 981, "content": "x" * 4001},
    {"type": "edit", "cid": "e-1", "id": 981, "content": "x", "to": 42},
    {"type": "recall", "cid": "r-1"},
    {"type": "recall", "cid": "r-1", "id": 981, "content": "x"},
    {"type": "read", "up_to": 981},
    {"type": "read", "peer": 42, "group": 7, "up_to": 981},
    {"type": "read", "peer": 42},
    {"type": "read", "peer": 42, "up_to": 0},
    {"type": "send", "cid": "c-1", "to": 42, "group": 7, "content": "hi"},
    {"type": "send", "cid": "c-1", "content": "hi"},
    {"type": "send", "cid": "", "to": 42, "content": "hi"},
    {"type": "send", "cid": "c" * 65, "to": 42, "content": "hi"},
    {"type": "send", "cid": "c-1", "to": 0, "content": "hi"},
    {"type": "send", "cid": "c-1", "to": 42, "content": ""},
    {"type": "send", "cid": "c-1", "to": 42, "content": "x" * 4001},
    {"type": "send", "cid": "c-1", "to": 42, "content": "hi", "from": 1},
    {"type": "send", "cid": "c-1", "to": "42", "content": "hi"},
    {"type": "sync", "after": -1},
    {"type": "sync", "limit": 0},
    {"type": "sync", "after": 1, "extra": True},
    {"type": "ping", "at": 1},
    {"type": "pong"},
    {"type": "typing"},
    {"cid": "c-1"},
]


@pytest.mark.parametrize("frame", ACCEPTED, ids=str)
def test_a_client_frame_the_server_accepts_fits_the_schema(frame: dict[str, Any]) -> None:
    parse_client_frame(orjson.dumps(frame), Limits())
    check_frame("out", frame)


@pytest.mark.parametrize("frame", REFUSED, ids=lambda frame: str(frame)[:60])
def test_a_client_frame_the_server_refuses_breaks_the_schema(frame: dict[str, Any]) -> None:
    with pytest.raises(ImError):
        parse_client_frame(orjson.dumps(frame), Limits())
    with pytest.raises(AssertionError):
        check_frame("out", frame)


@pytest.mark.parametrize("text", [
    "1", "42", "999999999999999999", "1000000000000000000", "9223372036854775807", "9223372036854775799",
    "0", "01", "-1", "1.0", "9223372036854775808", "9300000000000000000", "10000000000000000000", " 1", "²",
])
def test_the_documented_path_id_is_exactly_what_the_server_parses(text: str) -> None:
    pattern = load_schema(OPENAPI)["components"]["schemas"]["IdInPath"]["pattern"]
    assert (re.fullmatch(pattern, text) is not None) == (parse_id(text) is not None)
