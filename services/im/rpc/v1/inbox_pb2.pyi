from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Message(_message.Message):
    __slots__ = ("id", "sender", "to", "group", "content", "cid", "ts", "edited_ts", "recalled")
    ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    EDITED_TS_FIELD_NUMBER: _ClassVar[int]
    RECALLED_FIELD_NUMBER: _ClassVar[int]
    id: int
    sender: int
    to: int
    group: int
    content: str
    cid: str
    ts: int
    edited_ts: int
    recalled: bool
    def __init__(self, id: _Optional[int] = ..., sender: _Optional[int] = ..., to: _Optional[int] = ..., group: _Optional[int] = ..., content: _Optional[str] = ..., cid: _Optional[str] = ..., ts: _Optional[int] = ..., edited_ts: _Optional[int] = ..., recalled: _Optional[bool] = ...) -> None: ...

class EditEvent(_message.Message):
    __slots__ = ("message_id", "sender", "to", "group", "content", "ts")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    sender: int
    to: int
    group: int
    content: str
    ts: int
    def __init__(self, message_id: _Optional[int] = ..., sender: _Optional[int] = ..., to: _Optional[int] = ..., group: _Optional[int] = ..., content: _Optional[str] = ..., ts: _Optional[int] = ...) -> None: ...

class RecallEvent(_message.Message):
    __slots__ = ("message_id", "sender", "to", "group", "ts")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    sender: int
    to: int
    group: int
    ts: int
    def __init__(self, message_id: _Optional[int] = ..., sender: _Optional[int] = ..., to: _Optional[int] = ..., group: _Optional[int] = ..., ts: _Optional[int] = ...) -> None: ...

class ReadEvent(_message.Message):
    __slots__ = ("by", "peer", "group", "up_to", "ts")
    BY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    UP_TO_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    by: int
    peer: int
    group: int
    up_to: int
    ts: int
    def __init__(self, by: _Optional[int] = ..., peer: _Optional[int] = ..., group: _Optional[int] = ..., up_to: _Optional[int] = ..., ts: _Optional[int] = ...) -> None: ...

class MemberEvent(_message.Message):
    __slots__ = ("group", "user", "action", "by", "ts")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    group: int
    user: int
    action: str
    by: int
    ts: int
    def __init__(self, group: _Optional[int] = ..., user: _Optional[int] = ..., action: _Optional[str] = ..., by: _Optional[int] = ..., ts: _Optional[int] = ...) -> None: ...

class GroupEvent(_message.Message):
    __slots__ = ("group", "name", "owner", "by", "ts")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    group: int
    name: str
    owner: int
    by: int
    ts: int
    def __init__(self, group: _Optional[int] = ..., name: _Optional[str] = ..., owner: _Optional[int] = ..., by: _Optional[int] = ..., ts: _Optional[int] = ...) -> None: ...

class InboxEntry(_message.Message):
    __slots__ = ("seq", "message", "edit", "recall", "read", "member", "group_change")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EDIT_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    GROUP_CHANGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    message: Message
    edit: EditEvent
    recall: RecallEvent
    read: ReadEvent
    member: MemberEvent
    group_change: GroupEvent
    def __init__(self, seq: _Optional[int] = ..., message: _Optional[_Union[Message, _Mapping]] = ..., edit: _Optional[_Union[EditEvent, _Mapping]] = ..., recall: _Optional[_Union[RecallEvent, _Mapping]] = ..., read: _Optional[_Union[ReadEvent, _Mapping]] = ..., member: _Optional[_Union[MemberEvent, _Mapping]] = ..., group_change: _Optional[_Union[GroupEvent, _Mapping]] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("after", "limit", "events")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    after: int
    limit: int
    events: bool
    def __init__(self, after: _Optional[int] = ..., limit: _Optional[int] = ..., events: _Optional[bool] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("entries", "more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[InboxEntry]
    more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[InboxEntry, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...
