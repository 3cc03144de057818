// Types of the wire protocol (docs/protocol.md, services/im/protocol/schemas/frames.json) and of the
// SDK's events. Type declarations only: nothing of this module exists at run time.

/** A message in my inbox, as the server sends it (`msg` frames, sync entries, GET /api/v1/messages). */
export interface Message {
  type: 'msg';
  id: number;
  seq: number;
  from: number;
  to: number | null;
  group: number | null;
  content: string;
  cid: string | null;
  ts: number;
  /** In a sync or history page: set once edited (unix ms). */
  edited_ts?: number;
  /** In a sync or history page: the message was recalled (its content is ""). */
  recalled?: boolean;
  /** Fields newer than this SDK are kept as they came. */
  [field: string]: unknown;
}

/** Any inbox entry: a message, or a kind this SDK does not know yet (it still has a `seq`). */
export interface InboxEntry {
  type: string;
  seq: number;
  [field: string]: unknown;
}

/** `id` was edited (`to` or `group` as in the message); `content` is its current text. */
export interface EditEvent {
  type: 'edit'; seq: number; id: number; from: number; to?: number; group?: number; content: string; ts: number;
}

/** `id` was recalled: its content is gone. */
export interface RecallEvent { type: 'recall'; seq: number; id: number; from: number; to?: number; group?: number; ts: number }

/** `by` read up to message `up_to`; the conversation is named from my side (`peer` or `group`). */
export interface ReadEvent { type: 'read'; seq: number; by: number; peer?: number; group?: number; up_to: number; ts: number }

/** `user` joined, left or was removed from `group` by `by`. */
export interface MemberEvent {
  type: 'member'; seq: number; group: number; user: number; action: 'joined' | 'left' | 'removed'; by: number; ts: number;
}

/** `group` was renamed or handed over: its name and owner now. */
export interface GroupEvent { type: 'group'; seq: number; group: number; name: string; owner: number; by: number; ts: number }

/** The inbox events beside messages that this SDK knows. */
export type InboxEvent = EditEvent | RecallEvent | ReadEvent | MemberEvent | GroupEvent;

export interface AckFrame { type: 'ack'; cid: string; id: number; seq: number; ts: number }
export interface SyncPageFrame { type: 'sync'; messages: InboxEntry[]; more: boolean }
export interface ErrorFrame { type: 'error'; code: ErrorCode; message: string; cid: string | null }
export interface ReconnectFrame { type: 'reconnect'; after_ms: number }

/** One watched user: online while it has a connection on any gateway; `last_seen` is when its connections
 * last closed (unix ms), null if never recorded or if that user blocked me (then always offline). */
export interface Presence { user_id: number; online: boolean; last_seen: number | null }

/** `from` is typing to me (`to` is me) or in `group`. No seq: never stored, best effort. */
export interface TypingNoticeFrame { type: 'typing'; from: number; to?: number; group?: number }

/** The snapshot answering a `presence` watch (every user named), then the watched users whose presence changed. */
export interface PresenceFrame { type: 'presence'; users: Presence[] }

export type ErrorCode =
  | 'bad_frame' | 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict'
  | 'too_large' | 'rate_limited' | 'unavailable' | 'internal' | (string & {});

export type SendFrame =
  | { type: 'send'; cid: string; to: number; content: string }
  | { type: 'send'; cid: string; group: number; content: string };
export interface EditFrame { type: 'edit'; cid: string; id: number; content: string }
export interface RecallFrame { type: 'recall'; cid: string; id: number }
export type ReadFrame = { type: 'read'; peer: number; up_to: number } | { type: 'read'; group: number; up_to: number };
export type TypingFrame = { type: 'typing'; to: number } | { type: 'typing'; group: number };
export interface WatchFrame { type: 'presence'; watch: number[] }
export interface SyncFrame { type: 'sync'; after: number; limit: number }
export interface PingFrame { type: 'ping' }
export type ClientFrame = SendFrame | EditFrame | RecallFrame | ReadFrame | TypingFrame | WatchFrame | SyncFrame | PingFrame;

export interface Login {
  token: string;
  user_id: number;
  /** Unix seconds. */
  expires_at: number;
}

export interface Group { group_id: number; name: string; owner: number }

/** A group as its members see it (GET /api/v1/groups/{id}). */
export interface GroupInfo extends Group { member_count: number }

/** My own account: the only answer with an email in it. */
export interface Me { user_id: number; email: string; nickname: string }

/** What anyone may know of another user: never the email. */
export interface Profile { user_id: number; nickname: string }

/** A member's read pointer in a group: the id of the last message read, null before any read. */
export interface MemberRead { user_id: number; up_to: number | null }

/** One of my conversations, named from my side: `peer` (private) or `group`. */
export interface Conversation {
  peer?: number;
  group?: number;
  /** Its latest message in my inbox, null if none yet. */
  last: Message | null;
  /** Messages from others after `read_up_to`. */
  unread: number;
  read_up_to: number | null;
  /** Private only: the peer's read pointer (null if none, or if I block the peer). */
  peer_read_up_to?: number | null;
  /** Unix ms of the last activity. */
  updated_ts: number;
  [field: string]: unknown;
}

/** A page of my conversations; `next` is opaque: pass it back as it came (null: the last page). */
export interface ConversationPage { conversations: Conversation[]; next: string | null }

/** A page of one conversation's messages, newest first; `more`: older ones follow. */
export interface HistoryPage { messages: Message[]; more: boolean }

/** Where a message goes: one user or one group. */
export type Target = { to: number } | { group: number };

