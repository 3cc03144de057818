from im.rpc.v1 import inbox_pb2 as _inbox_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConversationCursor(_message.Message):
    __slots__ = ("updated_at", "kind", "id")
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    updated_at: int
    kind: int
    id: int
    def __init__(self, updated_at: _Optional[int] = ..., kind: _Optional[int] = ..., id: _Optional[int] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("peer", "group", "last", "unread", "read_up_to", "peer_read_up_to", "updated_ts")
    PEER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    READ_UP_TO_FIELD_NUMBER: _ClassVar[int]
    PEER_READ_UP_TO_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TS_FIELD_NUMBER: _ClassVar[int]
    peer: int
    group: int
    last: _inbox_pb2.InboxEntry
    unread: int
    read_up_to: int
    peer_read_up_to: int
    updated_ts: int
    def __init__(self, peer: _Optional[int] = ..., group: _Optional[int] = ..., last: _Optional[_Union[_inbox_pb2.InboxEntry, _Mapping]] = ..., unread: _Optional[int] = ..., read_up_to: _Optional[int] = ..., peer_read_up_to: _Optional[int] = ..., updated_ts: _Optional[int] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("limit", "cursor")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    limit: int
    cursor: ConversationCursor
    def __init__(self, limit: _Optional[int] = ..., cursor: _Optional[_Union[ConversationCursor, _Mapping]] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    next: ConversationCursor
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., next: _Optional[_Union[ConversationCursor, _Mapping]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("peer", "group", "before", "limit")
    PEER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    peer: int
    group: int
    before: int
    limit: int
    def __init__(self, peer: _Optional[int] = ..., group: _Optional[int] = ..., before: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("entries", "more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_inbox_pb2.InboxEntry]
    more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[_inbox_pb2.InboxEntry, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...
