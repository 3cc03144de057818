"""The Python client SDK (docs/clients.md).

- `ChatClient`: the WebSocket session an application uses; reconnects, resends, syncs, hands over events.
- `HttpClient`: one helper per HTTP route.
- `ChatConnection`: one raw WebSocket, frames by hand (tests, scripts).
"""

from im.client.chat import ChatClient, ClientOptions, Credentials, Outgoing, ReconnectPolicy, SendRefused
from im.client.connection import ChatConnection
from im.client.events import (
    Acked,
    Change,
    Changed,
    Connected,
    Disconnected,
    Edited,
    Event,
    FrameTrace,
    GroupChanged,
    InboxEvent,
    MemberChanged,
    Message,
    Presence,
    PresenceUpdate,
    ReadMoved,
    Recalled,
    Received,
    ReconnectRequested,
    SendFailed,
    ServerError,
    SessionEnded,
    Synced,
    TypingNotice,
    UnknownFrame,
)
from im.client.http import Exchange, HttpClient, HttpError, Login
from im.client.state import FileStore, MemoryStore, PendingSend, SavedState, Store

__all__ = [
    "Acked", "Change", "Changed", "Edited", "GroupChanged", "MemberChanged", "ReadMoved", "Recalled",
    "ChatClient", "ChatConnection", "ClientOptions", "Connected", "Credentials", "Disconnected", "Event",
    "Exchange", "FileStore", "FrameTrace", "HttpClient", "HttpError", "InboxEvent", "Login", "MemoryStore",
    "Message", "Outgoing", "PendingSend", "Presence", "PresenceUpdate", "Received", "ReconnectPolicy",
    "ReconnectRequested", "SavedState", "SendFailed", "SendRefused", "ServerError", "SessionEnded", "Store",
    "Synced", "TypingNotice", "UnknownFrame",
]
