"""Bus envelopes are versioned: this release reads what the previous one wrote (unversioned positional
arrays), the previous release reads the downlinks this one writes, and anything else is refused with
`UndecodableEnvelope` (which the bus dead-letters) rather than dropped or half-read."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from im.contracts.envelopes import (
    Ack,
    Delivery,
    Downlink,
    Rejection,
    TypingNotice,
    UndecodableEnvelope,
    Uplink,
    decode_downlink,
    decode_uplinks,
    encode_downlink,
    encode_uplinks,
)
from im.contracts.records import EditEvent, GroupEvent, MemberEvent, Message, ReadEvent, RecallEvent

# Exactly what a gateway of the release before versioned envelopes published.
V1_UPLINKS = b'[[1,"c1",2,null,"hi",\"gw-a\",7,1767225600.25],[3,"c2",null,9,"group hi","gw-a",8,1767225600.5]]'


def v1_decode_downlink(data: bytes) -> Downlink:
    """The previous release's downlink decoder, kept verbatim: a gateway still running it must read ours."""
    raw = orjson.loads(data)
    return Downlink(
        gateway=raw["gateway"],
        acks=[Ack(*row) for row in raw["acks"]],
        rejections=[Rejection(*row) for row in raw["rejections"]],
        deliveries=[
            Delivery(Message(*message), [(u, s) for u, s in recipients], accepted_at, origin)
            for message, recipients, accepted_at, origin in raw["deliveries"]
        ],
    )


def downlink() -> Downlink:
    message = Message(41, 1, 2, None, "hi", "c1", 1767225600250)
    return Downlink("gw-a", acks=[Ack(7, "c1", 41, 5, 1767225600250)],
                    rejections=[Rejection(8, "c9", "unavailable", "try later", "req-1")],
                    deliveries=[Delivery(message, [(2, 11)], 1767225600.25, None),
                                Delivery(message, [(2, 11)], 1767225600.25, 7, again=True)])


def test_uplinks_of_the_previous_release_are_read() -> None:
    assert decode_uplinks(V1_UPLINKS) == [
        Uplink(1, "c1", 2, None, "hi", "gw-a", 7, 1767225600.25),
        Uplink(3, "c2", None, 9, "group hi", "gw-a", 8, 1767225600.5),
    ]


@pytest.mark.parametrize("version", [1, 2])
def test_uplinks_round_trip_in_either_version(version: int) -> None:
    uplinks = decode_uplinks(V1_UPLINKS)
    assert decode_uplinks(encode_uplinks(uplinks, version=version)) == uplinks
    assert decode_uplinks(encode_uplinks(uplinks, version=version), redelivered=True)[0].redelivered


def test_version_2_uplinks_say_so_and_version_1_is_the_bare_array() -> None:
    uplinks = decode_uplinks(V1_UPLINKS)
    assert orjson.loads(encode_uplinks(uplinks, version=2))["v"] == 2
    assert orjson.loads(encode_uplinks(uplinks, version=3))["v"] == 3
    assert orjson.loads(encode_uplinks(uplinks))["v"] == 4
    assert encode_uplinks(uplinks, version=1) == orjson.dumps(orjson.loads(V1_UPLINKS))


def test_fields_a_later_version_appends_to_a_row_are_ignored() -> None:
    later = orjson.dumps({"v": 2, "uplinks": [[1, "c1", 2, None, "hi", "gw-a", 7, 1.5, "something new"]]})
    assert decode_uplinks(later) == [Uplink(1, "c1", 2, None, "hi", "gw-a", 7, 1.5)]


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"v": 5, "uplinks": []}',
    b'{"uplinks": []}',
    b'{"v": 2, "uplinks": [[1, "c1", 2]]}',
    b'[[1, "c1", 2, 5, "hi", "gw", 7, 1.5]]',  # both a recipient and a group
    b'[["1", "c1", 2, null, "hi", "gw", 7, 1.5]]',  # a sender that is not a number
    b'[[true, "c1", 2, null, "hi", "gw", 7, 1.5]]',
    b'"a string"',
], ids=["garbage", "newer-version", "no-version", "short-row", "to-and-group", "string-id", "bool-id", "scalar"])
def test_anything_else_is_undecodable(body: bytes) -> None:
    with pytest.raises(UndecodableEnvelope):
        decode_uplinks(body)


