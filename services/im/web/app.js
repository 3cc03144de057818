// imcluster browser client: plain ES module, no build step, talks the protocol of docs/protocol.md.
//
// Delivery model: every message I send or receive has a number `seq` in my own gapless inbox. The
// client remembers (per login, in localStorage) the highest seq below which it has seen everything,
// and after a reload or reconnect asks the server for everything after it with `sync`. Messages it
// sends stay "pending" (also in localStorage) until their `ack`, and are resent with the same `cid`
// after a reconnect; the server recognises a resent cid and stores it once.

const SYNC_PAGE = 200;
const PING_EVERY_MS = 25_000;
const DEAD_AFTER_MS = 2 * PING_EVERY_MS + 10_000; // no frame at all for this long: the socket is gone
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const RETRY_TEMPORARY_MS = 3_000; // after `rate_limited` / `unavailable` for one of my messages
const CACHED_MESSAGES = 2_000; // per login, newest kept
const STABLE_AFTER_MS = 5_000; // a connection open this long resets the backoff
const MAX_TRANSMITS = 5; // a message sent this often without any answer is given up (user can retry)
const NOTICE_MS = { error: 10_000, info: 5_000 };
const TEMPORARY_CODES = new Set(['rate_limited', 'unavailable']);
const TOKEN_EXPIRED_CLOSE = 4001;
const MESSAGE_TOO_BIG_CLOSE = 1009;

const AUTH_KEY = 'im.auth';
const inboxKey = (uid) => `im.inbox.${uid}`;
const pendingKey = (uid) => `im.pending.${uid}`;

const $ = (id) => document.getElementById(id);

const state = {
  auth: null, // {token, userId, expiresAt, email}
  messages: new Map(), // message id -> {id, seq, from, to, group, content, cid, ts}
  mark: 0, // every seq <= mark has been seen
  seenAbove: new Set(), // seqs > mark seen so far (closing a gap advances mark)
  pending: new Map(), // cid -> {cid, to, group, content, createdAt, status: 'pending'|'failed', error}
  groups: new Map(), // group id -> {group_id, name, owner}
  current: null, // {kind: 'user'|'group', id}
  unread: new Map(), // conversation key -> count
};

const conn = {
  ws: null,
  attempt: 0,
  serverDelayMs: null, // from a `reconnect` frame: wins over the backoff once
  reconnectTimer: null,
  pingTimer: null,
  retryTimer: null,
  stableTimer: null,
  inFlight: new Map(), // cid -> frame length, sent on this socket and not answered yet
  lastFrameAt: 0,
  syncing: false,
  syncCursor: 0,
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

let saveTimer = null;
function scheduleSave() {
  if (saveTimer === null) saveTimer = setTimeout(saveNow, 100);
}

function saveNow() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (!state.auth) return;
  const uid = state.auth.userId;
  const newest = [...state.messages.values()].sort(bySeq).slice(-CACHED_MESSAGES);
  // Cache and mark go in one write so they can never disagree.
  store(inboxKey(uid), { mark: state.mark, messages: newest });
  store(pendingKey(uid), [...state.pending.values()]);
}

function restoreLogin() {
  const uid = state.auth.userId;
  const inbox = load(inboxKey(uid));
  state.messages.clear();
  state.seenAbove.clear();
  state.mark = 0;
  if (inbox && Number.isInteger(inbox.mark)) {
    state.mark = inbox.mark;
    for (const m of inbox.messages || []) state.messages.set(m.id, m);
  }
  state.pending.clear();
  for (const p of load(pendingKey(uid)) || []) state.pending.set(p.cid, p);
}

