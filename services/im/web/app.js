// imcluster browser client: plain ES module, no build step of its own. The protocol (send, ack, sync,
// reconnect, resend, edit, recall, read) is the SDK's (sdk.js, the build of sdk/js); this file is the
// chat around it.
//
// Delivery model: every message I send or receive, and every event about one (an edit, a recall, a
// read, a group change), has a number `seq` in my own gapless inbox. The SDK remembers (per login, in
// localStorage, in one write with the cached messages) the highest seq below which everything was
// handed over, and after a reload or reconnect asks for everything after it. Messages I send stay in
// its outbox (also in localStorage) until their `ack`, and are resent with the same `cid`.
//
// What the server knows better (unread counts, read pointers, the conversation list) is fetched over
// HTTP after every sync and kept up to date from the events in between. User text only ever reaches
// the page as textContent.
//
// Typing and presence are ephemeral: no seq, never stored. "typing…" shows for a few seconds after each
// typing frame; the peers of my private chats are watched for presence (the SDK watches them again after
// every reconnect), and what is known of them is forgotten while disconnected.

import { ChatClient, HttpApi } from './sdk.js';

const SYNC_PAGE = 200;
const CACHED_MESSAGES = 2_000; // per login, newest kept
const CONVERSATION_PAGES = 10; // of 100: the most recent 1000 conversations
const HISTORY_PAGE = 50; // messages fetched when a conversation is opened
const NOTICE_MS = { error: 10_000, info: 5_000 };
// A typist's frames come at most every IM_TYPING_INTERVAL_SECONDS (3 s by default): shown a little longer.
const TYPING_SHOWN_MS = 5_000;
const WATCHED_PEERS = 500; // the most a presence watch may name

const AUTH_KEY = 'im.auth';
const inboxKey = (uid) => `im.inbox.${uid}`;
const pendingKey = (uid) => `im.pending.${uid}`;

const $ = (id) => document.getElementById(id);

const http = new HttpApi(location.origin);

const state = {
  auth: null, // {token, userId, expiresAt, email}
  client: null, // the SDK's ChatClient for this login
  me: null, // {user_id, email, nickname}
  nicknames: new Map(), // user id -> nickname
  messages: new Map(), // message id -> {id, seq, from, to, group, content, cid, ts, edited, recalled}
  groups: new Map(), // group id -> {group_id, name, owner}: the groups I am in
  groupsLoaded: false, // until then a group missing from `groups` may be one I am in
  formerNames: new Map(), // group id -> its name when I left it (this page only: it is members' business)
  conversations: new Map(), // conversation key -> {unread, readUpTo, peerReadUpTo, updatedTs}
  members: new Map(), // group id -> member ids, for the group open
  blocked: new Set(), // user ids I block
  current: null, // conversation key: 'u:<user id>' or 'g:<group id>'
  editing: null, // the message (of mine) the compose box edits, or null
  readSent: new Map(), // conversation key -> the highest up_to this page sent
  typing: new Map(), // conversation key -> Map(user id -> until when it shows, unix ms)
  presence: new Map(), // user id -> {online, lastSeen}: the peers watched, while connected
  watched: '', // the ids last given to watchPresence, sorted and joined
};

// ---------------------------------------------------------------- storage

function load(key) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch (err) {
    console.warn('localStorage write failed', key, err);
  }
}

/** The SDK's state store: its position and the cached messages go in one write, so they never disagree. */
class BrowserStore {
  constructor(uid) {
    this.uid = uid;
  }

  load() {
    const inbox = load(inboxKey(this.uid));
    state.messages.clear();
    for (const m of inbox?.messages || []) state.messages.set(m.id, m);
    const pending = (load(pendingKey(this.uid)) || []).map((p) => ({ unanswered: p.transmits ?? 0, ...p }));
    if (!inbox || !Number.isInteger(inbox.mark)) return { mark: 0, above: [], pending };
    return { mark: inbox.mark, above: inbox.above || [], pending };
  }

  save(sdkState) {
    const newest = [...state.messages.values()].sort(bySeq).slice(-CACHED_MESSAGES);
    store(inboxKey(this.uid), { mark: sdkState.mark, above: sdkState.above, messages: newest });
    store(pendingKey(this.uid), sdkState.pending);
  }
}

// ---------------------------------------------------------------- conversations