/** A conversation named from my side: the other user (my own id: notes to self) or a group. */
export type ConversationRef = { peer: number } | { group: number };

/** My edit or recall, committed: `seq` is its event's place in my inbox. */
export interface Ack { cid: string; id: number; seq: number; ts: number }

/** A send kept until its ack; `status` is 'failed' once the server refused it for good. */
export interface PendingSend {
  cid: string;
  content: string;
  to: number | null;
  group: number | null;
  /** Unix ms, when the application sent it; resends go out in this order. */
  createdAt: number;
  status: 'pending' | 'failed';
  error: string | null;
  /** Transmissions that got neither an ack nor an error (the connection went away meanwhile). */
  unanswered: number;
}

/** What a client keeps between runs: every seq up to `mark` and those in `above` were handed over. */
export interface StoredState {
  mark: number;
  above: number[];
  pending: PendingSend[];
}

export interface StateStore {
  load(): StoredState | null;
  save(state: StoredState): void;
}

export type ClientEvent =
  /** A connection attempt starts. */
  | { kind: 'connecting' }
  /** The WebSocket is open; a sync is on its way. */
  | { kind: 'connected' }
  /** Everything up to `upTo` has been handed over; sends flow. */
  | { kind: 'synced'; upTo: number }
  /** A message of my inbox, once per seq: pushed live, returned by a sync, or my own send acked. */
  | { kind: 'message'; message: Message; source: 'push' | 'sync' | 'ack' }
  /** An edit, recall, read, member or group event of my inbox, once per seq. `source` 'ack': my own edit
   * or recall answered on this connection (the server pushes the event only to my other connections). */
  | { kind: 'event'; event: InboxEvent; source: 'push' | 'sync' | 'ack' }
  /** An inbox entry of a kind this SDK does not know (it still takes its seq). */
  | { kind: 'inbox'; entry: InboxEntry }
  /** `from` is typing in one of my conversations (private: `conversation.peer` is `from`). No seq, best
   * effort, at most one per typing interval while it lasts: show it for a few seconds, and no longer once a
   * message from `from` arrives there. */
  | { kind: 'typing'; from: number; conversation: ConversationRef }
  /** Presence of the users I watch: all of them after every `watchPresence` and every reconnect, then
   * those whose `online` changed. */
  | { kind: 'presence'; users: Presence[] }
  /** My edit or recall the server refused (`forbidden` past its window, `not_found` ...). */
  | { kind: 'requestFailed'; cid: string; code: string; message: string }
  /** A send the server refused for good; it stays in the outbox as failed until retry/discard. */
  | { kind: 'sendFailed'; cid: string; code: string; message: string }
  /** Every `error` frame (for a send: `cid`; for a sync: null). */
  | { kind: 'error'; code: string; message: string; cid: string | null }
  /** The server is draining and closes after `afterMs`; the client comes back then. */
  | { kind: 'reconnectRequested'; afterMs: number }
  /** The connection closed (code null if it never opened); the next attempt is in `retryInMs`. */
  | { kind: 'disconnected'; code: number | null; reason: string; retryInMs: number }
  /** The outbox changed (a send was added, acked, failed, retried or discarded). */
  | { kind: 'outbox' }
  /** The token was refused and no new login could be had: the client stopped. */
  | { kind: 'sessionEnded'; reason: 'unauthorized' }
  /** A server frame of a type this SDK does not know, as received. */
  | { kind: 'frame'; frame: Record<string, unknown> };

export interface ReconnectPolicy {
  /** Ceiling of the first delay; each next attempt doubles it ("equal jitter": half to all of it). */
  firstDelayMs: number;
  maxDelayMs: number;
  /** A connection open this long resets the backoff. */
  stableAfterMs: number;
}

export interface ChatClientOptions {
  /** The server's base URL, e.g. `location.origin` or `http://127.0.0.1:8080`. */
  url: string;
  /** A login, or a function that logs in (called again whenever the token is refused). */
  credentials: Login | (() => Promise<Login>);
  /** Default: localStorage (key `imcluster.<host>.<user id>`) where it exists, else memory. */
  store?: StateStore;
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  reconnect?: Partial<ReconnectPolicy>;
  /** Entries per sync page (the server serves at most 500). Default 200. */
  syncLimit?: number;
  /** How long a gap in the seqs may last before a sync fills it. Default 500 ms. */
  gapGraceMs?: number;
  /** Wait after `rate_limited` / `unavailable` before sending again. Default 3000 ms. */
  retryTemporaryMs?: number;
  /** Sends transmitted and unanswered at most. Default 64. */
  maxInFlight?: number;
  /** A send transmitted this often without any answer fails as `unavailable`; null: never. Default 5. */
  maxUnanswered?: number | null;
  /** A connection attempt that has not opened after this long is given up. Default 10000 ms. */
  openTimeoutMs?: number;
  /** A `ping` frame this often; 0 turns it off. Default 25000 ms. */
  pingIntervalMs?: number;
  /** No frame at all for this long: the socket is taken for dead. Default 60000 ms. */
  deadAfterMs?: number;
  /** The inbox position is saved this long after it moves (sends are saved at once). Default 100 ms. */
  saveDelayMs?: number;
  /** At most one `typing` frame per conversation this often (the server forwards at most one per
   * `IM_TYPING_INTERVAL_SECONDS`, 3 s by default). Default 3000 ms. */
  typingIntervalMs?: number;
  /** Every frame sent ('out') and received ('in'), parsed. */
  trace?: (direction: 'in' | 'out', frame: Record<string, unknown>) => void;
  random?: () => number;
}
