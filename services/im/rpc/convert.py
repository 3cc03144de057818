"""Records (`im.contracts.records`) to protobuf messages and back: the only place that knows both."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from im.contracts.records import (
    Conversation,
    ConversationCursor,
    ConversationPage,
    EditEvent,
    EventPage,
    Group,
    GroupEvent,
    GroupInfo,
    InboxEvent,
    InboxPage,
    MemberAction,
    MemberEvent,
    Message,
    Presence,
    Profile,
    ReadEvent,
    RecallEvent,
    User,
)
from im.rpc.v1 import auth_pb2, conversation_pb2, directory_pb2, group_pb2, inbox_pb2

__all__ = [
    "conversation_page_from_pb",
    "conversation_page_to_pb",
    "cursor_from_pb",
    "cursor_to_pb",
    "entries_from_pb",
    "entries_to_pb",
    "event_page_from_pb",
    "event_page_to_pb",
    "group_info_from_pb",
    "group_info_to_pb",
    "group_from_pb",
    "group_to_pb",
    "inbox_page_from_pb",
    "inbox_page_to_pb",
    "message_from_pb",
    "message_to_pb",
    "profile_from_pb",
    "profile_to_pb",
    "user_from_pb",
    "user_to_pb",
]


def user_to_pb(user: User) -> auth_pb2.User:
    return auth_pb2.User(id=user.id, email=user.email, nickname=user.nickname)


def user_from_pb(pb: auth_pb2.User) -> User:
    return User(id=pb.id, email=pb.email, nickname=pb.nickname)


def group_to_pb(group: Group) -> group_pb2.Group:
    return group_pb2.Group(id=group.id, name=group.name, owner=group.owner)


def group_from_pb(pb: group_pb2.Group) -> Group:
    return Group(id=pb.id, name=pb.name, owner=pb.owner)


def message_to_pb(message: Message) -> inbox_pb2.Message:
    pb = inbox_pb2.Message(
        id=message.id, sender=message.sender, content=message.content, cid=message.cid, ts=message.ts,
        edited_ts=message.edited_ts, recalled=message.recalled,
    )
    # Setting a oneof member, even to 0, marks it as the chosen one: leave the other one untouched.
    if message.group is not None:
        pb.group = message.group
    elif message.to is not None:
        pb.to = message.to
    return pb


def message_from_pb(pb: inbox_pb2.Message) -> Message:
    conversation = pb.WhichOneof("conversation")
    return Message(
        id=pb.id,
        sender=pb.sender,
        to=pb.to if conversation == "to" else None,
        group=pb.group if conversation == "group" else None,
        content=pb.content,
        cid=pb.cid,
        ts=pb.ts,
        edited_ts=pb.edited_ts if pb.HasField("edited_ts") else None,
        recalled=pb.recalled,
    )


def entries_to_pb(entries: list[tuple[int, Message]]) -> list[inbox_pb2.InboxEntry]:
    return [inbox_pb2.InboxEntry(seq=seq, message=message_to_pb(m)) for seq, m in entries]


def entries_from_pb(entries: Iterable[inbox_pb2.InboxEntry]) -> list[tuple[int, Message]]:
    return [(e.seq, message_from_pb(e.message)) for e in entries]


def inbox_page_to_pb(page: InboxPage) -> inbox_pb2.SyncResponse:
    return inbox_pb2.SyncResponse(entries=entries_to_pb(page.entries), more=page.more)


def inbox_page_from_pb(pb: inbox_pb2.SyncResponse) -> InboxPage:
    return InboxPage(entries=entries_from_pb(pb.entries), more=pb.more)


def group_info_to_pb(group: GroupInfo) -> group_pb2.GroupInfo:
    return group_pb2.GroupInfo(id=group.id, name=group.name, owner=group.owner, member_count=group.member_count)


def group_info_from_pb(pb: group_pb2.GroupInfo) -> GroupInfo:
    return GroupInfo(id=pb.id, name=pb.name, owner=pb.owner, member_count=pb.member_count)


def profile_to_pb(profile: Profile) -> directory_pb2.Profile:
    return directory_pb2.Profile(id=profile.id, nickname=profile.nickname)


def profile_from_pb(pb: directory_pb2.Profile) -> Profile:
    return Profile(id=pb.id, nickname=pb.nickname)


def presence_to_pb(presence: Presence) -> directory_pb2.Presence:
    return directory_pb2.Presence(user_id=presence.user_id, online=presence.online, last_seen=presence.last_seen,
                                  blocked_me=presence.blocked_me)


def presence_from_pb(pb: directory_pb2.Presence) -> Presence:
    return Presence(pb.user_id, pb.online, pb.last_seen if pb.HasField("last_seen") else None, pb.blocked_me)


def cursor_to_pb(cursor: ConversationCursor) -> conversation_pb2.ConversationCursor:
    return conversation_pb2.ConversationCursor(updated_at=cursor.updated_at, kind=cursor.kind, id=cursor.id)


def cursor_from_pb(pb: conversation_pb2.ConversationCursor) -> ConversationCursor:
    return ConversationCursor(updated_at=pb.updated_at, kind=pb.kind, id=pb.id)


def conversation_page_to_pb(page: ConversationPage) -> conversation_pb2.ListConversationsResponse:
    pb = conversation_pb2.ListConversationsResponse(conversations=[_conversation_to_pb(c) for c in page.entries])
    if page.next is not None:
        pb.next.CopyFrom(cursor_to_pb(page.next))
    return pb


def conversation_page_from_pb(pb: conversation_pb2.ListConversationsResponse) -> ConversationPage:
    return ConversationPage(entries=[_conversation_from_pb(c) for c in pb.conversations],
                            next=cursor_from_pb(pb.next) if pb.HasField("next") else None)


def _conversation_to_pb(conversation: Conversation) -> conversation_pb2.Conversation:
    pb = conversation_pb2.Conversation(
        unread=conversation.unread, read_up_to=conversation.read_up_to,
        peer_read_up_to=conversation.peer_read_up_to, updated_ts=conversation.updated_ts,
    )
    if conversation.group is not None:
        pb.group = conversation.group
    elif conversation.peer is not None:
        pb.peer = conversation.peer
    if conversation.last is not None:
        seq, message = conversation.last
        pb.last.CopyFrom(inbox_pb2.InboxEntry(seq=seq, message=message_to_pb(message)))
    return pb


def _conversation_from_pb(pb: conversation_pb2.Conversation) -> Conversation:
    named = pb.WhichOneof("conversation")
    return Conversation(
        peer=pb.peer if named == "peer" else None,
        group=pb.group if named == "group" else None,
        last=(pb.last.seq, message_from_pb(pb.last.message)) if pb.HasField("last") else None,
        unread=pb.unread,
        read_up_to=pb.read_up_to if pb.HasField("read_up_to") else None,
        peer_read_up_to=pb.peer_read_up_to if pb.HasField("peer_read_up_to") else None,
        updated_ts=pb.updated_ts,
    )


def event_page_to_pb(page: EventPage) -> inbox_pb2.SyncResponse:
    return inbox_pb2.SyncResponse(entries=[_entry_to_pb(seq, event) for seq, event in page.entries], more=page.more)


def event_page_from_pb(pb: inbox_pb2.SyncResponse) -> EventPage:
    return EventPage(entries=[(e.seq, _event_from_pb(e)) for e in pb.entries], more=pb.more)


def _entry_to_pb(seq: int, event: InboxEvent) -> inbox_pb2.InboxEntry:
    if isinstance(event, Message):
        return inbox_pb2.InboxEntry(seq=seq, message=message_to_pb(event))
    if isinstance(event, EditEvent):
        edit = inbox_pb2.EditEvent(message_id=event.message_id, sender=event.sender, content=event.content,
                                   ts=event.ts, **_conversation(event.to, event.group))
        return inbox_pb2.InboxEntry(seq=seq, edit=edit)
    if isinstance(event, RecallEvent):
        recall = inbox_pb2.RecallEvent(message_id=event.message_id, sender=event.sender, ts=event.ts,
                                       **_conversation(event.to, event.group))
        return inbox_pb2.InboxEntry(seq=seq, recall=recall)
    if isinstance(event, ReadEvent):
        where = {"peer": event.peer} if event.group is None else {"group": event.group}
        return inbox_pb2.InboxEntry(seq=seq, read=inbox_pb2.ReadEvent(
            by=event.by, up_to=event.up_to, ts=event.ts, **where))
    if isinstance(event, MemberEvent):
        return inbox_pb2.InboxEntry(seq=seq, member=inbox_pb2.MemberEvent(
            group=event.group, user=event.user, action=event.action, by=event.by, ts=event.ts))
    return inbox_pb2.InboxEntry(seq=seq, group_change=inbox_pb2.GroupEvent(
        group=event.group, name=event.name, owner=event.owner, by=event.by, ts=event.ts))


def _conversation(to: int | None, group: int | None) -> dict[str, int | None]:
    # Only the chosen oneof member is set: setting one, even to 0, marks it as the chosen one.
    return {"to": to} if group is None else {"group": group}


def _event_from_pb(entry: inbox_pb2.InboxEntry) -> InboxEvent:
    kind = entry.WhichOneof("event")
    if kind == "edit":
        e = entry.edit
        to, group = _which(e.WhichOneof("conversation"), e.to, e.group)
        return EditEvent(e.message_id, e.sender, to, group, e.content, e.ts)
    if kind == "recall":
        r = entry.recall
        to, group = _which(r.WhichOneof("conversation"), r.to, r.group)
        return RecallEvent(r.message_id, r.sender, to, group, r.ts)
    if kind == "read":
        d = entry.read
        peer, group = _which(d.WhichOneof("conversation"), d.peer, d.group)
        return ReadEvent(d.by, peer, group, d.up_to, d.ts)
    if kind == "member":
        m = entry.member
        return MemberEvent(m.group, m.user, cast(MemberAction, m.action), m.by, m.ts)
    if kind == "group_change":
        g = entry.group_change
        return GroupEvent(g.group, g.name, g.owner, g.by, g.ts)
    return message_from_pb(entry.message)


def _which(chosen: str | None, private: int, group: int) -> tuple[int | None, int | None]:
    return (None, group) if chosen == "group" else (private, None)