// ---------------------------------------------------------------- HTTP

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (state.auth) headers.Authorization = `Bearer ${state.auth.token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'unavailable', 'The server cannot be reached.');
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `${response.status} ${response.statusText}`);
  }
  return data || {};
}

// ---------------------------------------------------------------- messages and sequence numbers

function bySeq(a, b) {
  return (a.seq ?? Infinity) - (b.seq ?? Infinity) || a.ts - b.ts || a.id - b.id;
}

function conversationOf(m) {
  if (m.group !== null && m.group !== undefined) return `g:${m.group}`;
  const other = m.from === state.auth.userId ? m.to : m.from;
  return `u:${other}`;
}

function pendingConversation(p) {
  return p.group !== null && p.group !== undefined ? `g:${p.group}` : `u:${p.to}`;
}

function currentKey() {
  if (!state.current) return null;
  return `${state.current.kind === 'group' ? 'g' : 'u'}:${state.current.id}`;
}

function noteSeq(seq) {
  if (!Number.isInteger(seq) || seq <= state.mark) return;
  state.seenAbove.add(seq);
  while (state.seenAbove.delete(state.mark + 1)) state.mark += 1;
}

/** Take one message from a `msg` frame, a `sync` page or an `ack`; returns true when it is new. */
function ingest(frame) {
  const m = {
    id: frame.id,
    seq: frame.seq,
    from: frame.from,
    to: frame.to ?? null,
    group: frame.group ?? null,
    content: frame.content,
    cid: frame.cid ?? null,
    ts: frame.ts,
  };
  noteSeq(m.seq);
  if (m.from === state.auth.userId && m.cid && state.pending.has(m.cid)) {
    state.pending.delete(m.cid); // its ack was lost with the connection; the server has it
  }
  if (state.messages.has(m.id)) return false;
  state.messages.set(m.id, m);
  if (m.group !== null && !state.groups.has(m.group)) refreshGroups();
  return true;
}

function newCid() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes); // crypto.randomUUID needs a secure context; this does not
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sendMessage(target, content) {
  const p = {
    cid: newCid(),
    to: target.kind === 'user' ? target.id : null,
    group: target.kind === 'group' ? target.id : null,
    content,
    createdAt: Date.now(),
    status: 'pending',
    error: null,
  };
  state.pending.set(p.cid, p);
  saveNow();
  if (canSend()) transmit(p);
  render();
}

function canSend() {
  return conn.ws !== null && conn.ws.readyState === WebSocket.OPEN && !conn.syncing;
}

function transmit(p) {
  p.transmits = (p.transmits || 0) + 1;
  if (p.transmits > MAX_TRANSMITS) {
    fail(p, 'unavailable', 'the server never answered; try again');
    return;
  }
  const frame = { type: 'send', cid: p.cid, content: p.content };
  if (p.group !== null) frame.group = p.group;
  else frame.to = p.to;
  const text = JSON.stringify(frame);
  conn.inFlight.set(p.cid, text.length);
  conn.ws.send(text);
}

function fail(p, code, message) {
  p.status = 'failed';
  p.error = `${code}: ${message}`;
  conn.inFlight.delete(p.cid);
  scheduleSave();
  render();
}

function flushPending() {
  if (!canSend()) return;
  const waiting = [...state.pending.values()].filter((p) => p.status === 'pending' && !conn.inFlight.has(p.cid));
  waiting.sort((a, b) => a.createdAt - b.createdAt);
  for (const p of waiting) transmit(p);
}

// ---------------------------------------------------------------- WebSocket

function connect() {
  clearTimeout(conn.reconnectTimer);
  conn.reconnectTimer = null;
  if (!state.auth || conn.ws) return;
  // An expired token is found out by the server (the handshake fails), not by this machine's clock.
  setStatus('connecting');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const sock = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(state.auth.token)}`);
  let opened = false;
  conn.ws = sock;

  sock.addEventListener('open', () => {
    if (conn.ws !== sock) return;
    opened = true;
    conn.stableTimer = setTimeout(() => { conn.attempt = 0; }, STABLE_AFTER_MS);
    conn.lastFrameAt = Date.now();
    setStatus('online');
    conn.pingTimer = setInterval(() => heartbeat(sock), PING_EVERY_MS);
    startSync();
    refreshGroups();
  });

  sock.addEventListener('message', (event) => {
    if (conn.ws !== sock) return;
    conn.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      notify('bad_frame', 'The server sent something that is not JSON.');
      return;
    }
    handleFrame(frame);
  });

  sock.addEventListener('close', (event) => {
    if (conn.ws !== sock) return;
    const unanswered = new Map(conn.inFlight);
    console.info('connection closed', event.code, event.reason);
    detach();
    if (!state.auth) return;
    if (event.code === TOKEN_EXPIRED_CLOSE) {
      logout('Your session has expired. Please log in again.');
      return;
    }
    if (!opened) {
      checkTokenThenReconnect();
      return;
    }
    if (event.code === MESSAGE_TOO_BIG_CLOSE) blameLargest(unanswered, event.reason);
    if (event.code !== 1000 && event.code !== 1001 && event.code !== 1006 && event.reason) {
      notify(`closed_${event.code}`, `Connection closed: ${event.reason}`);
    }
    scheduleReconnect();
  });
}