def test_downlinks_round_trip_and_the_previous_release_reads_them() -> None:
    sent = downlink()
    assert decode_downlink(encode_downlink(sent)) == sent
    old = v1_decode_downlink(encode_downlink(sent))
    assert old.acks == sent.acks
    assert old.rejections == [Rejection(r.conn, r.cid, r.code, r.message) for r in sent.rejections], (
        "an older gateway reads the refusal, without its request id")
    assert old.deliveries == sent.deliveries[:1], "an older gateway skips what is sent again"


def test_downlinks_of_the_previous_release_are_read() -> None:
    sent = downlink()
    sent.deliveries = sent.deliveries[:1]
    raw: dict[str, Any] = orjson.loads(encode_downlink(sent))
    del raw["v"], raw["again"], raw["request_ids"]
    sent.rejections = [Rejection(r.conn, r.cid, r.code, r.message) for r in sent.rejections]
    assert decode_downlink(orjson.dumps(raw)) == sent


@pytest.mark.parametrize("body", [b"[]", b'{"v": 4, "gateway": "g"}', b'{"gateway": "g"}', b"\xff"])
def test_an_undecodable_downlink_is_refused(body: bytes) -> None:
    with pytest.raises(UndecodableEnvelope):
        decode_downlink(body)


# -- version 3: uplinks of every kind, downlinks with inbox events ---------------------------------

def uplinks_of_every_kind() -> list[Uplink]:
    return [
        Uplink(1, "c1", 2, None, "hi", "gw-a", 7, 1.5),
        Uplink(1, "c2", None, None, "hi, edited", "gw-a", 7, 1.5, kind="edit", message_id=41),
        Uplink(1, "c3", None, None, "", "gw-a", 7, 1.5, kind="recall", message_id=41),
        Uplink(1, "", 2, None, "", "gw-a", 7, 1.5, kind="read", message_id=41),
        Uplink(1, "", None, 9, "", "gw-a", 7, 1.5, kind="read", message_id=43),
    ]


def test_version_3_uplinks_carry_every_kind() -> None:
    uplinks = uplinks_of_every_kind()
    assert decode_uplinks(encode_uplinks(uplinks)) == uplinks
    assert [u.conversation for u in uplinks] == ["p1:2", "m41", "m41", "p1:2", "g9"], (
        "edits and recalls of one message keep their order; a read goes with its conversation")


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_version_carries_sends_only(version: int) -> None:
    with pytest.raises(ValueError, match="sends only"):
        encode_uplinks(uplinks_of_every_kind(), version=version)


def v2_decode_uplinks(data: bytes) -> list[Any]:
    """What the previous release (version 2) accepted as an uplink envelope."""
    raw = orjson.loads(data)
    if isinstance(raw, list) or (isinstance(raw, dict) and raw.get("v") == 2):
        return list(raw if isinstance(raw, list) else raw["uplinks"])
    raise UndecodableEnvelope("not of versions (1, 2)")


def test_a_version_2_logic_refuses_version_3_uplinks_rather_than_taking_an_edit_for_a_send() -> None:
    with pytest.raises(UndecodableEnvelope):
        v2_decode_uplinks(encode_uplinks(uplinks_of_every_kind()))


@pytest.mark.parametrize("row", [
    [1, "c", 2, None, "x", "gw", 7, 1.5, "edit", 41],  # an edit naming a conversation
    [1, "c", None, None, "x", "gw", 7, 1.5, "edit", None],  # an edit without its message
    [1, "", None, None, "", "gw", 7, 1.5, "read", 41],  # a read of no conversation
    [1, "", 2, 9, "", "gw", 7, 1.5, "read", 41],  # a read of two
    [1, "c", 2, None, "x", "gw", 7, 1.5, "delete", 41],  # a kind nobody knows
    [1, "c", 2, None, "x", "gw", 7, 1.5],  # a version 3 row without kind
], ids=["edit-with-to", "edit-without-id", "read-of-nothing", "read-of-two", "unknown-kind", "short"])
def test_a_malformed_version_3_row_is_undecodable(row: list[Any]) -> None:
    with pytest.raises(UndecodableEnvelope):
        decode_uplinks(orjson.dumps({"v": 3, "uplinks": [row]}))