function bySeq(a, b) {
  return (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.ts - b.ts || a.id - b.id;
}

const isSet = (value) => value !== null && value !== undefined;

/** The key of the conversation a message or an event belongs to, named from my side. */
function conversationOf(m) {
  if (isSet(m.group)) return `g:${m.group}`;
  const other = m.from === state.auth.userId ? m.to : m.from;
  return `u:${other}`;
}

function pendingConversation(p) {
  return isSet(p.group) ? `g:${p.group}` : `u:${p.to}`;
}

function parseKey(key) {
  const [kind, raw] = key.split(':');
  return { isGroup: kind === 'g', id: Number(raw) };
}

function conversation(key) {
  let c = state.conversations.get(key);
  if (!c) {
    c = { unread: 0, readUpTo: null, peerReadUpTo: null, updatedTs: 0 };
    state.conversations.set(key, c);
  }
  return c;
}

function touch(key, ts) {
  const c = conversation(key);
  c.updatedTs = Math.max(c.updatedTs, ts || 0);
}

function messagesOf(key) {
  return [...state.messages.values()].filter((m) => conversationOf(m) === key).sort(bySeq);
}

/** Whether message `m` is in the unread count of conversation `c`: from someone else, after my read
 * pointer, not recalled (as the server counts). */
function countsAsUnread(m, c) {
  return m.from !== state.auth.userId && m.id > (c.readUpTo ?? 0) && !m.recalled;
}

/** Messages from others after my read pointer, as far as this page holds them. */
function countUnread(key) {
  const c = conversation(key);
  return messagesOf(key).filter((m) => countsAsUnread(m, c)).length;
}

function outbox() {
  return state.client ? state.client.outbox() : [];
}

/** Keep one message of my inbox (a push, a sync page, a history page); true when it is new here. */
function ingest(message) {
  const m = {
    id: message.id,
    seq: message.seq,
    from: message.from,
    to: message.to ?? null,
    group: message.group ?? null,
    content: message.content,
    cid: message.cid ?? null,
    ts: message.ts,
    edited: isSet(message.edited_ts),
    recalled: message.recalled === true,
  };
  const known = state.messages.get(m.id);
  if (known) {
    if (m.recalled || m.edited) Object.assign(known, { content: m.content, edited: m.edited, recalled: m.recalled });
    return false;
  }
  state.messages.set(m.id, m);
  const key = conversationOf(m);
  touch(key, m.ts);
  wantNickname(m.from);
  if (!key.startsWith('g:')) wantNickname(parseKey(key).id);
  return true;
}

// ---------------------------------------------------------------- nicknames

const wanted = new Set();

function wantNickname(id) {
  if (!isSet(id) || state.nicknames.has(id) || wanted.has(id)) return;
  wanted.add(id);
  if (wanted.size === 1) setTimeout(fetchNicknames, 0); // one request per burst
}

async function fetchNicknames() {
  const token = state.auth?.token;
  const ids = [...wanted].slice(0, 200);
  if (!token || !ids.length) return;
  try {
    for (const profile of await http.users(token, ids)) state.nicknames.set(profile.user_id, profile.nickname);
  } catch (err) {
    console.warn('nicknames not loaded', err);
  }
  for (const id of ids) wanted.delete(id);
  if (wanted.size) setTimeout(fetchNicknames, 0);
  render();
}

function nickname(id) {
  if (id === state.auth.userId && state.me) return state.me.nickname;
  return state.nicknames.get(id) ?? `user ${id}`;
}

function userLabel(id) {
  return id === state.auth.userId ? 'You' : nickname(id);
}

function conversationTitle(key) {
  const { isGroup, id } = parseKey(key);
  if (isGroup) {
    const g = state.groups.get(id);
    if (g) return `# ${g.name}`;
    const name = state.formerNames.get(id) ?? `group ${id}`;
    return state.groupsLoaded ? `# ${name} (left)` : `# ${name}`;
  }
  return id === state.auth.userId ? 'Notes to self' : nickname(id);
}

// ---------------------------------------------------------------- what the server knows

/** My profile, my blocks, my groups and my conversations with their unread counts and read pointers. */
async function refreshAccount() {
  const token = state.auth?.token;
  if (!token) return;
  try {
    const [me, blocked, groups] = await Promise.all([http.me(token), http.blocked(token), http.groups(token)]);
    if (state.auth?.token !== token) return; // logged out meanwhile
    state.me = me;
    state.blocked = new Set(blocked);
    state.groups = new Map(groups.map((g) => [g.group_id, g]));
    state.groupsLoaded = true;
    await refreshConversations(token);
  } catch (err) {
    if (err.status === 401 && state.auth?.token === token) logout('Your session is no longer valid. Please log in again.');
  }
  render();
}

async function refreshConversations(token) {
  let cursor;
  for (let page = 0; page < CONVERSATION_PAGES; page += 1) {
    const { conversations, next } = await http.conversations(token, { limit: 100, cursor });
    if (state.auth?.token !== token) return;
    for (const c of conversations) merge(c);
    if (next === null) return;
    cursor = next;
  }
}

/** One conversation as the server saw it, merged with what arrived since: pointers only move forward. */
function merge(c) {
  const key = isSet(c.group) ? `g:${c.group}` : `u:${c.peer}`;
  if (c.last) ingest(c.last);
  touch(key, c.updated_ts);
  const mine = conversation(key);
  const serverRead = c.read_up_to ?? 0;
  mine.readUpTo = Math.max(mine.readUpTo ?? 0, serverRead) || null;
  if ((mine.readUpTo ?? 0) > serverRead) {
    mine.unread = countUnread(key); // I read more since
  } else {
    const since = messagesOf(key).filter((m) => m.seq > (c.last?.seq ?? 0) && m.from !== state.auth.userId && !m.recalled);
    mine.unread = c.unread + since.length;
  }
  if (isSet(c.peer)) {
    wantNickname(c.peer);
    const peerRead = c.peer_read_up_to ?? null; // null: no read yet, or I block the peer
    if (peerRead !== null) mine.peerReadUpTo = Math.max(mine.peerReadUpTo ?? 0, peerRead);
    else if (state.blocked.has(c.peer)) mine.peerReadUpTo = null;
  }
}

async function loadHistory(key) {
  const { isGroup, id } = parseKey(key);
  try {
    const page = await http.conversationMessages(state.auth.token, isGroup ? { group: id } : { peer: id },
      { limit: HISTORY_PAGE });
    for (const m of page.messages) ingest(m);
    render();
  } catch (err) {
    if (err.status !== 403 && err.status !== 404) console.warn('history not loaded', err);
  }
}

async function loadMembers(groupId) {
  try {
    const ids = await http.members(state.auth.token, groupId);
    state.members.set(groupId, ids);
    for (const id of ids) wantNickname(id);
  } catch {
    state.members.delete(groupId); // not a member (any more)
  }
  render();
}

// ---------------------------------------------------------------- the SDK's events

function onClientEvent(event) {
  switch (event.kind) {
    case 'connecting':
      setStatus('connecting');
      break;
    case 'connected':
      setStatus('online');
      state.readSent.clear(); // a read sent on the last connection may not have arrived
      break;
    case 'synced':
      refreshAccount();
      break;
    case 'disconnected':
      state.presence.clear(); // not known until the next snapshot
      setStatus('offline', `reconnecting in ${Math.ceil(event.retryInMs / 1000)} s`);
      if (event.code !== null && ![1000, 1001, 1006].includes(event.code) && event.reason) {
        notify(`closed_${event.code}`, `Connection closed: ${event.reason}`);
      }
      break;
    case 'reconnectRequested':
      setStatus('connecting', 'server is restarting');
      break;
    case 'message':
      onMessage(event.message, event.source);
      break;
    case 'event':
      onInboxEvent(event.event);
      break;
    case 'typing':
      onTyping(event.from, 'group' in event.conversation ? `g:${event.conversation.group}` : `u:${event.conversation.peer}`);
      break;
    case 'presence':
      onPresence(event.users);
      break;
    case 'error':
      notify(event.code, event.message || event.code);
      break;
    case 'sessionEnded':
      logout('Your session is no longer valid. Please log in again.');
      return;
    default:
      break; // kinds this page does not know ('inbox', 'frame', and any newer): ignored
  }
  render();
}

function onMessage(message, source) {
  if (source === 'push') state.typing.get(conversationOf(message))?.delete(message.from); // typed it
  if (!ingest(message) || source !== 'push' || message.from === state.auth.userId) return;
  const key = conversationOf(message);
  if (message.id > (conversation(key).readUpTo ?? 0)) conversation(key).unread += 1;
  if (isSet(message.group) && !state.groups.has(message.group)) refreshAccount();
}

function onInboxEvent(e) {
  const m = isSet(e.id) ? state.messages.get(e.id) : undefined;
  switch (e.type) {
    case 'edit':
      if (m) Object.assign(m, { content: e.content, edited: true });
      break;
    case 'recall':
      if (m) {
        const c = conversation(conversationOf(m));
        if (countsAsUnread(m, c) && c.unread > 0) c.unread -= 1; // a recalled message counts in no badge
        Object.assign(m, { content: '', recalled: true });
      }
      break;
    case 'read': {
      const key = isSet(e.group) ? `g:${e.group}` : `u:${e.peer}`;
      const c = conversation(key);
      if (e.by === state.auth.userId) {
        c.readUpTo = Math.max(c.readUpTo ?? 0, e.up_to);
        c.unread = countUnread(key);
      } else if (!isSet(e.group)) {
        c.peerReadUpTo = Math.max(c.peerReadUpTo ?? 0, e.up_to);
      }
      break;
    }
    case 'member':
      onMemberEvent(e);
      break;
    case 'group': {
      const g = state.groups.get(e.group);
      if (g) Object.assign(g, { name: e.name, owner: e.owner });
      touch(`g:${e.group}`, e.ts);
      break;
    }
    default:
      break;
  }
}

function onTyping(from, key) {
  if (!state.typing.has(key)) state.typing.set(key, new Map());
  state.typing.get(key).set(from, Date.now() + TYPING_SHOWN_MS);
  wantNickname(from);
  setTimeout(render, TYPING_SHOWN_MS + 50); // to take it away
}

function onPresence(users) {
  for (const p of users) {
    state.presence.set(p.user_id, { online: p.online, lastSeen: p.last_seen });
    if (!p.online) for (const typing of state.typing.values()) typing.delete(p.user_id); // gone mid-word
  }
}

/** Who is typing in a conversation now. */
function typists(key) {
  const until = state.typing.get(key);
  if (!until) return [];
  const now = Date.now();
  for (const [id, end] of until) if (end <= now) until.delete(id);
  return [...until.keys()];
}

function typingText(key) {
  const ids = typists(key);
  if (!ids.length) return '';
  if (!parseKey(key).isGroup) return 'typing…';
  const names = ids.map(nickname);
  if (names.length === 1) return `${names[0]} is typing…`;
  return names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : `${names.length} people are typing…`;
}

/** Watch the peers of my private chats, the most recent first, as many as one watch takes. */
function watchPeers(keys) {
  const peers = keys.map(parseKey).filter((k) => !k.isGroup && k.id !== state.auth.userId).map((k) => k.id)
    .slice(0, WATCHED_PEERS);
  const watched = [...peers].sort((a, b) => a - b).join(',');
  if (!state.client || watched === state.watched) return;
  state.watched = watched;
  state.client.watchPresence(peers);
}

function lastSeenText(p) {
  if (p.online) return 'online';
  return p.lastSeen === null ? 'offline' : `last seen ${formatTime(p.lastSeen)}`;
}

function onMemberEvent(e) {
  touch(`g:${e.group}`, e.ts);
  wantNickname(e.user);
  if (e.user === state.auth.userId && e.action !== 'joined') {
    forgetGroup(e.group);
    const name = state.formerNames.get(e.group) ?? `group ${e.group}`;
    if (e.action === 'removed') notify('removed', `${nickname(e.by)} removed you from # ${name}.`, 'info');
    return;
  }
  if (!state.groups.has(e.group)) refreshAccount(); // I joined it
  if (state.current === `g:${e.group}`) loadMembers(e.group);
}

function forgetGroup(groupId) {
  const g = state.groups.get(groupId);
  if (g) state.formerNames.set(groupId, g.name);
  state.groups.delete(groupId);
  state.members.delete(groupId);
}

// ---------------------------------------------------------------- actions

/** Tell the open conversation I am typing (the SDK sends at most one frame per interval). */
function sendTyping(key) {
  const { isGroup, id } = parseKey(key);
  if (isGroup || id !== state.auth.userId) state.client?.typing(isGroup ? { group: id } : { to: id });
}

function sendMessage(key, content) {
  const { isGroup, id } = parseKey(key);
  state.client.send(content, isGroup ? { group: id } : { to: id });
  render();
}

async function saveEdit(message, content) {
  try {
    await state.client.edit(message, content);
  } catch {
    /* the SDK's error event shows the refusal */
  }
  render();
}

async function recall(message) {
  try {
    await state.client.recall(message);
  } catch {
    /* shown by the error event */
  }
  render();
}

/** Tell the server I have read the open conversation up to its last message from someone else. */
function markRead(key) {
  if (document.visibilityState !== 'visible' || !state.client?.connected) return;
  const theirs = messagesOf(key).filter((m) => m.from !== state.auth.userId);
  const last = theirs[theirs.length - 1];
  if (!last || last.id <= (conversation(key).readUpTo ?? 0) || last.id <= (state.readSent.get(key) ?? 0)) return;
  const { isGroup, id } = parseKey(key);
  if (state.client.read(isGroup ? { group: id } : { peer: id }, last.id)) state.readSent.set(key, last.id);
}

/** A user id typed as such, or the user with that email address (an ApiError 404 if none). */
async function findUser(address) {
  const text = address.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const profile = await http.lookup(state.auth.token, text);
  state.nicknames.set(profile.user_id, profile.nickname);
  return profile.user_id;
}

/** Run a call for a form: its controls disabled meanwhile, a failure shown as a notice. */
async function withForm(form, what, call) {
  busy(form, true);
  try {
    await call();
    form.reset();
  } catch (err) {
    notify(err.code || 'error', `${what}: ${err.message}`);
  } finally {
    busy(form, false);
    render();
  }
}

function busy(form, on) {
  for (const control of form.elements) control.disabled = on;
}

async function act(what, call) {
  try {
    await call();
  } catch (err) {
    notify(err.code || 'error', `${what}: ${err.message}`);
  }
  render();
}

// ---------------------------------------------------------------- rendering

function setStatus(stateName, detail) {
  const status = $('connection-status');
  status.dataset.state = stateName;
  status.textContent = detail ? `${stateName} (${detail})` : stateName;
}

function notify(code, message, kind = 'error') {
  const box = $('notices');
  const close = el('button', { type: 'button', class: 'link', textContent: 'Dismiss' });
  const item = el('div', { class: `notice ${kind}`, testid: 'notice', data: { code } },
    el('span', { textContent: message }), close);
  close.addEventListener('click', () => item.remove());
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), NOTICE_MS[kind] ?? NOTICE_MS.error);
}

