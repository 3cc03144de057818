"""What both stores share about rows: column lists, kinds, and turning rows into records.

docs/storage.md describes the tables. Everything here is plain SQL text and pure functions, so the
SQLite and MySQL stores read and render the same columns the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from im.contracts.records import (
    Conversation,
    ConversationCursor,
    EditEvent,
    GroupEvent,
    InboxEvent,
    MemberAction,
    MemberEvent,
    Message,
    ReadEvent,
    RecallEvent,
)
from im.protocol.ids import MAX_ID

__all__ = ["CONVERSATIONS_SQL", "COUNTS_AS_UNREAD", "EVENTS_SQL", "EVENT_COLUMNS", "GROUP", "GROUP_READS_SQL",
           "HISTORY_SQL", "MEMBER_ACTIONS", "MESSAGE_WIDTH", "NO_CURSOR", "PRIVATE", "conversation_from_row",
           "event_from_row", "fits", "inbox_entry", "message_columns", "message_from_row"]

# inbox.conv_type / conversations.conv_type: whose conversation a row belongs to, from its user's side.
PRIVATE = 1
"""conv_id is the peer's user id (the user itself for notes to self)."""
GROUP = 2
"""conv_id is the group id."""

COUNTS_AS_UNREAD = "m.sender_id <> i.user_id AND m.recall_id IS NULL"
"""Whether message `m` of inbox row `i`, once after its user's read pointer, is in the unread count:
from someone else, and not recalled (docs/storage.md, "Conversations"). Migrations spell it out, as
they never change."""

MEMBER_ACTIONS: dict[str, MemberAction] = {"joined": "joined", "left": "left", "removed": "removed"}


def fits(value: int) -> bool:
    """Whether an int fits a signed 64-bit column: larger values name nothing stored (and would make
    SQLite raise OverflowError when bound)."""
    return -MAX_ID - 1 <= value <= MAX_ID


def message_columns(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in (
        "id", "sender_id", "to_user_id", "group_id", "content", "cid", "created_at", "edited_at", "recall_id"))


MESSAGE_WIDTH = 9
"""Columns of `message_columns`."""

EVENT_COLUMNS = ("e.kind, e.actor_id, e.group_id, e.peer_id, e.target_user_id, e.action, e.name, e.owner_id, "
                 "e.up_to, e.created_at")
_EVENT_WIDTH = 10

# The read queries both stores run as they are (`?` placeholders; MySQL's driver wants `%s`).

EVENTS_SQL = (
    f"SELECT i.seq, {message_columns('m')}, {EVENT_COLUMNS}, {message_columns('em')} FROM inbox i "
    "LEFT JOIN messages m ON m.id = i.message_id LEFT JOIN events e ON e.id = i.event_id "
    "LEFT JOIN messages em ON em.id = e.message_id "
    "WHERE i.user_id = ? AND i.seq > ? ORDER BY i.seq LIMIT ?")
"""(user, after, limit): rows for `inbox_entry`."""

HISTORY_SQL = (
    f"SELECT i.seq, {message_columns('m')} FROM inbox i JOIN messages m ON m.id = i.message_id "
    "WHERE i.user_id = ? AND i.conv_type = ? AND i.conv_id = ? AND i.message_id < ? "
    "ORDER BY i.message_id DESC LIMIT ?")
"""(user, conv_type, conv_id, before, limit): one conversation's messages in a user's inbox, newest first,
a range of index inbox (user_id, conv_type, conv_id, message_id)."""

CONVERSATIONS_SQL = (
    "SELECT c.conv_type, c.conv_id, c.last_seq, c.updated_at, c.read_up_to, c.unread, "
    f"CASE WHEN b.user_id IS NULL THEN p.read_up_to END, {message_columns('m')} "
    "FROM conversations c "
    "LEFT JOIN conversations p ON c.conv_type = 1 AND p.user_id = c.conv_id AND p.conv_type = 1 "
    "AND p.conv_id = c.user_id "
    "LEFT JOIN blocks b ON c.conv_type = 1 AND b.user_id = c.user_id AND b.blocked_id = c.conv_id "
    "LEFT JOIN messages m ON m.id = c.last_message_id "
    "WHERE c.user_id = ? AND (c.updated_at < ? OR (c.updated_at = ? AND (c.conv_type < ? "
    "OR (c.conv_type = ? AND c.conv_id < ?)))) "
    "ORDER BY c.updated_at DESC, c.conv_type DESC, c.conv_id DESC LIMIT ?")
