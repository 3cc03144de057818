"""Deciding a write transaction without I/O: what a batch or a group change stores, for both stores.

A store drives a `BatchPlan` through the steps of its transaction (docs/storage.md, "The batch
transaction"): each step names what to lock or read next, the store answers with rows, and `decide()`
returns the `Writes` (new messages and events, inbox rows, conversation changes, message changes,
counters), which number the new rows by position (`Writes` says how they become ids). A group change is
decided by one of the functions at the end (`join`, `removal`, `rename`, `hand_over`) and turned into
`Writes` the same way. Both stores make the same decisions; only their SQL differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from im.backends.base import Applied, BatchItem, Edit, Outcome, Read, Recall, Refused, Send
from im.backends.store.rows import GROUP, PRIVATE
from im.contracts.records import (
    EditEvent,
    Group,
    GroupEvent,
    InboxEvent,
    MemberAction,
    MemberEvent,
    Message,
    ReadEvent,
    RecallEvent,
)
from im.protocol.errors import BadRequest, Conflict, Forbidden, ImError, NotFound
from im.protocol.ids import MAX_ID

__all__ = ["BatchPlan", "ConversationChange", "ConvKey", "Counter", "EventInboxRow", "EventRow", "GroupChange",
           "InboxRow", "MessageChange", "MessageInboxRow", "MessageRow", "Target", "Writes", "hand_over", "join",
           "removal", "rename"]

ConvKey = tuple[int, int, int]
"""(user_id, conv_type, conv_id): one user's conversation row."""
_Key = tuple[int, str]
"""(sender, cid)"""


@dataclass(frozen=True, slots=True)
class Counter:
    """A user's locked `inbox_counters` row."""

    last_seq: int
    blocked_by: int
    """How many users block this one: 0 spares the batch the blocks query."""


@dataclass(frozen=True, slots=True)
class Target:
    """A message an edit or recall names, as locked, and its recall event's (sender's seq, ts) if recalled."""

    message: Message
    recall: tuple[int, int] | None


# -- what a transaction writes ---------------------------------------------------------------------

@dataclass(slots=True)
class MessageRow:
    sender: int
    to: int | None
    group: int | None
    content: str
    cid: str
    ts: int
    sender_seq: int


EVENT_INSERT_COLUMNS = ("kind, actor_id, actor_seq, message_id, group_id, peer_id, target_user_id, action, name, "
                        "owner_id, up_to, cid, created_at")


@dataclass(slots=True)
class EventRow:
    kind: Literal["edit", "recall", "read", "member", "group"]
    actor: int
    actor_seq: int
    ts: int
    message_id: int | None = None
    group: int | None = None
    peer: int | None = None
    target: int | None = None
    action: MemberAction | None = None
    name: str | None = None
    owner: int | None = None
    up_to: int | None = None
    cid: str | None = None

    def values(self) -> tuple[int | str | None, ...]:
        """In the order of `EVENT_INSERT_COLUMNS`."""
        return (self.kind, self.actor, self.actor_seq, self.message_id, self.group, self.peer, self.target,
                self.action, self.name, self.owner, self.up_to, self.cid, self.ts)


MessageInboxRow = tuple[int, int, int, int]
"""(user, seq, message id, conv_id): a plain tuple, there is one per receiver; the conversation's type
is the list's (`Writes.private_inbox`, `Writes.group_inbox`), so a store binds four values a row."""
EventInboxRow = tuple[int, int, int]
"""(user, seq, event id)"""
InboxRow = tuple[int, int, int | None, int | None, int | None, int | None]
"""(user, seq, message id, event id, conv_type, conv_id): any inbox row, as `resolved_inbox` gives them."""


@dataclass(slots=True)
class ConversationChange:
    """What happens to one conversation row. Activity (`updated_at` > 0) or a change of `unread` is an
    upsert that adds `unread` (less than 0 when recalls took unread messages away); `read_up_to`
    replaces the pointer of an existing row, moved forward from `read_from`, and once the inbox rows
    are in, the store takes the messages from others, not recalled, in `(read_from, read_up_to]` off
    `unread`: a cost of the messages read, not of those left unread. `last_message` is a position in
    `Writes.messages`."""

    updated_at: int = 0
    last_message: int | None = None
    last_seq: int | None = None
    unread: int = 0
    read_up_to: int | None = None
    read_from: int = 0


