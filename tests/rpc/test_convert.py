"""Records survive protobuf both ways, absent optional fields included (None is not 0 on the wire)."""

from __future__ import annotations

from im.contracts.records import Conversation, ConversationCursor, ConversationPage, GroupInfo, Message, Profile
from im.rpc.convert import (
    conversation_page_from_pb,
    conversation_page_to_pb,
    group_info_from_pb,
    group_info_to_pb,
    message_from_pb,
    message_to_pb,
    profile_from_pb,
    profile_to_pb,
)

PRIVATE = Message(id=7, sender=1, to=2, group=None, content="hi", cid="c1", ts=1_700_000_000_000)
EDITED_IN_GROUP = Message(id=8, sender=2, to=None, group=5, content="", cid="c2", ts=1_700_000_000_001,
                          edited_ts=1_700_000_000_500, recalled=True)


def test_a_message_keeps_its_edit_time_and_recall_flag_and_none_stays_none() -> None:
    for message in (PRIVATE, EDITED_IN_GROUP):
        assert message_from_pb(message_to_pb(message)) == message


def test_a_conversation_page_keeps_which_conversation_its_pointers_and_its_cursor() -> None:
    page = ConversationPage(
        entries=[
            Conversation(peer=2, group=None, last=(3, PRIVATE), unread=4, read_up_to=6, peer_read_up_to=7,
                         updated_ts=1_700_000_000_000),
            Conversation(peer=None, group=5, last=(9, EDITED_IN_GROUP), unread=0, read_up_to=None,
                         peer_read_up_to=None, updated_ts=2),
            Conversation(peer=None, group=6, last=None, unread=0, read_up_to=None, peer_read_up_to=None,
                         updated_ts=1),
        ],
        next=ConversationCursor(updated_at=1, kind=2, id=6),
    )
    assert conversation_page_from_pb(conversation_page_to_pb(page)) == page
    last = ConversationPage(entries=[], next=None)
    assert conversation_page_from_pb(conversation_page_to_pb(last)) == last


def test_group_info_and_profile() -> None:
    info = GroupInfo(id=5, name="team ✓", owner=1, member_count=3)
    assert group_info_from_pb(group_info_to_pb(info)) == info
    assert profile_from_pb(profile_to_pb(Profile(id=2, nickname="Ben"))) == Profile(id=2, nickname="Ben")