function timeElement(ts) {
  return el('time', { dateTime: ts ? new Date(ts).toISOString() : '', textContent: formatTime(ts) });
}

function formatTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** An element with properties (textContent for text: never HTML), dataset entries and children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'data') Object.assign(node.dataset, v);
    else if (k === 'class') node.className = v;
    else node[k] = v;
  }
  node.append(...children.filter(isSet));
  return node;
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => { // one render per burst of frames, also in background tabs (no rAF there)
    renderQueued = false;
    if (state.auth) renderApp();
  }, 0);
}

function renderApp() {
  $('my-nickname').textContent = state.me?.nickname ?? '';
  watchPeers(renderConversations());
  renderChat();
}

function unreadBadge(key) {
  const n = conversation(key).unread;
  if (!n || key === state.current) return null;
  return el('span', { class: 'badge', testid: 'unread', textContent: String(n), title: `${n} unread` });
}

function presenceDot(key) {
  const { isGroup, id } = parseKey(key);
  const p = isGroup ? undefined : state.presence.get(id);
  if (!p) return null;
  return el('span', { class: 'presence-dot', testid: 'presence-dot', data: { online: String(p.online) }, title: lastSeenText(p) });
}

function preview(m) {
  if (!m) return '';
  const text = m.recalled ? 'message recalled' : m.content;
  return isSet(m.group) ? `${userLabel(m.from)}: ${text}` : text;
}