@dataclass(slots=True)
class MessageChange:
    """The final state of an edited or recalled message; `recall` is the position of its recall event."""

    content: str
    edited_at: int | None
    recall: int | None = None


@dataclass(slots=True)
class _GroupActivity:
    """A batch's messages to one group: they all reach the same members (membership is locked)."""

    ts: int
    positions: list[int]
    senders: list[int]
    seqs: dict[int, int]  # of the last one


class Writes:
    """Every row one transaction writes.

    New messages and events are numbered by position; the id of position p is `message_base + p`
    (`event_base + p`) in the inbox rows. A store that knows its next ids before inserting (SQLite)
    passes them as the bases; one that learns them by inserting (MySQL) passes 0 and maps the
    positions afterwards (`resolved_inbox`).
    """

    def __init__(self, last_seq: dict[int, int], *, message_base: int = 0, event_base: int = 0) -> None:
        self.last_seq = last_seq
        self._locked = dict(last_seq)
        self.message_base = message_base
        self.event_base = event_base
        self.messages: list[MessageRow] = []
        self.events: list[EventRow] = []
        self.private_inbox: list[MessageInboxRow] = []
        self.group_inbox: list[MessageInboxRow] = []
        self.event_inbox: list[EventInboxRow] = []
        self.conversations: dict[ConvKey, ConversationChange] = {}
        self.message_changes: dict[int, MessageChange] = {}
        self._groups: dict[int, _GroupActivity] = {}

    def next_seq(self, user: int) -> int:
        seq = self.last_seq[user] + 1
        self.last_seq[user] = seq
        return seq

    def conversation(self, key: ConvKey) -> ConversationChange:
        change = self.conversations.get(key)
        if change is None:
            change = self.conversations[key] = ConversationChange()
        return change

    def activity(self, key: ConvKey, ts: int) -> ConversationChange:
        """The conversation had activity at `ts` (a message, a member or group event): it moves up."""
        change = self.conversation(key)
        if ts > change.updated_at:
            change.updated_at = ts
        return change

    def add_message(self, row: Send, receivers: Sequence[int]) -> tuple[int, dict[int, int]]:
        """Store a message for `receivers` (the sender first); its position and the receivers' seqs.

        The hot path of every batch: one tuple per receiver, no call per receiver."""
        position = len(self.messages)
        message_id = self.message_base + position
        last_seq, sender, ts = self.last_seq, row.sender, row.ts
        seqs = {}
        if row.group is not None:
            group_id = row.group
            inbox = self.group_inbox
            for user in receivers:
                seq = seqs[user] = last_seq[user] + 1
                last_seq[user] = seq
                inbox.append((user, seq, message_id, group_id))
            group = self._groups.get(group_id)
            if group is None:
                self._groups[group_id] = _GroupActivity(ts, [position], [sender], seqs)
            else:
                group.ts = max(group.ts, ts)
                group.positions.append(position)
                group.senders.append(sender)
                group.seqs = seqs
        else:
            to = row.to
            assert to is not None
            conversations, inbox = self.conversations, self.private_inbox
            for user in receivers:
                seq = seqs[user] = last_seq[user] + 1
                last_seq[user] = seq
                peer = to if user == sender else sender
                inbox.append((user, seq, message_id, peer))
                key = (user, PRIVATE, peer)
                change = conversations.get(key)
                if change is None:
                    conversations[key] = ConversationChange(ts, position, seq, 0 if user == sender else 1)
                else:
                    if ts > change.updated_at:
                        change.updated_at = ts
                    change.last_message, change.last_seq = position, seq
                    if user != sender:
                        change.unread += 1
        self.messages.append(MessageRow(sender, row.to, row.group, row.content, row.cid, ts, seqs[sender]))
        return position, seqs

    def add_event(self, row: EventRow, receivers: Iterable[int]) -> dict[int, int]:
        """Give `row` the next seq of every receiver (the actor must be one); returns the seqs."""
        seqs = {user: self.next_seq(user) for user in receivers}
        event_id = self.event_base + len(self.events)
        self.events.append(_with_actor_seq(row, seqs[row.actor]))
        self.event_inbox.extend((user, seq, event_id) for user, seq in seqs.items())
        return seqs

    def finish(self) -> None:
        """Fold the batch's group messages into their conversation rows: one change per member and group."""
        groups, self._groups = self._groups, {}
        for group_id, group in groups.items():
            last = group.positions[-1]
            sent = len(group.senders)
            own: dict[int, int] = {}
            for sender in group.senders:
                own[sender] = own.get(sender, 0) + 1
            for user, seq in group.seqs.items():
                change = self.activity((user, GROUP, group_id), group.ts)
                change.last_message, change.last_seq = last, seq
                change.unread += sent - own.get(user, 0)

    def counters(self) -> list[tuple[int, int]]:
        """(user, last seq) of every user given a seq, ascending."""
        return sorted((user, seq) for user, seq in self.last_seq.items() if seq != self._locked[user])

    def resolved_inbox(self, message_ids: Sequence[int], event_ids: Sequence[int]) -> list[InboxRow]:
        """Every inbox row, with positions (bases 0) replaced by ids."""
        rows: list[InboxRow] = [(user, seq, message_ids[m], None, PRIVATE, c) for user, seq, m, c in self.private_inbox]
        rows.extend((user, seq, message_ids[m], None, GROUP, c) for user, seq, m, c in self.group_inbox)
        rows.extend((user, seq, None, event_ids[e], None, None) for user, seq, e in self.event_inbox)
        return rows


