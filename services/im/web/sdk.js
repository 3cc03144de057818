// imcluster client SDK (docs/clients.md): the HTTP API, and a WebSocket session that follows the
// rules of docs/protocol.md:
// - every send carries a `cid` and stays in the outbox (saved) until its `ack`; after a reconnect or a
//   temporary error it goes again with the same `cid`, which the server stores once;
// - the highest seq handed to the application is saved; after connecting, and when a gap in the seqs
//   lasts, `sync` fetches what is missing; each seq reaches the application once;
// - a closed connection is reopened after a jittered exponential backoff, or when a `reconnect` frame
//   says; a refused token is exchanged for a new login when the credentials allow it;
// - the users watched for presence are watched again on every new connection; typing frames go out at
//   most once per conversation and typing interval.
// One module without imports, so a browser loads it as it is (services/im/web/sdk.js is this build).
const TEMPORARY_CODES = new Set(['rate_limited', 'unavailable']);
// An error without a cid may answer a presence watch (rate limited, or its snapshot failed): watch again.
const WATCH_AGAIN_CODES = new Set([...TEMPORARY_CODES, 'internal']);
const MAX_WATCHED = 500;
const EVENT_TYPES = new Set(['edit', 'recall', 'read', 'member', 'group']);
const CLOSE_TOKEN_EXPIRED = 4001;
const CLOSE_MESSAGE_TOO_BIG = 1009;
const DRAIN_CLOSE_GRACE_MS = 2_000; // after a `reconnect` frame's moment, this side closes if the server has not
// ---------------------------------------------------------------- HTTP
/** A refused HTTP request: `status` 0 when the server could not be reached. */
export class ApiError extends Error {
    status;
    code;
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
        this.name = 'ApiError';
    }
}
/** One helper per HTTP route of openapi.json. */
export class HttpApi {
    baseUrl;
    fetchImpl;
    constructor(baseUrl, fetchImpl) {
        this.baseUrl = baseUrl.replace(/\/+$/, '');
        this.fetchImpl = fetchImpl ?? globalThis.fetch.bind(globalThis);
    }
    get wsUrl() {
        return `${this.baseUrl.replace(/^http/, 'ws')}/ws`;
    }
    async call(method, path, body, token) {
        const headers = { Accept: 'application/json' };
        if (body !== undefined)
            headers['Content-Type'] = 'application/json';
        if (token)
            headers.Authorization = `Bearer ${token}`;
        let response;
        try {
            const init = { method, headers };
            if (body !== undefined)
                init.body = JSON.stringify(body);
            response = await this.fetchImpl(this.baseUrl + path, init);
        }
        catch {
            throw new ApiError(0, 'unavailable', 'The server cannot be reached.');
        }
        const text = await response.text();
        let data = null;
        try {
            data = text ? JSON.parse(text) : null;
        }
        catch {
            data = null;
        }
        if (!response.ok) {
            const error = data?.error ?? {};
            throw new ApiError(response.status, error.code ?? `http_${response.status}`, error.message ?? `${response.status} ${response.statusText}`);
        }
        return data;
    }
    register(email, password, nickname) {
        return this.call('POST', '/api/v1/register', { email, password, nickname });
    }
    login(email, password) {
        return this.call('POST', '/api/v1/login', { email, password });
    }
    async groups(token) {
        return (await this.call('GET', '/api/v1/groups', undefined, token)).groups;
    }
    createGroup(token, name) {
        return this.call('POST', '/api/v1/groups', { name }, token);
    }
    addMember(token, groupId, userId) {
        return this.call('POST', `/api/v1/groups/${groupId}/members`, { user_id: userId }, token);
    }
    async members(token, groupId) {
        return (await this.call('GET', `/api/v1/groups/${groupId}/members`, undefined, token))
            .members;
    }
    /** Members only. */
    group(token, groupId) {
        return this.call('GET', `/api/v1/groups/${groupId}`, undefined, token);
    }
    /** Owner only. */
    renameGroup(token, groupId, name) {
        return this.call('PATCH', `/api/v1/groups/${groupId}`, { name }, token);
    }
    /** The owner removes `userId`; my own id: I leave (the owner only once nobody else is left). */
    async removeMember(token, groupId, userId) {
        await this.call('DELETE', `/api/v1/groups/${groupId}/members/${userId}`, undefined, token);
    }
    /** Owner only, to a current member. */
    handOver(token, groupId, userId) {
        return this.call('POST', `/api/v1/groups/${groupId}/owner`, { user_id: userId }, token);
    }
    async groupReads(token, groupId) {
        return (await this.call('GET', `/api/v1/groups/${groupId}/reads`, undefined, token))
            .reads;
    }
    me(token) {
        return this.call('GET', '/api/v1/me', undefined, token);
    }
    setNickname(token, nickname) {
        return this.call('PATCH', '/api/v1/me', { nickname }, token);
    }
    user(token, userId) {
        return this.call('GET', `/api/v1/users/${userId}`, undefined, token);
    }
    /** The profiles of those of `userIds` (at most 200) that exist, ascending by id. */
    async users(token, userIds) {
        const query = new URLSearchParams({ ids: userIds.join(',') });
        return (await this.call('GET', `/api/v1/users?${query}`, undefined, token)).users;
    }
    /** The user with exactly this email address (an `ApiError` 404 if none). */
    lookup(token, email) {
        return this.call('GET', `/api/v1/users/lookup?${new URLSearchParams({ email })}`, undefined, token);
    }
    async block(token, userId) {
        await this.call('PUT', `/api/v1/blocks/${userId}`, undefined, token);
    }
    async unblock(token, userId) {
        await this.call('DELETE', `/api/v1/blocks/${userId}`, undefined, token);
    }
    async blocked(token) {
        return (await this.call('GET', '/api/v1/blocks', undefined, token)).blocked;
    }
    /** The presence of each of `userIds` (1 to 500), in the order asked. */
    async presence(token, userIds) {
        const query = new URLSearchParams({ ids: userIds.join(',') });
        return (await this.call('GET', `/api/v1/presence?${query}`, undefined, token)).users;
    }
    /** One page of my conversations, most recent activity first; pass `next` back as `cursor`. */
    conversations(token, options = {}) {
        return this.call('GET', `/api/v1/conversations?${query(options)}`, undefined, token);
    }
    /** One page of a conversation's messages, newest first: older ones with `before` = the last page's oldest id. */
    conversationMessages(token, conversation, options = {}) {
        const path = 'peer' in conversation ? `peer/${conversation.peer}` : `group/${conversation.group}`;
        return this.call('GET', `/api/v1/conversations/${path}/messages?${query(options)}`, undefined, token);
    }
    messages(token, after = 0, limit = 100) {
        return this.call('GET', `/api/v1/messages?after=${after}&limit=${limit}`, undefined, token);
    }
    /** Everything in my inbox after `after`, following `more`. */
    async history(token, after = 0, limit = 100) {
        const entries = [];
        for (;;) {
            const page = await this.messages(token, after, limit);
            entries.push(...page.messages);
            const last = page.messages[page.messages.length - 1];
            if (!page.more || last === undefined)
                return entries;
            after = last.seq;
        }
    }
    async healthy() {
        return this.probe('/healthz');
    }
    async ready() {
        return this.probe('/readyz');
    }
    async probe(path) {
        try {
            return (await this.fetchImpl(this.baseUrl + path)).ok;
        }
        catch {
            return false;
        }
    }
}
/** A query string of the options that are set. */
function query(options) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(options)) {
        if (value !== undefined)
            params.set(name, String(value));
    }
    return params;
}
// ---------------------------------------------------------------- state
/** Which seqs of a gapless sequence have been seen: all up to `mark`, plus the few in `above`. */
export class SeqTracker {
    mark;
    above = new Set();
    constructor(mark = 0, above = []) {
        this.mark = mark;
        for (const seq of above)
            if (seq > mark)
                this.above.add(seq);
        this.advance();
    }
    seen(seq) {
        return seq <= this.mark || this.above.has(seq);
    }
    /** Record `seq`; false if it had been seen already. */
    note(seq) {
        if (this.seen(seq))
            return false;
        this.above.add(seq);
        this.advance();
        return true;
    }
    /** Everything up to `seq` is known (a finished sync said so), gaps included. */
    fillTo(seq) {
        if (seq <= this.mark)
            return;
        this.mark = seq;
        for (const s of this.above)
            if (s <= seq)
                this.above.delete(s);
        this.advance();
    }
    get hasGap() {
        return this.above.size > 0;
    }
    advance() {
        while (this.above.delete(this.mark + 1))
            this.mark += 1;
    }
}
export class MemoryStore {
    state = null;
    load() {
        return this.state === null ? null : JSON.parse(this.state);
    }
    save(state) {
        this.state = JSON.stringify(state);
    }
}
export class LocalStorageStore {
    key;
    storage;
    constructor(key, storage = globalThis.localStorage) {
        this.key = key;
        this.storage = storage;
    }
    load() {
        try {
            const raw = this.storage.getItem(this.key);
            return raw ? JSON.parse(raw) : null;
        }
        catch {
            return null;
        }
    }
    save(state) {
        try {
            this.storage.setItem(this.key, JSON.stringify(state));
        }
        catch (err) {
            console.warn('localStorage write failed', this.key, err);
        }
    }
}
/** Attempt 0 waits 0.25–0.5 s by default, each next one up to twice as long, capped. */
export function backoffDelay(policy, attempt, random = Math.random) {
    const ceiling = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.min(attempt, 32));
    return ceiling / 2 + random() * (ceiling / 2);
}
function isId(value) {
    return Number.isSafeInteger(value) && value >= 1;
}
function asMessage(entry) {
    const { id, seq, from, to, group, content, cid, ts } = entry;
    const ok = isId(id) && isId(seq) && isId(from) && typeof content === 'string' && Number.isInteger(ts)
        && (to === null || to === undefined || isId(to)) && (group === null || group === undefined || isId(group))
        && (cid === null || cid === undefined || typeof cid === 'string');
    return ok ? { ...entry, type: 'msg', to: to ?? null, group: group ?? null, cid: cid ?? null } : null;
}
/** A known inbox event, when its type is one and it names a message or a group. */
function asEvent(entry) {
    const named = entry.type === 'member' || entry.type === 'group' ? isId(entry.group) : isId(entry.id ?? entry.up_to);
    return EVENT_TYPES.has(String(entry.type)) && named && isId(entry.seq) ? entry : null;
}
function isPresence(entry) {
    if (entry === null || typeof entry !== 'object')
        return false;
    const { user_id: userId, online, last_seen: lastSeen } = entry;
    return isId(userId) && typeof online === 'boolean' && (lastSeen === null || Number.isSafeInteger(lastSeen));
}
function newCid() {
    const bytes = new Uint8Array(16);
    globalThis.crypto.getRandomValues(bytes); // crypto.randomUUID needs a secure context; this does not
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
/** One user's chat session on one server. */
export class ChatClient {
    http;
    login;
    options;
    policy;
    WebSocketImpl;
    store;
    seqs = new SeqTracker();
    pending = new Map();
    waiters = new Map();
    requests = new Map();
    listeners = new Set();
    ws = null;
    inFlight = new Map(); // cid -> frame length, sent on this socket
    ready = false;
    syncing = false;
    cursor = 0;
    attempt = 0;
    reconnectAfterMs = null;
    lastFrameAt = 0;
    timers = new Map();
    running = false;
    watched = [];
    typingSentAt = new Map(); // 'to:<id>' | 'group:<id>' -> unix ms
    constructor(options) {
        this.options = options;
        this.http = new HttpApi(options.url, options.fetch);
        this.policy = { firstDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 5_000, ...options.reconnect };
        this.WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
        this.store = options.store ?? null;
        this.login = typeof options.credentials === 'function' ? null : options.credentials;
    }
    // -- lifecycle ------------------------------------------------------------------------------
    /** Log in if needed, load the saved state, connect. */
    async start() {
        if (this.login === null)
            this.login = await this.newLogin();
        if (this.store === null) {
            const key = `imcluster.${new URL(this.http.baseUrl).host}.${this.login.user_id}`;
            this.store = typeof globalThis.localStorage === 'undefined' ? new MemoryStore() : new LocalStorageStore(key);
        }
        const saved = this.store.load();
        this.seqs = new SeqTracker(saved?.mark ?? 0, saved?.above ?? []);
        for (const p of saved?.pending ?? [])
            this.pending.set(p.cid, { ...p, unanswered: p.unanswered ?? 0 });
        this.running = true;
        this.connect();
    }
    /** Close the connection and save; unacked sends stay saved for the next start. */
    close() {
        this.running = false;
        for (const timer of this.timers.values())
            clearTimeout(timer);
        this.timers.clear();
        this.detach();
        this.saveNow();
    }
    get userId() {
        if (this.login === null)
            throw new Error('start() first');
        return this.login.user_id;
    }
    /** Every seq up to this one has been handed to the application. */
    get position() {
        return this.seqs.mark;
    }
    /** Open and caught up: new sends go out at once. */
    get connected() {
        return this.ws !== null && this.ready;
    }
    /** Sends not acked yet (pending or failed), oldest first. */
    outbox() {
        return [...this.pending.values()].sort((a, b) => a.createdAt - b.createdAt);
    }
    /** Listen to every event; returns the function that stops listening. */
    on(listener) {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }
    /** Skip the rest of the backoff (e.g. when the browser says it is online again). */
    reconnectNow() {
        if (!this.running || this.ws !== null)
            return;
        this.attempt = 0;
        this.clearTimer('reconnect');
        this.connect();
    }
    /** Save now (e.g. on `pagehide`) instead of after `saveDelayMs`. */
    saveNow() {
        this.clearTimer('save');
        this.store?.save({ mark: this.seqs.mark, above: [...this.seqs.above].sort((a, b) => a - b),
            pending: this.outbox() });
    }
    emit(event) {
        for (const listener of this.listeners) {
            try {
                listener(event);
            }
            catch (err) {
                console.error('a chat client listener failed', err);
            }
        }
    }
    // -- sending --------------------------------------------------------------------------------
    /** Queue a message to a user or a group; it is saved before it is transmitted. */
    send(content, target, cid = newCid()) {
        if (this.pending.has(cid))
            throw new Error(`cid ${cid} is already in the outbox`);
        this.pending.set(cid, {
            cid, content, to: 'to' in target ? target.to : null, group: 'group' in target ? target.group : null,
            createdAt: Date.now(), status: 'pending', error: null, unanswered: 0,
        });
        const done = this.waiter(cid);
        this.saveNow();
        this.emit({ kind: 'outbox' });
        this.flush();
        return { cid, done };
    }
    /** Send a failed message again (same cid). */
    retry(cid) {
        const p = this.pending.get(cid);
        if (p === undefined)
            throw new Error(`no send ${cid} in the outbox`);
        Object.assign(p, { status: 'pending', error: null, unanswered: 0 });
        const done = this.waiter(cid);
        this.saveNow();
        this.emit({ kind: 'outbox' });
        this.flush();
        return { cid, done };
    }
    /** Forget a send (failed or not); an ack that still comes for it is ignored. */
    discard(cid) {
        this.pending.delete(cid);
        this.waiters.delete(cid);
        this.inFlight.delete(cid);
        this.saveNow();
        this.emit({ kind: 'outbox' });
    }
    /** Replace the content of my message; resolves with the ack, rejects with an ApiError (e.g. `forbidden`). */
    edit(message, content, cid = newCid()) {
        return this.request({ type: 'edit', cid, id: message.id, content }, message);
    }
    /** Erase my message for everyone. */
    recall(message, cid = newCid()) {
        return this.request({ type: 'recall', cid, id: message.id }, message);
    }
    /** Move my read pointer up to message `upTo`; false when not connected (nothing sent: say it again later). */
    read(conversation, upTo) {
        if (!this.connected)
            return false;
        this.transmit({ type: 'read', ...conversation, up_to: upTo });
        return true;
    }
    /** Tell the recipients I am typing to them (`to`) or in `group`; call it on every keystroke. At most one
     * frame per conversation per `typingIntervalMs` goes out; false when nothing was sent (too soon, or not
     * connected). Never answered. */
    typing(target) {
        if (!this.connected)
            return false;
        const key = 'to' in target ? `to:${target.to}` : `group:${target.group}`;
        const now = Date.now();
        const last = this.typingSentAt.get(key);
        if (last !== undefined && now - last < (this.options.typingIntervalMs ?? 3_000))
            return false;
        this.typingSentAt.set(key, now);
        this.transmit('to' in target ? { type: 'typing', to: target.to } : { type: 'typing', group: target.group });
        return true;
    }
    /** Watch the presence of these users (at most 500 distinct; replaces the set; `[]` watches nobody). Sent
     * now when connected and again on every new connection; each time a `presence` event with all of them
     * follows, then one for each change. */
    watchPresence(userIds) {
        const ids = [...new Set(userIds)];
        if (ids.length > MAX_WATCHED)
            throw new RangeError(`at most ${MAX_WATCHED} users can be watched, not ${ids.length}`);
        const bad = ids.find((id) => !isId(id));
        if (bad !== undefined)
            throw new TypeError(`not a user id: ${String(bad)}`);
        this.watched = ids;
        this.clearTimer('watch-again');
        if (this.ws?.readyState === this.WebSocketImpl.OPEN)
            this.transmit({ type: 'presence', watch: ids });
    }
    /** The users `watchPresence` asked for. */
    get watching() {
        return this.watched;
    }
    request(frame, message) {
        if (this.requests.has(frame.cid))
            throw new Error(`cid ${frame.cid} is already waiting`);
        const promise = new Promise((resolve, reject) => {
            this.requests.set(frame.cid, { frame, message, resolve, reject });
        });
        this.flush();
        return promise;
    }
    /** The ack of my edit or recall: this connection gets no event for it, so it is made from the ack. */
    requestAcked(request, ack) {
        this.requests.delete(ack.cid);
        this.inFlight.delete(ack.cid);
        request.resolve(ack);
        const { frame, message } = request;
        const where = message.group !== null ? { group: message.group } : { to: message.to };
        const event = frame.type === 'edit'
            ? { type: 'edit', seq: ack.seq, id: frame.id, from: this.userId, ...where, content: frame.content, ts: ack.ts }
            : { type: 'recall', seq: ack.seq, id: frame.id, from: this.userId, ...where, ts: ack.ts };
        if (this.seqs.note(ack.seq))
            this.emit({ kind: 'event', event, source: 'ack' });
    }
    waiter(cid) {
        const existing = this.waiters.get(cid);
        if (existing !== undefined)
            return existing.promise;
        let resolve;
        let reject;
        const promise = new Promise((yes, no) => { resolve = yes; reject = no; });
        promise.catch(() => { }); // an application that never looks at `done` is not told about it
        this.waiters.set(cid, { resolve, reject, promise });
        return promise;
    }
    /** Transmit waiting sends, oldest first, within `maxInFlight`. */
    flush() {
        const ws = this.ws;
        if (ws === null || !this.ready || this.timers.has('retry') || ws.readyState !== this.WebSocketImpl.OPEN)
            return;
        const maxInFlight = this.options.maxInFlight ?? 64;
        const maxUnanswered = this.options.maxUnanswered === undefined ? 5 : this.options.maxUnanswered;
        for (const r of this.requests.values()) {
            if (!this.inFlight.has(r.frame.cid))
                this.inFlight.set(r.frame.cid, this.transmit({ ...r.frame }));
        }
        for (const p of this.outbox()) {
            if (this.inFlight.size >= maxInFlight)
                return;
            if (p.status !== 'pending' || this.inFlight.has(p.cid))
                continue;
            if (maxUnanswered !== null && p.unanswered >= maxUnanswered) {
                this.fail(p, 'unavailable', 'the server never answered; try again');
                continue;
            }
            p.unanswered += 1;
            const frame = p.group !== null
                ? { type: 'send', cid: p.cid, group: p.group, content: p.content }
                : { type: 'send', cid: p.cid, to: p.to, content: p.content };
            this.inFlight.set(p.cid, this.transmit(frame));
        }
    }
    transmit(frame) {
        const text = JSON.stringify(frame);
        this.options.trace?.('out', frame);
        this.ws?.send(text);
        return text.length;
    }
    fail(p, code, message) {
        p.status = 'failed';
        p.error = `${code}: ${message}`;
        this.inFlight.delete(p.cid);
        this.waiters.get(p.cid)?.reject(new ApiError(0, code, message));
        this.waiters.delete(p.cid);
        this.emit({ kind: 'sendFailed', cid: p.cid, code, message });
        this.emit({ kind: 'outbox' });
        this.saveNow();
    }
    acked(cid, message) {
        this.pending.delete(cid);
        this.inFlight.delete(cid);
        this.waiters.get(cid)?.resolve(message);
        this.waiters.delete(cid);
        this.emit({ kind: 'outbox' });
        this.scheduleSave(); // a stale outbox entry only costs a resend, which the server answers alike
    }
    // -- connection -----------------------------------------------------------------------------
    connect() {
        this.clearTimer('reconnect');
        if (!this.running || this.ws !== null || this.login === null)
            return;
        this.emit({ kind: 'connecting' });
        // An expired token is found out by the server (the handshake fails), not by this machine's clock.
        const sock = new this.WebSocketImpl(`${this.http.wsUrl}?token=${encodeURIComponent(this.login.token)}`);
        let opened = false;
        let openedAt = 0;
        this.ws = sock;
        sock.addEventListener('open', () => {
            if (this.ws !== sock)
                return;
            opened = true;
            openedAt = Date.now();
            this.clearTimer('open-timeout');
            this.lastFrameAt = openedAt;
            this.ready = false;
            this.inFlight.clear();
            const every = this.options.pingIntervalMs ?? 25_000;
            if (every > 0)
                this.every('ping', every, () => this.heartbeat(sock));
            this.emit({ kind: 'connected' });
            this.startSync();
            if (this.watched.length > 0)
                this.transmit({ type: 'presence', watch: this.watched });
        });
        sock.addEventListener('message', (event) => {
            if (this.ws !== sock)
                return;
            this.lastFrameAt = Date.now();
            let frame;
            try {
                frame = JSON.parse(String(event.data));
            }
            catch {
                console.warn('the server sent something that is not JSON');
                return;
            }
            if (frame === null || typeof frame !== 'object' || Array.isArray(frame))
                return;
            this.options.trace?.('in', frame);
            this.handle(frame);
        });
        const gone = (code, reason) => {
            if (this.ws !== sock)
                return;
            const unanswered = new Map(this.inFlight);
            this.detach();
            if (!this.running)
                return;
            if (code === CLOSE_MESSAGE_TOO_BIG)
                this.blameLargest(unanswered);
            if (openedAt && Date.now() - openedAt >= this.policy.stableAfterMs)
                this.attempt = 0;
            if (!opened || code === CLOSE_TOKEN_EXPIRED) {
                void this.checkTokenThenReconnect(opened ? code : null, reason);
                return;
            }
            this.scheduleReconnect(code, reason);
        };
        sock.addEventListener('close', (event) => gone(event.code, event.reason));
        // Browsers follow an `error` with `close`; node 20's WebSocket does not when the connection is refused.
        sock.addEventListener('error', () => gone(1006, 'connection failed'));
        this.later('open-timeout', this.options.openTimeoutMs ?? 10_000, () => {
            if (!opened)
                gone(1006, 'the connection did not open in time');
        });
    }
    detach() {
        const sock = this.ws;
        this.ws = null;
        this.ready = false;
        this.syncing = false;
        this.inFlight.clear();
        for (const name of ['ping', 'gap', 'retry', 'sync-retry', 'watch-again', 'drain', 'open-timeout']) {
            this.clearTimer(name);
        }
        if (sock !== null && sock.readyState <= this.WebSocketImpl.OPEN) {
            try {
                sock.close();
            }
            catch {
                /* already closing */
            }
        }
    }
    heartbeat(sock) {
        if (this.ws !== sock)
            return;
        if (Date.now() - this.lastFrameAt > (this.options.deadAfterMs ?? 60_000)) {
            this.detach(); // a half-open TCP connection never fires `close` by itself
            this.scheduleReconnect(null, 'no frame from the server for too long');
            return;
        }
        this.transmit({ type: 'ping' });
    }
    scheduleReconnect(code, reason) {
        if (!this.running || this.ws !== null || this.timers.has('reconnect'))
            return;
        let delay;
        if (this.reconnectAfterMs !== null) {
            delay = this.reconnectAfterMs;
            this.reconnectAfterMs = null;
        }
        else {
            delay = backoffDelay(this.policy, this.attempt, this.options.random);
            this.attempt += 1;
        }
        this.emit({ kind: 'disconnected', code, reason, retryInMs: delay });
        this.later('reconnect', delay, () => this.connect());
    }
    /** The handshake failed or the token expired: find out whether the token is the reason before retrying. */
    async checkTokenThenReconnect(code, reason) {
        const token = this.login?.token;
        let refused = code === CLOSE_TOKEN_EXPIRED;
        if (!refused && token !== undefined) {
            try {
                await this.http.groups(token);
            }
            catch (err) {
                refused = err instanceof ApiError && err.status === 401;
            }
        }
        if (!this.running || this.login?.token !== token)
            return;
        if (refused) {
            let login = null;
            if (typeof this.options.credentials === 'function') {
                try {
                    login = await this.newLogin();
                }
                catch (err) {
                    if (!(err instanceof ApiError && err.status === 401))
                        login = this.login; // try again later
                }
            }
            if (login === null) {
                this.running = false;
                this.emit({ kind: 'sessionEnded', reason: 'unauthorized' });
                return;
            }
            this.login = login;
        }
        this.scheduleReconnect(code, reason);
    }
    async newLogin() {
        const credentials = this.options.credentials;
        const login = typeof credentials === 'function' ? await credentials() : credentials;
        if (this.login !== null && login.user_id !== this.login.user_id) {
            throw new Error(`the credentials switched from user ${this.login.user_id} to ${login.user_id}`);
        }
        return login;
    }
    /** The server closed on a frame too big: the largest send in flight must not go out again. */
    blameLargest(unanswered) {
        let largest = null;
        for (const [cid, size] of unanswered) {
            const ours = this.pending.has(cid) || this.requests.has(cid);
            if (ours && (largest === null || size > (unanswered.get(largest) ?? 0)))
                largest = cid;
        }
        if (largest === null)
            return;
        const why = "the message is larger than the server's frame limit";
        const p = this.pending.get(largest);
        if (p !== undefined)
            this.fail(p, 'too_large', why);
        if (this.requests.has(largest))
            this.refuse(largest, 'too_large', why);
    }
    /** An edit or recall refused for good. */
    refuse(cid, code, message) {
        const request = this.requests.get(cid);
        this.requests.delete(cid);
        request?.reject(new ApiError(0, code, message));
        this.emit({ kind: 'requestFailed', cid, code, message });
    }
    later(name, delay, callback) {
        if (this.timers.has(name))
            return;
        this.timers.set(name, setTimeout(() => {
            this.timers.delete(name);
            callback();
        }, delay));
    }
    every(name, interval, callback) {
        this.clearTimer(name);
        this.timers.set(name, setInterval(callback, interval));
    }
    clearTimer(name) {
        const timer = this.timers.get(name);
        if (timer !== undefined) {
            clearTimeout(timer);
            clearInterval(timer);
            this.timers.delete(name);
        }
    }
    scheduleSave() {
        this.later('save', this.options.saveDelayMs ?? 100, () => this.saveNow());
    }
    // -- frames ---------------------------------------------------------------------------------
    handle(frame) {
        switch (frame.type) {
            case 'msg':
            case 'edit':
            case 'recall':
            case 'read':
            case 'member':
            case 'group':
                this.takeEntry(frame, 'push');
                break;
            case 'ack':
                this.onAck(frame);
                break;
            case 'sync':
                this.onSyncPage(frame);
                break;
            case 'error':
                this.onError(frame);
                break;
            case 'reconnect': {
                const afterMs = Number.isInteger(frame.after_ms) && frame.after_ms >= 0
                    ? frame.after_ms : 0;
                this.reconnectAfterMs = afterMs;
                this.emit({ kind: 'reconnectRequested', afterMs });
                this.later('drain', afterMs + DRAIN_CLOSE_GRACE_MS, () => {
                    const sock = this.ws;
                    this.reconnectAfterMs = 0;
                    this.detach();
                    if (sock !== null)
                        this.scheduleReconnect(null, 'the server did not close after reconnect');
                });
                break;
            }
            case 'typing':
                this.onTyping(frame);
                break;
            case 'presence':
                this.onPresence(frame);
                break;
            case 'pong':
                break;
            default:
                if (isId(frame.seq))
                    this.takeEntry(frame, 'push'); // a newer kind of inbox entry: its seq counts
                else
                    this.emit({ kind: 'frame', frame });
        }
        this.scheduleSave();
    }
    /** One inbox entry from a push or a sync page: handed over once per seq. */
    takeEntry(entry, source) {
        const seq = entry.seq;
        if (!isId(seq))
            return;
        if (entry.type === 'msg') {
            const message = asMessage(entry);
            if (message === null) {
                console.warn('a malformed message was skipped', entry);
                return;
            }
            if (message.from === this.login?.user_id && message.cid !== null && this.pending.has(message.cid)) {
                this.acked(message.cid, message); // its ack was lost with a connection; the server has it
            }
            if (this.seqs.note(seq))
                this.emit({ kind: 'message', message, source });
        }
        else if (this.seqs.note(seq)) {
            const event = asEvent(entry);
            this.emit(event === null ? { kind: 'inbox', entry: entry } : { kind: 'event', event, source });
        }
        this.watchGap();
    }
    watchGap() {
        if (!this.seqs.hasGap || this.syncing)
            return;
        this.later('gap', this.options.gapGraceMs ?? 500, () => {
            if (this.seqs.hasGap && !this.syncing && this.ws !== null)
                this.startSync();
        });
    }
    onAck(frame) {
        const { cid, seq } = frame;
        const request = typeof cid === 'string' ? this.requests.get(cid) : undefined;
        if (request !== undefined && isId(seq)) {
            this.requestAcked(request, { cid: cid, id: frame.id, seq, ts: frame.ts });
            this.watchGap();
            this.flush();
            return;
        }
        const p = typeof cid === 'string' ? this.pending.get(cid) : undefined;
        if (p === undefined || !isId(seq))
            return; // a duplicate answer: that send was settled already
        const message = {
            type: 'msg', id: frame.id, seq, from: this.userId, to: p.to, group: p.group,
            content: p.content, cid: p.cid, ts: frame.ts,
        };
        this.acked(p.cid, message);
        if (this.seqs.note(seq))
            this.emit({ kind: 'message', message, source: 'ack' });
        this.watchGap();
        this.flush();
    }
    onTyping(frame) {
        const { from, to, group } = frame;
        if (isId(from) && isId(group))
            this.emit({ kind: 'typing', from, conversation: { group } });
        else if (isId(from) && isId(to))
            this.emit({ kind: 'typing', from, conversation: { peer: from } });
        else
            this.emit({ kind: 'frame', frame });
    }
    onPresence(frame) {
        if (!Array.isArray(frame.users)) {
            this.emit({ kind: 'frame', frame });
            return;
        }
        const users = frame.users.filter(isPresence);
        if (users.length > 0)
            this.emit({ kind: 'presence', users });
    }
    startSync() {
        this.syncing = true;
        this.cursor = this.seqs.mark;
        this.transmit({ type: 'sync', after: this.cursor, limit: this.options.syncLimit ?? 200 });
    }
    onSyncPage(frame) {
        const before = this.cursor;
        for (const entry of Array.isArray(frame.messages) ? frame.messages : []) {
            if (entry === null || typeof entry !== 'object')
                continue;
            this.takeEntry(entry, 'sync');
            const seq = entry.seq;
            if (isId(seq) && seq > this.cursor)
                this.cursor = seq;
        }
        if (frame.more === true && this.cursor > before) {
            this.transmit({ type: 'sync', after: this.cursor, limit: this.options.syncLimit ?? 200 });
            return;
        }
        this.syncing = false;
        this.seqs.fillTo(this.cursor);
        this.emit({ kind: 'synced', upTo: this.cursor });
        if (!this.ready) {
            this.ready = true;
            this.flush();
        }
        else {
            this.watchGap();
        }
    }
    onError(frame) {
        const code = String(frame.code);
        const message = String(frame.message ?? '');
        const cid = typeof frame.cid === 'string' ? frame.cid : null;
        this.emit({ kind: 'error', code, message, cid });
        const request = cid === null ? undefined : this.requests.get(cid);
        const p = cid === null ? undefined : this.pending.get(cid);
        if (request !== undefined && cid !== null) {
            this.inFlight.delete(cid);
            if (TEMPORARY_CODES.has(code)) {
                this.later('retry', this.options.retryTemporaryMs ?? 3_000, () => this.flush());
            }
            else {
                this.refuse(cid, code, message);
            }
        }
        else if (p !== undefined) {
            this.inFlight.delete(p.cid);
            if (TEMPORARY_CODES.has(code)) {
                p.unanswered = 0; // it was answered; only the server's state stopped it
                this.later('retry', this.options.retryTemporaryMs ?? 3_000, () => this.flush());
            }
            else {
                this.fail(p, code, message);
                this.flush();
            }
        }
        else if (cid === null && this.syncing) {
            // A sync refused (rate_limited, unavailable, internal): ask again from where it stood.
            this.syncing = false;
            this.later('sync-retry', this.options.retryTemporaryMs ?? 3_000, () => {
                if (this.ws === null || this.syncing)
                    return;
                this.syncing = true;
                this.transmit({ type: 'sync', after: this.cursor, limit: this.options.syncLimit ?? 200 });
            });
        }
        if (cid === null && this.watched.length > 0 && WATCH_AGAIN_CODES.has(code)) {
            this.later('watch-again', this.options.retryTemporaryMs ?? 3_000, () => {
                if (this.ws?.readyState === this.WebSocketImpl.OPEN)
                    this.transmit({ type: 'presence', watch: this.watched });
            });
        }
    }
}