function renderConversations() {
  const latest = new Map(); // key -> {ts, last message or pending send}
  const consider = (key, ts, item) => {
    const seen = latest.get(key);
    if (!seen || ts >= seen.ts) latest.set(key, { ts, item });
  };
  for (const [key, c] of state.conversations) consider(key, c.updatedTs, null);
  for (const g of state.groups.values()) consider(`g:${g.group_id}`, 0, null);
  for (const m of state.messages.values()) consider(conversationOf(m), m.ts, m);
  for (const p of outbox()) consider(pendingConversation(p), p.createdAt, { ...p, from: state.auth.userId });
  const keys = [...latest.keys()].sort((a, b) => latest.get(b).ts - latest.get(a).ts);
  const lastOf = (key) => [...state.messages.values()].filter((m) => conversationOf(m) === key)
    .reduce((a, b) => (a && bySeq(a, b) > 0 ? a : b), null);
  $('conversation-list').replaceChildren(...keys.map((key) => {
    const shown = latest.get(key).item ?? lastOf(key);
    const typing = typingText(key);
    const button = el('button', {
      type: 'button',
      class: 'item',
      testid: 'conversation-item',
      data: { conversation: key },
      onclick: () => openConversation(key),
    },
    el('span', { class: 'title' }, presenceDot(key), conversationTitle(key)),
    typing ? el('span', { class: 'preview typing', textContent: typing })
      : el('span', { class: 'preview', textContent: preview(shown) }),
    unreadBadge(key));
    if (key === state.current) button.setAttribute('aria-current', 'true');
    return el('li', {}, button);
  }));
  $('conversations-empty').hidden = keys.length > 0;
  return keys;
}