"""(user, updated_at, updated_at, kind, kind, id, limit) of the cursor: a backward range of index
conversations (user_id, updated_at, conv_type, conv_id), plus primary-key lookups for the peer's
pointer, a block, the last message."""

GROUP_READS_SQL = (
    "SELECT gm.user_id, c.read_up_to FROM group_members gm LEFT JOIN conversations c "
    "ON c.user_id = gm.user_id AND c.conv_type = 2 AND c.conv_id = gm.group_id "
    "WHERE gm.group_id = ? AND gm.left_at IS NULL ORDER BY gm.user_id")

NO_CURSOR = ConversationCursor(MAX_ID, 0, 0)
"""Sorts after every row (no updated_at reaches it)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def message_from_row(row: Sequence[Any]) -> Message:
    """A `message_columns` row in its current state."""
    return Message(id=int(row[0]), sender=int(row[1]), to=_int_or_none(row[2]), group=_int_or_none(row[3]),
                   content=_text(row[4]), cid=_text(row[5]), ts=int(row[6]), edited_ts=_int_or_none(row[7]),
                   recalled=row[8] is not None)


def event_from_row(event: Sequence[Any], message: Sequence[Any], receiver: int) -> InboxEvent:
    """An `EVENT_COLUMNS` row (and the `message_columns` of the message it concerns, NULLs if none),
    rendered for `receiver`."""
    kind, actor, group, peer, target, action, name, owner, up_to, ts = event
    actor, ts = int(actor), int(ts)
    if kind in ("edit", "recall"):
        m = message_from_row(message)
        if kind == "edit":
            return EditEvent(m.id, m.sender, m.to, m.group, m.content, ts)
        return RecallEvent(m.id, m.sender, m.to, m.group, ts)
    if kind == "read":
        read = ReadEvent(actor, _int_or_none(peer), _int_or_none(group), int(up_to), ts)
        return read.seen_by(receiver)
    if kind == "member":
        return MemberEvent(int(group), int(target), MEMBER_ACTIONS[_text(action)], actor, ts)
    if kind == "group":
        return GroupEvent(int(group), _text(name), int(owner), actor, ts)
    raise ValueError(f"unknown event kind {kind!r}")


def inbox_entry(row: Sequence[Any], receiver: int) -> tuple[int, InboxEvent]:
    """An `INBOX_COLUMNS` row as `(seq, event)`."""
    message = row[1:1 + MESSAGE_WIDTH]
    if message[0] is not None:
        return int(row[0]), message_from_row(message)
    start = 1 + MESSAGE_WIDTH
    return int(row[0]), event_from_row(row[start:start + _EVENT_WIDTH], row[start + _EVENT_WIDTH:], receiver)


def conversation_from_row(row: Sequence[Any]) -> tuple[Conversation, ConversationCursor]:
    """A `CONVERSATIONS_SQL` row, and the cursor that continues after it."""
    conv_type, conv_id, last_seq, updated_at, read_up_to, unread, peer_read_up_to = row[:7]
    message = row[7:]
    last = None if message[0] is None or last_seq is None else (int(last_seq), message_from_row(message))
    private = int(conv_type) == PRIVATE
    conversation = Conversation(
        peer=int(conv_id) if private else None, group=None if private else int(conv_id), last=last,
        unread=int(unread), read_up_to=_int_or_none(read_up_to),
        peer_read_up_to=_int_or_none(peer_read_up_to) if private else None, updated_ts=int(updated_at))
    return conversation, ConversationCursor(int(updated_at), int(conv_type), int(conv_id))