def _with_actor_seq(row: EventRow, seq: int) -> EventRow:
    return EventRow(row.kind, row.actor, seq, row.ts, row.message_id, row.group, row.peer, row.target, row.action,
                    row.name, row.owner, row.up_to, row.cid)


# -- a batch ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class _MessageState:
    """An edit / recall target as earlier items of the batch left it."""

    content: str
    edited_at: int | None
    recall: tuple[InboxEvent, int] | None  # the recall event and the sender's seq of it


class BatchPlan:
    """The decisions of one `Store.commit` batch. Call the steps in this order, each once:

    1. `target_ids()` → lock and read those messages → `learn_targets`;
    2. `send_groups()` (share-lock, they must exist) and `member_groups()` (members, former ones too)
       → `learn_groups`;
    3. `holder_probes()` → which of those users have those messages in their inbox → `learn_holders`;
    4. `users()` → lock their counter rows → `learn_counters` (absent: no such user);
    5. `block_pairs()` → `learn_blocks`;  6. `send_keys()` / `event_keys()` → `learn_originals`;
    7. `pointer_keys()` → `learn_conversations`;  8. `decide()` → write it → `outcomes(message_ids)`.
    """

    def __init__(self, batch: Sequence[BatchItem], *, edit_window_ms: int | None, recall_window_ms: int | None,
                 ) -> None:
        self._batch = list(batch)
        self._edit_window = edit_window_ms
        self._recall_window = recall_window_ms
        self._outcomes: list[Outcome | None] = [None] * len(self._batch)
        self._first: dict[int, int] = {}  # index -> index of the earlier item with the same (sender, cid)
        # The items to decide, by kind, in batch order: neither malformed nor repeated within the batch.
        self._sends: list[tuple[int, Send]] = []
        self._changes: list[tuple[int, Edit | Recall]] = []
        self._reads: list[tuple[int, Read]] = []
        seen: dict[tuple[bool, int, str], int] = {}
        for i, item in enumerate(self._batch):
            error = _malformed(item)
            if error is not None:
                self._outcomes[i] = Refused(error)
                continue
            if isinstance(item, Read):
                self._reads.append((i, item))
                continue
            key = (isinstance(item, Send), item.sender, item.cid)
            if key in seen:
                self._first[i] = seen[key]
                continue
            seen[key] = i
            if isinstance(item, Send):
                self._sends.append((i, item))
            else:
                self._changes.append((i, item))
        self._targets: dict[int, Target] = {}
        self._groups: set[int] = set()
        self._members: dict[int, list[tuple[int, bool]]] = {}
        self._current: dict[int, list[int]] = {}
        self._holders: set[tuple[int, int]] = set()
        self._counters: dict[int, Counter] = {}
        self._blocks: set[tuple[int, int]] = set()
        self._sent: dict[_Key, tuple[Message, int]] = {}
        self._changed: dict[_Key, tuple[InboxEvent, int]] = {}
        self._conversations: dict[ConvKey, tuple[int | None, int | None]] = {}
        self._pending: dict[int, tuple[Send, int, dict[int, int]]] = {}  # send index -> (it, its position, seqs)
        self._message_base = 0

    # 1
    def target_ids(self) -> list[int]:
        return sorted({item.message_id for _, item in self._changes})

    def learn_targets(self, targets: dict[int, Target]) -> None:
        self._targets = targets

    # 2
    def send_groups(self) -> list[int]:
        return sorted({item.group for _, item in self._sends if item.group is not None})

    def member_groups(self) -> list[int]:
        targets = {t.message.group for t in self._targets.values() if t.message.group is not None}
        return sorted(targets.union(self.send_groups()))

    def learn_groups(self, existing: set[int], members: dict[int, list[tuple[int, bool]]]) -> None:
        """`existing`: the send groups found (locked); `members`: (user, is a member now) per group."""
        self._groups = existing
        self._members = members
        self._current = {group: [user for user, now in rows if now] for group, rows in members.items()}

    # 3
    def holder_probes(self) -> list[tuple[int, int, int]]:
        """(user, group, message id): for group messages edited or recalled, every member past or present."""
        probes: set[tuple[int, int, int]] = set()
        for target in self._targets.values():
            group = target.message.group
            if group is not None:
                probes.update((user, group, target.message.id) for user, _ in self._members.get(group, ()))
        return sorted(probes)

    def learn_holders(self, holders: set[tuple[int, int]]) -> None:
        """(user, message id) pairs found among the probes."""
        self._holders = holders

    # 4
    def users(self) -> list[int]:
        users: set[int] = set()
        groups: set[int] = set()
        for _, send in self._sends:
            users.add(send.sender)
            if send.to is not None:
                users.add(send.to)
            elif send.group is not None:
                groups.add(send.group)
        for group in groups & self._groups:
            users.update(self._current.get(group, ()))
        for _, read in self._reads:
            users.add(read.reader)
            if read.peer is not None:
                users.add(read.peer)
        for _, change in self._changes:
            users.add(change.sender)
            target = self._targets.get(change.message_id)
            if target is not None:
                users.update(self._receivers_of(target.message))
        return sorted(users)

    def learn_counters(self, counters: dict[int, Counter]) -> None:
        self._counters = counters

    # 5
    def block_pairs(self) -> list[tuple[int, int]]:
        """(blocker, blocked) pairs to look up: only for actors someone blocks."""
        blocked = {user for user, counter in self._counters.items() if counter.blocked_by > 0}
        if not blocked:
            return []
        pairs = {(send.to, send.sender) for _, send in self._sends if send.to is not None and send.sender in blocked}
        pairs.update((read.peer, read.reader) for _, read in self._reads
                     if read.peer is not None and read.reader in blocked)
        return sorted(pairs)

    def learn_blocks(self, found: set[tuple[int, int]]) -> None:
        self._blocks = found

    # 6
    def send_keys(self) -> list[_Key]:
        return [(item.sender, item.cid) for _, item in self._sends]

    def event_keys(self) -> list[_Key]:
        return [(item.sender, item.cid) for _, item in self._changes]

    def learn_originals(self, sends: dict[_Key, tuple[Message, int]], changes: dict[_Key, tuple[InboxEvent, int]],
                        ) -> None:
        """The stored messages / edit and recall events among the keys, with the sender's seq of each."""
        self._sent = sends
        self._changed = changes

    # 7
    def pointer_keys(self) -> list[ConvKey]:
        """The conversation rows whose read pointer the batch needs: the readers', and those of everyone
        but the sender holding a message recalled (its unread count may lose it)."""
        keys = {_read_key(item) for _, item in self._reads}
        for _, change in self._changes:
            target = self._targets.get(change.message_id)
            if isinstance(change, Recall) and target is not None:
                message = target.message
                keys.update(_conversation_of(message, user) for user in self._receivers_of(message)
                            if user != message.sender)
        return sorted(keys)

    def learn_conversations(self, rows: dict[ConvKey, tuple[int | None, int | None]]) -> None:
        """(last_message_id, read_up_to) of the conversation rows found."""
        self._conversations = rows

    # 8
    def decide(self, *, message_base: int = 0, event_base: int = 0) -> Writes:
        """The rows to write (see `Writes` for the bases)."""
        self._message_base = message_base
        writes = Writes({user: counter.last_seq for user, counter in self._counters.items()},
                        message_base=message_base, event_base=event_base)
        states: dict[int, _MessageState] = {}
        pointers: dict[ConvKey, int] = {}
        if not (self._changes or self._reads):
            for i, send in self._sends:
                try:
                    self._send(i, send, writes)
                except ImError as error:
                    self._outcomes[i] = Refused(error)
            writes.finish()
            return writes
        items: list[tuple[int, BatchItem]] = [*self._sends, *self._changes, *self._reads]
        items.sort(key=_index)  # seqs follow batch order, whatever the kind
        for i, item in items:
            try:
                if isinstance(item, Send):
                    self._send(i, item, writes)
                elif isinstance(item, Read):
                    self._outcomes[i] = self._read(item, writes, pointers)
                else:
                    self._outcomes[i] = self._change(item, writes, states)
            except ImError as error:
                self._outcomes[i] = Refused(error)
        writes.finish()
        return writes

    def outcomes(self, message_ids: Sequence[int] | None = None) -> list[Outcome]:
        """Every item's outcome, once the store inserted `Writes.messages`: with these ids (in order),
        or None if they are `message_base + position`."""
        outcomes, base = self._outcomes, self._message_base
        for i, (item, position, seqs) in self._pending.items():
            message_id = base + position if message_ids is None else message_ids[position]
            outcomes[i] = Applied(Message(message_id, item.sender, item.to, item.group, item.content, item.cid,
                                          item.ts), seqs)
        for i, first in self._first.items():
            original = self._outcomes[first]
            assert original is not None
            if isinstance(original, Applied):
                actor = _actor(self._batch[i])
                original = Applied(original.event, {actor: original.seqs[actor]}, duplicate=True)
            self._outcomes[i] = original
        assert all(o is not None for o in self._outcomes)
        return [o for o in self._outcomes if o is not None]

    # -- one item each -------------------------------------------------------------------------

    def _require_user(self, user: int) -> None:
        if user not in self._counters:
            raise NotFound(f"no user {user}")

    def _send(self, i: int, item: Send, writes: Writes) -> None:
        original = self._sent.get((item.sender, item.cid)) if self._sent else None
        if original is not None:
            self._outcomes[i] = Applied(original[0], {item.sender: original[1]}, duplicate=True)
            return
        counters = self._counters
        if item.sender not in counters:
            raise NotFound(f"no user {item.sender}")
        receivers: Sequence[int]
        if item.to is not None:
            if item.to not in counters:
                raise NotFound(f"no user {item.to}")
            if self._blocks and (item.to, item.sender) in self._blocks:
                raise Forbidden(f"user {item.to} does not take messages from you")
            receivers = (item.sender,) if item.to == item.sender else (item.sender, item.to)
        else:
            assert item.group is not None
            if item.group not in self._groups:
                raise NotFound(f"no group {item.group}")
            receivers = self._current.get(item.group, ())
            if item.sender not in receivers:
                raise Forbidden(f"you are not a member of group {item.group}")
        self._pending[i] = (item, *writes.add_message(item, receivers))

    def _change(self, item: Edit | Recall, writes: Writes, states: dict[int, _MessageState]) -> Applied:
        original = self._changed.get((item.sender, item.cid))
        if original is not None:
            return Applied(original[0], {item.sender: original[1]}, duplicate=True)
        self._require_user(item.sender)
        target = self._targets.get(item.message_id)
        if target is None:
            raise NotFound(f"no message {item.message_id}")
        message = target.message
        if message.sender != item.sender:
            raise Forbidden("only its sender can edit or recall a message")
        state = states.get(message.id)
        if state is None:
            recall = None if target.recall is None else (
                RecallEvent(message.id, message.sender, message.to, message.group, target.recall[1]),
                target.recall[0])
            state = states[message.id] = _MessageState(message.content, message.edited_ts, recall)
        if isinstance(item, Recall) and state.recall is not None:
            return Applied(state.recall[0], {item.sender: state.recall[1]}, duplicate=True)
        if isinstance(item, Edit) and state.recall is not None:
            raise Forbidden("the message was recalled")
        window = self._recall_window if isinstance(item, Recall) else self._edit_window
        if window is not None and item.ts - message.ts > window:
            raise Forbidden(f"too late to {'recall' if isinstance(item, Recall) else 'edit'} this message")

        position = len(writes.events)
        kind: Literal["edit", "recall"] = "recall" if isinstance(item, Recall) else "edit"
        seqs = writes.add_event(EventRow(kind, item.sender, 0, item.ts, message_id=message.id, group=message.group,
                                         cid=item.cid), self._receivers_of(message))
        event: InboxEvent
        if isinstance(item, Recall):
            event = RecallEvent(message.id, message.sender, message.to, message.group, item.ts)
            state.content, state.recall = "", (event, seqs[item.sender])
            self._forget_unread(message, seqs, writes)
        else:
            event = EditEvent(message.id, message.sender, message.to, message.group, item.content, item.ts)
            state.content, state.edited_at = item.content, item.ts
        change = writes.message_changes.get(message.id)
        if change is None:
            change = writes.message_changes[message.id] = MessageChange(state.content, state.edited_at)
        change.content, change.edited_at = state.content, state.edited_at
        if isinstance(item, Recall):
            change.recall = position
        return Applied(event, seqs)

    def _forget_unread(self, message: Message, receivers: Iterable[int], writes: Writes) -> None:
        """A recalled message leaves the unread counts it is in: those whose pointer (as the batch
        found it; a read in the batch does not count recalled messages) is before it."""
        for user in receivers:
            if user == message.sender:
                continue
            key = _conversation_of(message, user)
            found = self._conversations.get(key)
            if found is not None and message.id > (found[1] or 0):
                writes.conversation(key).unread -= 1

    def _receivers_of(self, message: Message) -> list[int]:
        """Everyone whose inbox has `message`: sender and peer, or the group's holders of it."""
        if message.group is None:
            assert message.to is not None
            return sorted({message.sender, message.to})
        return sorted({user for user, held in self._holders if held == message.id} | {message.sender})

    def _read(self, item: Read, writes: Writes, pointers: dict[ConvKey, int]) -> Applied:
        self._require_user(item.reader)
        key = _read_key(item)
        last_message, read_up_to = self._conversations.get(key, (None, None))
        current = pointers.get(key, read_up_to or 0)
        up_to = min(item.up_to, last_message or 0)
        if up_to <= current:
            return Applied(ReadEvent(item.reader, item.peer, item.group, current, item.ts), {})
        receivers = [item.reader]
        peer = item.peer
        if (peer is not None and peer != item.reader and peer in self._counters
                and (peer, item.reader) not in self._blocks):
            receivers.append(peer)
        seqs = writes.add_event(EventRow("read", item.reader, 0, item.ts, group=item.group, peer=peer, up_to=up_to),
                                receivers)
        change = writes.conversation(key)
        if change.read_up_to is None:
            change.read_from = current
        change.read_up_to = pointers[key] = up_to
        return Applied(ReadEvent(item.reader, peer, item.group, up_to, item.ts), seqs)


