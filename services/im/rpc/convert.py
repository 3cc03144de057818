"""Records (`im.contracts.records`) to protobuf messages and back: the only place that knows both."""

from __future__ import annotations

from im.contracts.records import Group, InboxPage, Message, User
from im.rpc.v1 import auth_pb2, group_pb2, inbox_pb2

__all__ = [
    "group_from_pb",
    "group_to_pb",
    "inbox_page_from_pb",
    "inbox_page_to_pb",
    "message_from_pb",
    "message_to_pb",
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
        id=message.id, sender=message.sender, content=message.content, cid=message.cid, ts=message.ts
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
    )


def inbox_page_to_pb(page: InboxPage) -> inbox_pb2.SyncResponse:
    return inbox_pb2.SyncResponse(
        entries=[inbox_pb2.InboxEntry(seq=seq, message=message_to_pb(m)) for seq, m in page.entries],
        more=page.more,
    )


def inbox_page_from_pb(pb: inbox_pb2.SyncResponse) -> InboxPage:
    return InboxPage(entries=[(e.seq, message_from_pb(e.message)) for e in pb.entries], more=pb.more)
