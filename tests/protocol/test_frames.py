import orjson
import pytest

from im.contracts.records import InboxPage, Message
from im.protocol.errors import BadFrame, Forbidden, ImError, TooLarge
from im.protocol.frames import (
    MessageEncoder,
    PingFrame,
    SendFrame,
    SyncFrame,
    encode_ack,
    encode_error,
    encode_message,
    encode_sync,
    parse_client_frame,
)
from im.protocol.limits import Limits

LIMITS = Limits(max_content_chars=10, max_cid_chars=5, max_sync_limit=50, default_sync_limit=20)


def parse(frame: object) -> object:
    return parse_client_frame(orjson.dumps(frame), LIMITS)


def test_a_private_send_is_parsed() -> None:
    assert parse({"type": "send", "cid": "c1", "to": 7, "content": "hi"}) == SendFrame("c1", 7, None, "hi")


def test_a_group_send_is_parsed() -> None:
    assert parse({"type": "send", "cid": "c1", "group": 3, "content": "hi"}) == SendFrame("c1", None, 3, "hi")


def test_sync_and_ping_are_parsed_with_defaults_and_limit_capped() -> None:
    assert parse({"type": "sync", "after": 4, "limit": 10}) == SyncFrame(4, 10)
    assert parse({"type": "sync"}) == SyncFrame(0, 20)
    assert parse({"type": "sync", "after": 0, "limit": 10_000}) == SyncFrame(0, 50)
    assert parse({"type": "ping"}) == PingFrame()


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1,2]", b'"text"', b"{}", b'{"type":"dance"}', b'{"type":null}', b"\xff\xfe"],
)
def test_frames_that_are_not_protocol_objects_are_bad_frames(raw: bytes) -> None:
    with pytest.raises(BadFrame):
        parse_client_frame(raw, LIMITS)


@pytest.mark.parametrize(
    "frame, cid",
    [
        ({"type": "send", "to": 1, "content": "x"}, None),
        ({"type": "send", "cid": "", "to": 1, "content": "x"}, None),
        ({"type": "send", "cid": 5, "to": 1, "content": "x"}, None),
        ({"type": "send", "cid": "toolongcid", "to": 1, "content": "x"}, None),
        ({"type": "send", "cid": "c", "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": 1, "group": 2, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": "1", "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": True, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": 0, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": 1.5, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": 1}, "c"),
        ({"type": "send", "cid": "c", "to": 1, "content": ""}, "c"),
        ({"type": "send", "cid": "c", "to": 1, "content": ["x"]}, "c"),
        ({"type": "send", "cid": "c", "to": 1, "content": "x", "extra": 1}, "c"),
        ({"type": "sync", "after": -1}, None),
        ({"type": "sync", "after": "3"}, None),
        ({"type": "sync", "limit": 0}, None),
        ({"type": "ping", "x": 1}, None),
    ],
)
def test_missing_or_wrong_typed_fields_are_bad_frames_carrying_the_cid(frame: object, cid: str | None) -> None:
    with pytest.raises(BadFrame) as caught:
        parse(frame)
    assert caught.value.cid == cid


def test_too_long_content_is_too_large() -> None:
    with pytest.raises(TooLarge) as caught:
        parse({"type": "send", "cid": "c", "to": 1, "content": "x" * 11})
    assert caught.value.code == "too_large" and caught.value.cid == "c"


def test_a_from_field_cannot_forge_the_sender() -> None:
    with pytest.raises(Forbidden) as caught:
        parse({"type": "send", "cid": "c", "to": 1, "content": "x", "from": 99})
    assert caught.value.cid == "c"


MESSAGE = Message(id=9, sender=1, to=2, group=None, content='quote " and é', cid="c9", ts=1234)


def test_the_shared_message_encoder_matches_the_plain_encoding_for_every_seq() -> None:
    encoder = MessageEncoder(MESSAGE)
    for seq in (1, 42, 10**12):
        assert orjson.loads(encoder.encode(seq)) == orjson.loads(encode_message(MESSAGE, seq))


def test_server_frames_have_the_contract_shape() -> None:
    assert orjson.loads(encode_message(MESSAGE, 5)) == {
        "type": "msg", "id": 9, "seq": 5, "from": 1, "to": 2, "group": None,
        "content": 'quote " and é', "cid": "c9", "ts": 1234,
    }
    assert orjson.loads(encode_ack("c9", 9, 5, 1234)) == {"type": "ack", "cid": "c9", "id": 9, "seq": 5, "ts": 1234}
    assert orjson.loads(encode_sync(InboxPage([(5, MESSAGE)], more=True))) == {
        "type": "sync", "messages": [orjson.loads(encode_message(MESSAGE, 5))], "more": True,
    }
    error: ImError = TooLarge("too long", cid="c1")
    assert orjson.loads(encode_error(error)) == {
        "type": "error", "code": "too_large", "message": "too long", "cid": "c1",
    }