def _read_key(item: Read) -> ConvKey:
    if item.peer is not None:
        return (item.reader, PRIVATE, item.peer)
    assert item.group is not None
    return (item.reader, GROUP, item.group)


def _conversation_of(message: Message, user: int) -> ConvKey:
    """`user`'s conversation row holding `message` (a sender or receiver of it)."""
    if message.group is not None:
        return (user, GROUP, message.group)
    assert message.to is not None
    return (user, PRIVATE, message.to if user == message.sender else message.sender)


def _index(entry: tuple[int, BatchItem]) -> int:
    return entry[0]


def _actor(item: BatchItem) -> int:
    return item.reader if isinstance(item, Read) else item.sender


def _malformed(item: BatchItem) -> ImError | None:
    """Items no stored row can match: an id past 64 bits, or a conversation not named exactly once.
    (Comparing is also what makes a non-number fail here, long before any SQL is built.)"""
    if isinstance(item, Send):
        if (item.to is None) == (item.group is None):
            return BadRequest("name a user or a group, exactly one of them")
        ok = (_LOW <= item.sender <= MAX_ID and _LOW <= (item.to or item.group or 0) <= MAX_ID
              and _LOW <= item.ts <= MAX_ID)
    elif isinstance(item, Read):
        if (item.peer is None) == (item.group is None):
            return BadRequest("name a user or a group, exactly one of them")
        ok = (_LOW <= item.reader <= MAX_ID and _LOW <= (item.peer or item.group or 0) <= MAX_ID
              and _LOW <= item.up_to <= MAX_ID and _LOW <= item.ts <= MAX_ID)
    else:
        ok = _LOW <= item.sender <= MAX_ID and _LOW <= item.message_id <= MAX_ID and _LOW <= item.ts <= MAX_ID
    return None if ok else NotFound("no such user, group or message")