function renderChat() {
  const key = state.current;
  const list = $('message-list');
  $('chat-empty').hidden = key !== null;
  if (key === null) {
    $('chat-title').textContent = 'Pick a chat';
    for (const id of ['compose-form', 'group-panel', 'block-toggle', 'chat-closed', 'chat-presence']) $(id).hidden = true;
    $('typing-indicator').textContent = '';
    list.replaceChildren();
    return;
  }
  const { isGroup, id } = parseKey(key);
  const c = conversation(key);
  $('chat-title').textContent = conversationTitle(key);
  renderPresence(isGroup ? undefined : state.presence.get(id));
  $('typing-indicator').textContent = typingText(key);
  const closed = isGroup && state.groupsLoaded && !state.groups.has(id);
  $('compose-form').hidden = closed;
  $('chat-closed').hidden = !closed;
  $('chat-closed').textContent = closed ? 'You are no longer a member of this group.' : '';
  renderBlockToggle(isGroup || id === state.auth.userId ? null : id);
  renderGroupPanel(isGroup ? state.groups.get(id) ?? null : null);
  renderCompose();

  const waiting = outbox().filter((p) => pendingConversation(p) === key).sort((a, b) => a.createdAt - b.createdAt);
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(
    ...messagesOf(key).map((m) => messageItem(m, !isGroup && (c.peerReadUpTo ?? 0) >= m.id)),
    ...waiting.map(pendingItem),
  );
  if (nearBottom || waiting.length) list.scrollTop = list.scrollHeight;
  markRead(key);
}