/** The server dropped us for an oversized frame: the largest unanswered message must not be resent. */
function blameLargest(unanswered, reason) {
  let largest = null;
  for (const [cid, size] of unanswered) {
    if (state.pending.has(cid) && (largest === null || size > unanswered.get(largest))) largest = cid;
  }
  if (largest !== null) fail(state.pending.get(largest), 'too_large', reason || 'the message is too large');
}

function detach() {
  const sock = conn.ws;
  conn.ws = null;
  conn.syncing = false;
  conn.inFlight.clear();
  clearTimeout(conn.stableTimer);
  clearInterval(conn.pingTimer);
  conn.pingTimer = null;
  setStatus('offline');
  if (sock && sock.readyState <= WebSocket.OPEN) {
    try {
      sock.close();
    } catch {
      /* already closing */
    }
  }
}

function heartbeat(sock) {
  if (conn.ws !== sock) return;
  if (Date.now() - conn.lastFrameAt > DEAD_AFTER_MS) {
    detach(); // a half-open TCP connection never fires `close` by itself
    scheduleReconnect();
    return;
  }
  sock.send(JSON.stringify({ type: 'ping' }));
}

function scheduleReconnect() {
  if (!state.auth || conn.ws || conn.reconnectTimer) return;
  let delay;
  if (conn.serverDelayMs !== null) {
    delay = conn.serverDelayMs;
    conn.serverDelayMs = null;
  } else {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** conn.attempt);
    delay = ceiling / 2 + Math.random() * (ceiling / 2); // jitter spreads a herd of clients out
  }
  conn.attempt += 1;
  setStatus('offline', `reconnecting in ${Math.ceil(delay / 1000)} s`);
  conn.reconnectTimer = setTimeout(connect, delay);
}

/** The handshake failed: find out whether the token is the reason before retrying. */
async function checkTokenThenReconnect() {
  const token = state.auth.token;
  try {
    await api('GET', '/api/v1/groups');
  } catch (err) {
    if (state.auth?.token !== token) return;
    if (err.status === 401) {
      logout('Your session is no longer valid. Please log in again.');
      return;
    }
  }
  scheduleReconnect();
}

function startSync() {
  conn.syncing = true;
  conn.syncCursor = state.mark;
  conn.ws.send(JSON.stringify({ type: 'sync', after: conn.syncCursor, limit: SYNC_PAGE }));
}

function handleFrame(frame) {
  switch (frame.type) {
    case 'msg': {
      if (ingest(frame)) {
        const key = conversationOf(frame);
        if (key !== currentKey()) state.unread.set(key, (state.unread.get(key) || 0) + 1);
      }
      break;
    }
    case 'ack': {
      const p = state.pending.get(frame.cid);
      conn.inFlight.delete(frame.cid);
      if (p) {
        state.pending.delete(frame.cid);
        ingest({ ...frame, from: state.auth.userId, to: p.to, group: p.group, content: p.content });
      } else {
        noteSeq(frame.seq);
      }
      break;
    }
    case 'sync': {
      const page = Array.isArray(frame.messages) ? frame.messages : [];
      const before = conn.syncCursor;
      for (const m of page) {
        ingest(m);
        if (m.seq > conn.syncCursor) conn.syncCursor = m.seq;
      }
      if (frame.more && conn.syncCursor > before) {
        conn.ws.send(JSON.stringify({ type: 'sync', after: conn.syncCursor, limit: SYNC_PAGE }));
      } else {
        // The server has told us everything up to the cursor, gaps included.
        for (let s = state.mark + 1; s <= conn.syncCursor; s += 1) noteSeq(s);
        conn.syncing = false;
        flushPending();
      }
      break;
    }
    case 'error':
      handleError(frame);
      break;
    case 'reconnect':
      conn.serverDelayMs = Math.max(0, Number(frame.after_ms) || 0);
      setStatus('connecting', 'server is restarting');
      break;
    case 'pong':
      break;
    default:
      console.debug('ignored frame', frame);
  }
  scheduleSave();
  render();
}

