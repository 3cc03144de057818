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
    message_bytes_bound,
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
        ({"type": "send", "cid": "c", "to": 2**63, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "group": 2**63, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "to": 2**64 - 1, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "group": -5, "content": "x"}, "c"),
        ({"type": "send", "cid": "c", "group": None, "content": "x"}, "c"),
        ({"type": "sync", "after": -1}, None),
        ({"type": "sync", "after": 2**63}, None),
        ({"type": "sync", "after": 1.0}, None),
        ({"type": "sync", "after": None}, None),
        ({"type": "sync", "limit": True}, None),
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
    error: ImError = TooLarge("too long", cid="c1", request_id="0123456789abcdef")
    assert orjson.loads(encode_error(error)) == {
        "type": "error", "code": "too_large", "message": "too long", "cid": "c1", "request_id": "0123456789abcdef",
    }


def test_ids_up_to_the_largest_signed_64_bit_value_are_accepted() -> None:
    biggest = 2**63 - 1
    assert parse({"type": "send", "cid": "c", "to": biggest, "content": "x"}) == SendFrame("c", biggest, None, "x")
    assert parse({"type": "send", "cid": "c", "group": biggest, "content": "x"}) == SendFrame("c", None, biggest, "x")
    assert parse({"type": "sync", "after": biggest}) == SyncFrame(biggest, 20)


def test_a_cid_must_fit_the_stores_in_utf_8_too() -> None:
    assert parse_client_frame(orjson.dumps({"type": "send", "cid": "😀" * 63, "to": 1, "content": "x"}),
                              Limits()) == SendFrame("😀" * 63, 1, None, "x")
    with pytest.raises(BadFrame) as caught:
        parse_client_frame(orjson.dumps({"type": "send", "cid": "😀" * 64, "to": 1, "content": "x"}), Limits())
    assert caught.value.cid is None


def test_integers_beyond_64_bits_in_the_json_text_are_bad_frames() -> None:
    for raw in (b'{"type":"send","cid":"c","to":1000000000000000000000000000000,"content":"x"}',
                b'{"type":"sync","after":18446744073709551616}'):
        with pytest.raises(BadFrame):
            parse_client_frame(raw, LIMITS)


def test_invalid_json_is_refused_without_the_parsers_text() -> None:
    with pytest.raises(BadFrame) as caught:
        parse_client_frame(b'{"type": "send", oops}', LIMITS)
    assert caught.value.message == "not valid JSON"


@pytest.mark.parametrize("content", ["plain", "\x00" * 50, "é" * 20, "👋" * 10, '"\\' * 30, "\u2028"])
def test_the_message_size_bound_is_never_below_the_encoded_size(content: str) -> None:
    biggest = 2**63 - 1
    message = Message(id=biggest, sender=biggest, to=biggest, group=None, content=content, cid="ć" * 64,
                      ts=biggest)
    encoded = len(encode_message(message, biggest)) + 1  # the comma between messages
    assert encoded <= message_bytes_bound(message) <= encoded + 200