function renderPresence(p) {
  const line = $('chat-presence');
  line.hidden = !p;
  if (!p) return;
  line.textContent = lastSeenText(p);
  line.dataset.online = String(p.online);
}

function renderBlockToggle(peer) {
  const button = $('block-toggle');
  button.hidden = peer === null;
  if (peer === null) return;
  const blocked = state.blocked.has(peer);
  button.textContent = blocked ? 'Unblock' : 'Block';
  button.dataset.blocked = String(blocked);
}

function renderGroupPanel(group) {
  const panel = $('group-panel');
  panel.hidden = group === null;
  if (group === null) return;
  const mine = group.owner === state.auth.userId;
  for (const form of panel.querySelectorAll('[data-owner-only]')) form.hidden = !mine;
  const ids = state.members.get(group.group_id) ?? [];
  $('member-list').replaceChildren(...ids.map((uid) => el('li', { class: 'member', testid: 'member', data: { userId: String(uid) } },
    el('span', { class: 'name', testid: 'member-name', textContent: userLabel(uid) }),
    uid === group.owner ? el('span', { class: 'tag', testid: 'member-owner', textContent: 'owner' }) : null,
    mine && uid !== state.auth.userId ? memberActions(group.group_id, uid) : null)));
}

/** The owner's controls for another member: hand over, remove. */
function memberActions(groupId, uid) {
  const button = (testid, text, failure, call) => el('button', {
    type: 'button', class: 'link', testid, textContent: text, onclick: () => act(failure, call),
  });
  return el('span', { class: 'member-actions' },
    button('member-owner-make', 'Make owner', `Could not hand over to ${nickname(uid)}`, async () => {
      state.groups.set(groupId, await http.handOver(state.auth.token, groupId, uid));
    }),
    button('member-remove', 'Remove', `Could not remove ${nickname(uid)}`, async () => {
      await http.removeMember(state.auth.token, groupId, uid);
      await loadMembers(groupId);
    }));
}

function renderCompose() {
  const editing = state.editing;
  $('edit-cancel').hidden = editing === null;
  $('compose-send').textContent = editing === null ? 'Send' : 'Save';
  $('compose-form').classList.toggle('editing', editing !== null);
}

const STATUS_TEXT = { pending: 'sending…', sent: '✓ sent', read: '✓✓ read', failed: 'not sent' };