def downlink_with_events() -> Downlink:
    message = Message(41, 1, 2, None, "hi", "c1", 1767225600250)
    return Downlink("gw-a", acks=[Ack(7, "c2", 41, 6, 1767225600300)], answered=[8], deliveries=[
        Delivery(message, [(2, 11)], 1.25),
        Delivery(EditEvent(41, 1, 2, None, "hi, edited", 1767225600300), [(2, 12), (1, 6)], 1.5, 7),
        Delivery(RecallEvent(41, 1, None, 9, 1767225600400), [(3, 2)], 1.5, None, again=True),
        Delivery(ReadEvent(2, 1, None, 41, 1767225600500), [(2, 13), (1, 7)], 1.75),
        Delivery(MemberEvent(9, 3, "removed", 1, 1767225600600), [(3, 3)], 2.0),
        Delivery(GroupEvent(9, "renamed", 1, 1, 1767225600700), [(1, 8)], 2.0),
    ])


def test_downlinks_carry_every_inbox_event_and_the_reads_answered() -> None:
    sent = downlink_with_events()
    assert decode_downlink(encode_downlink(sent)) == sent


def test_a_version_2_gateway_reads_the_acks_and_messages_of_a_downlink_with_events() -> None:
    old = v1_decode_downlink(encode_downlink(downlink_with_events()))
    assert orjson.loads(encode_downlink(downlink_with_events()))["v"] == 2
    assert old.acks == [Ack(7, "c2", 41, 6, 1767225600300)]
    assert old.deliveries == downlink_with_events().deliveries[:1]


def typing_uplinks() -> list[Uplink]:
    return [Uplink(1, "", 2, None, "", "gw-a", 7, 1.5, kind="typing"),
            Uplink(1, "", None, 9, "", "gw-a", 7, 1.5, kind="typing")]


def test_version_4_uplinks_carry_typing_beside_every_other_kind() -> None:
    uplinks = [*uplinks_of_every_kind(), *typing_uplinks()]
    assert decode_uplinks(encode_uplinks(uplinks, version=4)) == uplinks
    assert [u.conversation for u in typing_uplinks()] == ["p1:2", "g9"]


def test_version_3_does_not_carry_typing_and_a_version_3_logic_refuses_it() -> None:
    with pytest.raises(ValueError, match="typing"):
        encode_uplinks(typing_uplinks(), version=3)
    row = orjson.loads(encode_uplinks(typing_uplinks()))["uplinks"][0]
    with pytest.raises(UndecodableEnvelope):
        decode_uplinks(orjson.dumps({"v": 3, "uplinks": [row]}))


@pytest.mark.parametrize("row", [
    [1, "", None, None, "", "gw", 7, 1.5, "typing", None],  # typing to nobody
    [1, "", 2, 9, "", "gw", 7, 1.5, "typing", None],  # to two
    [1, "", 2, None, "", "gw", 7, 1.5, "typing", 41],  # naming a message
    [1, "", "2", None, "", "gw", 7, 1.5, "typing", None],  # an id that is a string
], ids=["nobody", "two", "message", "string-id"])
def test_a_malformed_typing_row_is_undecodable(row: list[Any]) -> None:
    with pytest.raises(UndecodableEnvelope):
        decode_uplinks(orjson.dumps({"v": 4, "uplinks": [row]}))


def test_downlinks_carry_typing_notices_that_an_older_gateway_ignores() -> None:
    sent = downlink_with_events()
    sent.typing = [TypingNotice(1, 2, None, [2]), TypingNotice(1, None, 9, [3, 4])]
    assert decode_downlink(encode_downlink(sent)) == sent
    assert v1_decode_downlink(encode_downlink(sent)).acks == sent.acks
    assert Downlink("gw-a", typing=[TypingNotice(1, 2, None, [2])]), "a downlink of typing alone is sent"


def test_version_4_carries_seen_moments_naming_nothing_else() -> None:
    seen = [Uplink(3, "", None, None, "", "gw-a", 0, 1767225600.5, kind="seen")]
    assert decode_uplinks(encode_uplinks(seen)) == seen
    with pytest.raises(ValueError, match="seen"):
        encode_uplinks(seen, version=3)
    for row in ([3, "", 2, None, "", "gw-a", 0, 1.5, "seen", None], [3, "", None, None, "", "gw-a", 0, 1.5, "seen", 4]):
        with pytest.raises(UndecodableEnvelope):
            decode_uplinks(orjson.dumps({"v": 4, "uplinks": [row]}))