_LOW = -MAX_ID - 1


# -- group changes ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GroupChange:
    """A decided change of one group: its event and who receives it (every current member, and the
    user who leaves or is removed, who still is one when this is decided)."""

    group: Group
    receivers: list[int]
    by: int
    member: tuple[int, MemberAction] | None = None
    """(user, action) of a `member` event; else it is a `group` event."""
    name: str | None = None
    owner: int | None = None

    def event(self, ts: int) -> MemberEvent | GroupEvent:
        if self.member is not None:
            return MemberEvent(self.group.id, self.member[0], self.member[1], self.by, ts)
        return GroupEvent(self.group.id, self.name or self.group.name, self.owner or self.group.owner, self.by, ts)

    def writes(self, counters: dict[int, Counter], ts: int, *, event_base: int = 0) -> tuple[Writes, Applied]:
        """The rows of the change (see `Writes` for `event_base`); `NotFound` if a receiver does not exist."""
        for user in self.receivers:
            if user not in counters:
                raise NotFound(f"no user {user}")
        writes = Writes({user: counters[user].last_seq for user in self.receivers}, event_base=event_base)
        event = self.event(ts)
        if isinstance(event, MemberEvent):
            row = EventRow("member", self.by, 0, ts, group=event.group, target=event.user, action=event.action)
        else:
            row = EventRow("group", self.by, 0, ts, group=event.group, name=event.name, owner=event.owner)
        seqs = writes.add_event(row, self.receivers)
        for user in self.receivers:
            writes.activity((user, GROUP, self.group.id), ts)
        return writes, Applied(event, seqs)