function messageItem(m, readByPeer) {
  const mine = m.from === state.auth.userId;
  const status = mine ? 'sent' : 'received';
  const tick = readByPeer ? 'read' : status;
  const meta = el('div', { class: 'meta' },
    el('span', { class: 'sender', testid: 'message-sender', textContent: userLabel(m.from) }),
    timeElement(m.ts),
    m.edited && !m.recalled ? el('span', { class: 'edited', testid: 'message-edited', textContent: 'edited' }) : null,
    mine ? el('span', { class: `state ${tick}`, testid: 'message-status', textContent: STATUS_TEXT[tick] }) : null);
  const body = el('p', {
    class: m.recalled ? 'content recalled' : 'content',
    testid: 'message-content',
    textContent: m.recalled ? 'message recalled' : m.content,
  });
  const data = {
    id: String(m.id), seq: String(m.seq), from: String(m.from), cid: m.cid || '', status,
    read: String(readByPeer), edited: String(m.edited), recalled: String(m.recalled),
  };
  const item = el('li', { class: `message ${mine ? 'mine' : 'theirs'}`, testid: 'message', data }, meta, body);
  if (mine && !m.recalled) {
    item.append(el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'link', testid: 'message-edit', textContent: 'Edit', onclick: () => startEdit(m) }),
      el('button', { type: 'button', class: 'link', testid: 'message-recall', textContent: 'Recall', onclick: () => recall(m) })));
  }
  return item;
}

function pendingItem(p) {
  const meta = el('div', { class: 'meta' },
    el('span', { class: 'sender', testid: 'message-sender', textContent: 'You' }),
    timeElement(p.createdAt),
    el('span', { class: `state ${p.status}`, testid: 'message-status', textContent: STATUS_TEXT[p.status] }));
  const body = el('p', { class: 'content', testid: 'message-content', textContent: p.content });
  const data = { cid: p.cid, from: String(state.auth.userId), status: p.status };
  const item = el('li', { class: `message mine ${p.status}`, testid: 'message', data }, meta, body);
  if (p.status === 'failed') {
    item.append(el('div', { class: 'failure' },
      el('span', { class: 'error', testid: 'message-error', textContent: p.error || 'not sent' }),
      el('button', { type: 'button', class: 'link', testid: 'message-retry', textContent: 'Retry', onclick: () => retry(p) }),
      el('button', { type: 'button', class: 'link', testid: 'message-discard', textContent: 'Discard', onclick: () => discard(p) })));
  }
  return item;
}

function retry(p) {
  state.client.retry(p.cid);
  render();
}

function discard(p) {
  state.client.discard(p.cid);
  render();
}

function startEdit(m) {
  state.editing = m;
  const input = $('compose-input');
  input.value = m.content;
  input.focus();
  render();
}

function stopEdit() {
  state.editing = null;
  $('compose-input').value = '';
  render();
}

function openConversation(key) {
  if (state.current !== key) state.editing = null;
  state.current = key;
  const { isGroup, id } = parseKey(key);
  if (!isGroup) wantNickname(id);
  if (isGroup && state.groups.has(id)) {
    $('rename-input').value = state.groups.get(id).name;
    loadMembers(id);
  }
  loadHistory(key);
  render();
  $('compose-input').focus();
}

// ---------------------------------------------------------------- login state

function showView() {
  const signedIn = state.auth !== null;
  $('auth-view').hidden = signedIn;
  $('app-view').hidden = !signedIn;
  $('me').hidden = !signedIn;
  if (signedIn) $('my-user-id').textContent = String(state.auth.userId);
  document.title = signedIn ? `imcluster chat — user ${state.auth.userId}` : 'imcluster chat';
}

function signIn(auth) {
  state.auth = auth;
  store(AUTH_KEY, auth);
  state.current = null;
  state.client = new ChatClient({
    url: location.origin,
    credentials: { token: auth.token, user_id: auth.userId, expires_at: auth.expiresAt },
    store: new BrowserStore(auth.userId),
    syncLimit: SYNC_PAGE,
  });
  state.client.on(onClientEvent);
  showView();
  render();
  state.client.start();
  refreshAccount();
}

function logout(reason) {
  const uid = state.auth?.userId;
  state.auth = null;
  state.client?.close();
  state.client = null;
  setStatus('offline');
  if (uid !== undefined) {
    store(AUTH_KEY, null);
    store(inboxKey(uid), null); // a shared computer must not keep someone else's chats
    store(pendingKey(uid), null);
  }
  for (const map of [state.messages, state.groups, state.conversations, state.members, state.nicknames, state.readSent,
    state.formerNames, state.typing, state.presence]) {
    map.clear();
  }
  Object.assign(state, { me: null, blocked: new Set(), current: null, editing: null, groupsLoaded: false, watched: '' });
  showView();
  setAuthMessage(reason || '');
}

function setAuthMessage(text, isError = false) {
  const message = $('auth-message');
  message.textContent = text;
  message.classList.toggle('error', isError);
}