function handleError(frame) {
  const p = frame.cid ? state.pending.get(frame.cid) : null;
  notify(frame.code, frame.message || frame.code);
  if (!p) return;
  conn.inFlight.delete(p.cid);
  if (TEMPORARY_CODES.has(frame.code)) {
    clearTimeout(conn.retryTimer);
    conn.retryTimer = setTimeout(flushPending, RETRY_TEMPORARY_MS);
    return;
  }
  fail(p, frame.code, frame.message || '');
}

// ---------------------------------------------------------------- groups

async function refreshGroups() {
  if (!state.auth) return;
  const token = state.auth.token;
  try {
    const data = await api('GET', '/api/v1/groups');
    if (state.auth?.token !== token) return; // logged out meanwhile
    state.groups.clear();
    for (const g of data.groups || []) state.groups.set(g.group_id, g);
    render();
  } catch (err) {
    if (err.status === 401 && state.auth?.token === token) {
      logout('Your session is no longer valid. Please log in again.');
    }
  }
}

async function loadMembers(groupId) {
  const out = $('group-members');
  out.hidden = true;
  try {
    const data = await api('GET', `/api/v1/groups/${groupId}/members`);
    const raw = Array.isArray(data) ? data : data.members || [];
    const ids = raw.map((m) => (typeof m === 'object' ? m.user_id ?? m.id : m));
    if (state.current?.kind !== 'group' || state.current.id !== groupId) return;
    out.textContent = `Members: ${ids.join(', ')}`;
    out.hidden = false;
  } catch {
    /* optional detail: the chat works without it */
  }
}

// ---------------------------------------------------------------- rendering

function setStatus(stateName, detail) {
  const el = $('connection-status');
  el.dataset.state = stateName;
  el.textContent = detail ? `${stateName} (${detail})` : stateName;
}

function notify(code, message, kind = 'error') {
  const box = $('notices');
  const item = document.createElement('div');
  item.className = `notice ${kind}`;
  item.dataset.testid = 'notice';
  item.dataset.code = code;
  const text = document.createElement('span');
  text.textContent = message;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'link';
  close.textContent = 'Dismiss';
  close.addEventListener('click', () => item.remove());
  item.append(text, close);
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), NOTICE_MS[kind] ?? NOTICE_MS.error);
}

function userLabel(id) {
  return id === state.auth.userId ? 'You' : `User ${id}`;
}

function conversationTitle(key) {
  const [kind, raw] = key.split(':');
  const id = Number(raw);
  if (kind === 'g') {
    const g = state.groups.get(id);
    return g ? `# ${g.name}` : `Group ${id}`;
  }
  return id === state.auth.userId ? 'Notes to self' : `User ${id}`;
}

function formatTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'data') Object.assign(node.dataset, v);
    else if (k === 'class') node.className = v;
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
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
  renderGroups();
  renderConversations();
  renderChat();
}