def _owner_acts(group: Group, members: Sequence[int], by: int, what: str) -> None:
    if by not in members:
        raise Forbidden(f"you are not a member of group {group.id}")
    if by != group.owner:
        raise Forbidden(f"only the group's owner {what}")


def join(group: Group, members: Sequence[int], user: int, by: int) -> GroupChange | None:
    _owner_acts(group, members, by, "adds members")
    if user in members:
        return None
    return GroupChange(group, sorted({*members, user}), by, member=(user, "joined"))


def removal(group: Group, members: Sequence[int], user: int, by: int) -> GroupChange:
    if user == by:
        if by not in members:
            raise NotFound(f"you are not a member of group {group.id}")
        if by == group.owner and len(members) > 1:
            raise Conflict("the owner cannot leave while others remain: hand the group over first")
        return GroupChange(group, sorted(members), by, member=(user, "left"))
    _owner_acts(group, members, by, "removes members")
    if user not in members:
        raise NotFound(f"user {user} is not a member of group {group.id}")
    return GroupChange(group, sorted(members), by, member=(user, "removed"))


def rename(group: Group, members: Sequence[int], name: str, by: int) -> GroupChange | None:
    _owner_acts(group, members, by, "renames the group")
    if name == group.name:
        return None
    return GroupChange(group, sorted(members), by, name=name)


def hand_over(group: Group, members: Sequence[int], user: int, by: int) -> GroupChange | None:
    _owner_acts(group, members, by, "hands it over")
    if user == group.owner:
        return None
    if user not in members:
        raise NotFound(f"user {user} is not a member of group {group.id}")
    return GroupChange(group, sorted(members), by, owner=user)