async function logIn(email, password) {
  const data = await http.login(email, password);
  signIn({ token: data.token, userId: data.user_id, expiresAt: data.expires_at, email });
}

// ---------------------------------------------------------------- wiring

function onSubmit(id, handler) {
  $(id).addEventListener('submit', (event) => {
    event.preventDefault();
    handler(event.currentTarget);
  });
}

function currentGroupId() {
  const key = state.current;
  return key && parseKey(key).isGroup ? parseKey(key).id : null;
}

function setup() {
  onSubmit('login-form', async (form) => {
    const email = form.email.value.trim();
    busy(form, true);
    setAuthMessage('Logging in…');
    try {
      await logIn(email, form.password.value);
      form.reset();
      setAuthMessage('');
    } catch (err) {
      setAuthMessage(err.status === 401 ? 'Wrong email or password.' : err.message, true);
    } finally {
      busy(form, false);
    }
  });

  onSubmit('register-form', async (form) => {
    const email = form.email.value.trim();
    const password = form.password.value;
    busy(form, true);
    setAuthMessage('Creating your account…');
    try {
      await http.register(email, password, form.nickname.value.trim());
      await logIn(email, password);
      form.reset();
      setAuthMessage('');
      notify('registered', 'Welcome! Others can start a chat with you by your email address.', 'info');
    } catch (err) {
      setAuthMessage(err.status === 409 ? 'That email is already registered; log in instead.' : err.message, true);
    } finally {
      busy(form, false);
    }
  });

  $('logout').addEventListener('click', () => logout('You are logged out.'));

  onSubmit('open-chat-form', (form) => withForm(form, 'Could not start the chat', async () => {
    openConversation(`u:${await findUser($('open-chat-address').value)}`);
  }));

  onSubmit('create-group-form', (form) => withForm(form, 'Could not create the group', async () => {
    const group = await http.createGroup(state.auth.token, $('create-group-name').value.trim());
    state.groups.set(group.group_id, group);
    touch(`g:${group.group_id}`, Date.now());
    openConversation(`g:${group.group_id}`);
  }));

  onSubmit('add-member-form', (form) => withForm(form, 'Could not add the member', async () => {
    const groupId = currentGroupId();
    await http.addMember(state.auth.token, groupId, await findUser($('add-member-address').value));
    await loadMembers(groupId);
  }));

  onSubmit('rename-form', async (form) => {
    const groupId = currentGroupId();
    const name = $('rename-input').value.trim();
    await withForm(form, 'Could not rename the group', async () => {
      state.groups.set(groupId, await http.renameGroup(state.auth.token, groupId, name));
    });
    $('rename-input').value = state.groups.get(groupId)?.name ?? '';
  });

  $('leave-group').addEventListener('click', () => {
    const groupId = currentGroupId();
    act('Could not leave the group', async () => {
      await http.removeMember(state.auth.token, groupId, state.auth.userId);
      forgetGroup(groupId);
    });
  });

  $('block-toggle').addEventListener('click', () => {
    const peer = parseKey(state.current).id;
    const blocked = state.blocked.has(peer);
    act(blocked ? 'Could not unblock' : 'Could not block', async () => {
      await (blocked ? http.unblock(state.auth.token, peer) : http.block(state.auth.token, peer));
      if (blocked) state.blocked.delete(peer);
      else state.blocked.add(peer);
    });
  });

  const input = $('compose-input');
  onSubmit('compose-form', () => {
    const content = input.value;
    if (!content.trim() || !state.current) return;
    if (state.editing !== null) {
      const message = state.editing;
      stopEdit();
      if (content !== message.content) saveEdit(message, content);
    } else {
      input.value = '';
      sendMessage(state.current, content);
    }
    input.focus();
  });
  $('edit-cancel').addEventListener('click', stopEdit);
  input.addEventListener('input', () => {
    if (state.current && state.editing === null && input.value.trim()) sendTyping(state.current);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('compose-form').requestSubmit();
    } else if (event.key === 'Escape' && state.editing !== null) {
      stopEdit();
    }
  });

  document.addEventListener('visibilitychange', render); // reads are sent when the page is seen
  window.addEventListener('pagehide', () => state.client?.saveNow());
  window.addEventListener('online', () => state.client?.reconnectNow());
  window.addEventListener('storage', (event) => {
    if (event.key === AUTH_KEY && event.newValue === null && state.auth) logout('You logged out in another tab.');
  });

  const saved = load(AUTH_KEY);
  if (saved && saved.token && Number.isInteger(saved.userId)) signIn(saved);
  else showView();
}

setup();