function renderGroups() {
  const list = $('group-list');
  const groups = [...state.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(...groups.map((g) => {
    const key = `g:${g.group_id}`;
    const button = el('button', {
      type: 'button',
      class: 'item',
      testid: 'group-item',
      data: { groupId: String(g.group_id) },
      onclick: () => openConversation({ kind: 'group', id: g.group_id }),
    }, el('span', { class: 'title', textContent: `# ${g.name}` }), unreadBadge(key));
    if (key === currentKey()) button.setAttribute('aria-current', 'true');
    return el('li', {}, button);
  }));
}

function unreadBadge(key) {
  const n = state.unread.get(key) || 0;
  if (!n) return null;
  return el('span', { class: 'badge', testid: 'unread', textContent: String(n), title: `${n} unread` });
}

function renderConversations() {
  const latest = new Map(); // key -> {ts, preview}
  const consider = (key, ts, preview) => {
    const seen = latest.get(key);
    if (!seen || ts >= seen.ts) latest.set(key, { ts, preview });
  };
  for (const m of state.messages.values()) consider(conversationOf(m), m.ts, m.content);
  for (const p of state.pending.values()) consider(pendingConversation(p), p.createdAt, p.content);
  const keys = [...latest.keys()];
  keys.sort((a, b) => latest.get(b).ts - latest.get(a).ts);
  const list = $('conversation-list');
  list.replaceChildren(...keys.map((key) => {
    const [kind, raw] = key.split(':');
    const button = el('button', {
      type: 'button',
      class: 'item',
      testid: 'conversation-item',
      data: { conversation: key },
      onclick: () => openConversation({ kind: kind === 'g' ? 'group' : 'user', id: Number(raw) }),
    },
    el('span', { class: 'title', textContent: conversationTitle(key) }),
    el('span', { class: 'preview', textContent: latest.get(key).preview }),
    unreadBadge(key));
    if (key === currentKey()) button.setAttribute('aria-current', 'true');
    return el('li', {}, button);
  }));
  $('conversations-empty').hidden = keys.length > 0;
}

function renderChat() {
  const key = currentKey();
  const list = $('message-list');
  const compose = $('compose-form');
  const addMember = $('add-member-form');
  $('chat-empty').hidden = key !== null;
  compose.hidden = key === null;
  if (key === null) {
    $('chat-title').textContent = 'Pick a chat';
    addMember.hidden = true;
    list.replaceChildren();
    return;
  }
  $('chat-title').textContent = conversationTitle(key);
  const group = state.current.kind === 'group' ? state.groups.get(state.current.id) : null;
  addMember.hidden = !(group && group.owner === state.auth.userId);

  const stored = [...state.messages.values()].filter((m) => conversationOf(m) === key).sort(bySeq);
  const waiting = [...state.pending.values()]
    .filter((p) => pendingConversation(p) === key)
    .sort((a, b) => a.createdAt - b.createdAt);

  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(
    ...stored.map((m) => messageItem({
      mine: m.from === state.auth.userId,
      from: m.from,
      content: m.content,
      ts: m.ts,
      status: m.from === state.auth.userId ? 'sent' : 'received',
      data: { id: String(m.id), seq: String(m.seq), from: String(m.from), cid: m.cid || '' },
    })),
    ...waiting.map((p) => messageItem({
      mine: true,
      from: state.auth.userId,
      content: p.content,
      ts: p.createdAt,
      status: p.status,
      error: p.error,
      data: { cid: p.cid, from: String(state.auth.userId) },
      pending: p,
    })),
  );
  if (nearBottom || waiting.length) list.scrollTop = list.scrollHeight;
  state.unread.delete(key);
}

const STATUS_TEXT = { pending: 'sending…', sent: 'sent', failed: 'not sent' };

function messageItem({ mine, from, content, ts, status, error, data, pending }) {
  const meta = el('div', { class: 'meta' },
    el('span', { class: 'sender', testid: 'message-sender', textContent: userLabel(from) }),
    el('time', { dateTime: ts ? new Date(ts).toISOString() : '', textContent: formatTime(ts) }),
    mine ? el('span', { class: `state ${status}`, testid: 'message-status', textContent: STATUS_TEXT[status] }) : null);
  const body = el('p', { class: 'content', testid: 'message-content', textContent: content });
  const item = el('li', { class: `message ${mine ? 'mine' : 'theirs'} ${status}`, testid: 'message', data: { ...data, status } }, meta, body);
  if (pending && status === 'failed') {
    item.append(el('div', { class: 'failure' },
      el('span', { class: 'error', testid: 'message-error', textContent: error || 'not sent' }),
      el('button', { type: 'button', class: 'link', testid: 'message-retry', textContent: 'Retry', onclick: () => retry(pending) }),
      el('button', { type: 'button', class: 'link', testid: 'message-discard', textContent: 'Discard', onclick: () => discard(pending) })));
  }
  return item;
}

function retry(p) {
  p.status = 'pending';
  p.error = null;
  p.transmits = 0;
  saveNow();
  if (canSend()) transmit(p);
  render();
}

function discard(p) {
  state.pending.delete(p.cid);
  saveNow();
  render();
}

function openConversation(target) {
  state.current = target;
  $('group-members').hidden = true;
  if (target.kind === 'group') loadMembers(target.id);
  render();
  $('compose-input').focus();
}

// ---------------------------------------------------------------- login state

function showView() {
  const signedIn = state.auth !== null;
  $('auth-view').hidden = signedIn;
  $('app-view').hidden = !signedIn;
  $('me').hidden = !signedIn;
  if (signedIn) {
    $('my-user-id').textContent = String(state.auth.userId);
    document.title = `imcluster chat — user ${state.auth.userId}`;
  } else {
    document.title = 'imcluster chat';
  }
}

function signIn(auth) {
  state.auth = auth;
  store(AUTH_KEY, auth);
  restoreLogin();
  state.current = null;
  state.unread.clear();
  showView();
  render();
  connect();
  refreshGroups();
}

function logout(reason) {
  const uid = state.auth?.userId;
  state.auth = null;
  clearTimeout(conn.reconnectTimer);
  clearTimeout(conn.retryTimer);
  conn.reconnectTimer = null;
  detach();
  if (uid !== undefined) {
    store(AUTH_KEY, null);
    store(inboxKey(uid), null); // a shared computer must not keep someone else's chats
    store(pendingKey(uid), null);
  }
  state.messages.clear();
  state.pending.clear();
  state.groups.clear();
  state.current = null;
  showView();
  setAuthMessage(reason || '');
}

function setAuthMessage(text, isError = false) {
  const el = $('auth-message');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

async function logIn(email, password) {
  const data = await api('POST', '/api/v1/login', { email, password });
  signIn({ token: data.token, userId: data.user_id, expiresAt: data.expires_at, email });
}

// ---------------------------------------------------------------- wiring

function busy(form, on) {
  for (const control of form.elements) control.disabled = on;
}

function setup() {
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
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

  $('register-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const email = form.email.value.trim();
    const password = form.password.value;
    busy(form, true);
    setAuthMessage('Creating your account…');
    try {
      const created = await api('POST', '/api/v1/register', { email, password, nickname: form.nickname.value.trim() });
      await logIn(email, password);
      form.reset();
      setAuthMessage('');
      notify('registered', `Welcome! Your user id is ${created.user_id}; share it so others can chat with you.`, 'info');
    } catch (err) {
      setAuthMessage(err.status === 409 ? 'That email is already registered; log in instead.' : err.message, true);
    } finally {
      busy(form, false);
    }
  });

  $('logout').addEventListener('click', () => logout('You are logged out.'));

  $('copy-id').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(String(state.auth.userId));
      notify('copied', 'User id copied.', 'info');
    } catch {
      notify('copy_failed', `Your user id is ${state.auth.userId}.`, 'info');
    }
  });

  $('open-chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('open-chat-user-id');
    const id = Number(input.value);
    if (!Number.isSafeInteger(id) || id <= 0) {
      notify('bad_request', 'A user id is a positive whole number.');
      return;
    }
    input.value = '';
    openConversation({ kind: 'user', id });
  });

  $('create-group-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = $('create-group-name').value.trim();
    if (!name) return;
    busy(form, true);
    try {
      const data = await api('POST', '/api/v1/groups', { name });
      state.groups.set(data.group_id, { group_id: data.group_id, name, owner: state.auth.userId });
      form.reset();
      openConversation({ kind: 'group', id: data.group_id });
      refreshGroups();
    } catch (err) {
      notify(err.code, `Could not create the group: ${err.message}`);
    } finally {
      busy(form, false);
    }
  });

  $('add-member-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const userId = Number($('add-member-user-id').value);
    if (!state.current || state.current.kind !== 'group' || !Number.isSafeInteger(userId) || userId <= 0) return;
    const groupId = state.current.id;
    busy(form, true);
    try {
      await api('POST', `/api/v1/groups/${groupId}/members`, { user_id: userId });
      form.reset();
      notify('member_added', `User ${userId} added.`, 'info');
      loadMembers(groupId);
    } catch (err) {
      notify(err.code, `Could not add user ${userId}: ${err.message}`);
    } finally {
      busy(form, false);
    }
  });

  const input = $('compose-input');
  $('compose-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const content = input.value;
    if (!content.trim() || !state.current) return;
    input.value = '';
    sendMessage(state.current, content);
    input.focus();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('compose-form').requestSubmit();
    }
  });

  window.addEventListener('pagehide', saveNow);
  window.addEventListener('online', () => {
    if (state.auth && !conn.ws) {
      conn.attempt = 0;
      connect();
    }
  });
  window.addEventListener('storage', (event) => {
    if (event.key === AUTH_KEY && event.newValue === null && state.auth) logout('You logged out in another tab.');
  });

  const saved = load(AUTH_KEY);
  if (saved && saved.token && Number.isInteger(saved.userId)) signIn(saved);
  else showView();
}

setup();
