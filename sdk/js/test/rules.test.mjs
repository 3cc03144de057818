// The client's rules against a scripted server: the cases a real server rarely produces on cue.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, MemoryStore, SeqTracker, backoffDelay } from '../dist/index.js';
import { fakeServer, until } from './support.mjs';

const ME = 1;
const PEER = 2;
const FAST = { reconnect: { firstDelayMs: 50, maxDelayMs: 200 }, gapGraceMs: 100, retryTemporaryMs: 100 };
const msg = (seq, content = 'x') => ({
  type: 'msg', id: 100 + seq, seq, from: PEER, to: ME, group: null, content, cid: `c${seq}`, ts: 1700000000000 + seq,
});

function client(url, extra = {}) {
  // No frame log here: these scripts send frames of a newer server on purpose.
  const events = [];
  const chat = new ChatClient({ url, credentials: { token: 't', user_id: ME, expires_at: 0 }, store: new MemoryStore(),
    ...FAST, ...extra });
  chat.on((event) => events.push(event));
  return { chat, events };
}

const seqsOf = (events) => events.filter((e) => ['message', 'event', 'inbox'].includes(e.kind))
  .map((e) => (e.kind === 'message' ? e.message.seq : e.kind === 'event' ? e.event.seq : e.entry.seq));

test('the seq tracker and the backoff', () => {
  const seqs = new SeqTracker();
  assert.ok(seqs.note(1) && seqs.note(2) && seqs.note(4));
  assert.equal(seqs.mark, 2);
  assert.ok(seqs.hasGap && !seqs.note(4));
  seqs.note(3);
  assert.ok(!seqs.hasGap && seqs.mark === 4);
  seqs.fillTo(7);
  assert.equal(seqs.mark, 7);
  const policy = { firstDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 5_000 };
  assert.deepEqual([0, 1, 2].map((n) => backoffDelay(policy, n, () => 0)), [250, 500, 1000]);
  assert.deepEqual([0, 1, 2].map((n) => backoffDelay(policy, n, () => 1)), [500, 1000, 2000]);
  assert.equal(backoffDelay(policy, 60, () => 1), 30_000);
});

test('a gap in the seqs is filled by a sync and nothing is handed over twice', async () => {
  const server = await fakeServer([async (peer) => {
    await peer.expectSync(0);
    peer.send({ type: 'sync', messages: [msg(1)], more: false });
    peer.send(msg(3));
    await peer.expectSync(1);
    peer.send({ type: 'sync', messages: [msg(2), msg(3)], more: false });
  }]);
  const { chat, events } = client(server.url);
  await chat.start();
  await until(() => seqsOf(events).length === 3 && events.at(-1).kind === 'synced');
  assert.deepEqual(seqsOf(events), [1, 3, 2]);
  assert.equal(chat.position, 3);
  chat.close();
  server.close();
  assert.deepEqual(server.failures, []);
});

test('types from a newer server are passed through and take their seq', async () => {
  const server = await fakeServer([async (peer) => {
    await peer.expectSync(0);
    const edit = { type: 'edit', seq: 2, id: 101, from: PEER, to: ME, content: 'y', ts: 1 };
    peer.send({ type: 'sync', messages: [msg(1), edit, { type: 'poll', seq: 3, question: '?' }], more: false });
    peer.send({ type: 'poll_closed', poll: 3 });
  }]);
  const { chat, events } = client(server.url);
  await chat.start();
  await until(() => events.some((e) => e.kind === 'frame'));
  assert.deepEqual(events.filter((e) => e.kind === 'event').map((e) => [e.event.type, e.event.seq]), [['edit', 2]]);
  assert.deepEqual(events.filter((e) => e.kind === 'inbox').map((e) => [e.entry.type, e.entry.seq]), [['poll', 3]]);
  assert.equal(events.find((e) => e.kind === 'frame').frame.type, 'poll_closed');
  assert.equal(chat.position, 3);
  chat.close();
  server.close();
});

test('a reconnect frame sets when the client comes back, and unacked sends go again with their cid', async () => {
  const server = await fakeServer([
    async (peer) => {
      await peer.expectSync(0);
      peer.send({ type: 'sync', messages: [], more: false });
      assert.equal((await peer.recv()).type, 'send');
      peer.send({ type: 'reconnect', after_ms: 400 });
      setTimeout(() => peer.ws.close(1001, 'gateway draining'), 50);
    },
    async (peer) => {
      await peer.expectSync(0);
      peer.send({ type: 'sync', messages: [], more: false });
      const again = await peer.recv();
      assert.equal(again.content, 'hello');
      peer.send({ type: 'ack', cid: again.cid, id: 500, seq: 1, ts: 1 });
    },
  ]);
  const { chat, events } = client(server.url);
  await chat.start();
  await until(() => chat.connected);
  const outgoing = chat.send('hello', { to: PEER });
  const message = await outgoing.done;
  assert.equal(message.cid, outgoing.cid);
  assert.equal(message.seq, 1);
  assert.equal(events.find((e) => e.kind === 'reconnectRequested').afterMs, 400);
  assert.equal(events.find((e) => e.kind === 'disconnected').retryInMs, 400);
  assert.ok(server.connectedAt[1] - server.connectedAt[0] >= 400);
  assert.deepEqual(events.filter((e) => e.kind === 'message').map((e) => e.source), ['ack']);
  chat.close();
  server.close();
  assert.deepEqual(server.failures, []);
});

test('a send the server closed on as too big fails once; temporary errors are retried; permanent ones fail', async () => {
  const server = await fakeServer([
    async (peer) => {
      await peer.expectSync(0);
      peer.send({ type: 'sync', messages: [], more: false });
      const first = await peer.recv();
      peer.send({ type: 'error', code: 'rate_limited', message: 'slow down', cid: first.cid });
      assert.deepEqual(await peer.recv(), first);
      peer.send({ type: 'ack', cid: first.cid, id: 9, seq: 1, ts: 1 });
      const refused = await peer.recv();
      peer.send({ type: 'error', code: 'forbidden', message: 'not a member', cid: refused.cid });
      await peer.recv();
      peer.ws.close(1009, 'frame too big');
    },
    async (peer) => {
      await peer.expectSync(1);
      peer.send({ type: 'sync', messages: [], more: false });
      const frame = await peer.recv();
      assert.equal(frame.content, 'small again');
      peer.send({ type: 'ack', cid: frame.cid, id: 10, seq: 2, ts: 1 });
    },
  ]);
  const { chat, events } = client(server.url);
  await chat.start();
  await until(() => chat.connected);
  assert.equal((await chat.send('one', { to: PEER }).done).id, 9);
  await assert.rejects(chat.send('two', { group: 5 }).done, { code: 'forbidden' });
  const big = chat.send('x'.repeat(5000), { to: PEER });
  await assert.rejects(big.done, { code: 'too_large' });
  assert.deepEqual(chat.outbox().map((p) => p.status), ['failed', 'failed']);
  assert.equal((await chat.send('small again', { to: PEER }).done).seq, 2);
  for (const p of chat.outbox()) chat.discard(p.cid);
  assert.deepEqual(chat.outbox(), []);
  assert.deepEqual(events.filter((e) => e.kind === 'sendFailed').map((e) => e.code), ['forbidden', 'too_large']);
  chat.close();
  server.close();
  assert.deepEqual(server.failures, []);
});

test('an edit whose connection died goes again with its cid; its ack is the event; a temporary refusal is retried', async () => {
  const server = await fakeServer([
    async (peer) => {
      await peer.expectSync(0);
      peer.send({ type: 'sync', messages: [{ ...msg(1, 'hi'), from: ME, to: PEER }], more: false });
      const edit = await peer.recv();
      assert.deepEqual(edit, { type: 'edit', cid: edit.cid, id: 101, content: 'hi!' });
      peer.ws.close(1011, 'gone');
    },
    async (peer) => {
      await peer.expectSync(1);
      peer.send({ type: 'sync', messages: [], more: false });
      const again = await peer.recv();
      assert.equal(again.type, 'edit');
      peer.send({ type: 'error', code: 'unavailable', message: 'later', cid: again.cid });
      const third = await peer.recv();
      assert.equal(third.cid, again.cid);
      peer.send({ type: 'ack', cid: third.cid, id: 101, seq: 2, ts: 7 });
      peer.send({ type: 'edit', seq: 2, id: 101, from: ME, to: PEER, content: 'hi!', ts: 7 }); // a duplicate push
    },
  ]);
  const { chat, events } = client(server.url);
  await chat.start();
  await until(() => chat.connected);
  const first = events.find((e) => e.kind === 'message').message; // synced before sends flow
  const ack = await chat.edit(first, 'hi!');
  assert.deepEqual(ack, { cid: ack.cid, id: 101, seq: 2, ts: 7 });
  await until(() => chat.position === 2);
  const edits = events.filter((e) => e.kind === 'event');
  assert.deepEqual(edits.map((e) => [e.event.type, e.event.seq, e.event.to, e.source]), [['edit', 2, PEER, 'ack']]);
  assert.equal(server.connectedAt.length, 2);
  chat.close();
  server.close();
  assert.deepEqual(server.failures, []);
});

test('presence is watched again on every connection and after a refusal; typing goes out once per interval', async () => {
  const watch = { type: 'presence', watch: [PEER, 3] };
  let cleared = false;
  const server = await fakeServer([
    async (peer) => {
      await peer.expectSync(0);
      assert.deepEqual(await peer.recv(), watch); // asked for before start()
      peer.send({ type: 'sync', messages: [], more: false });
      peer.send({ type: 'error', code: 'rate_limited', message: 'watching too fast', cid: null });
      assert.deepEqual(await peer.recv(), watch);
      peer.send({ type: 'presence', users: [{ user_id: PEER, online: true, last_seen: null },
        { user_id: 3, online: false, last_seen: 5 }, { user_id: 'x', online: 1 }] });
      peer.send({ type: 'typing', from: PEER, to: ME });
      peer.send({ type: 'typing', from: 3, group: 7 });
      peer.send({ type: 'typing', from: 'someone', to: ME });
      assert.deepEqual(await peer.recv(), { type: 'typing', to: PEER });
      assert.deepEqual(await peer.recv(), { type: 'typing', group: 7 });
      assert.deepEqual(await peer.recv(), { type: 'typing', to: PEER }); // the next interval
      peer.ws.close(1011, 'gone');
    },
    async (peer) => {
      await peer.expectSync(0);
      assert.deepEqual(await peer.recv(), watch); // not asked again: remembered
      peer.send({ type: 'sync', messages: [], more: false });
      assert.deepEqual(await peer.recv(), { type: 'presence', watch: [] });
      cleared = true;
    },
  ]);
  const { chat, events } = client(server.url, { typingIntervalMs: 300 });
  assert.equal(chat.typing({ to: PEER }), false, 'not connected: nothing to send');
  chat.watchPresence([PEER, 3, PEER]);
  assert.deepEqual(chat.watching, [PEER, 3]);
  assert.throws(() => chat.watchPresence(Array.from({ length: 501 }, (_, i) => i + 1)), RangeError);
  assert.throws(() => chat.watchPresence([0]), TypeError);
  await chat.start();
  await until(() => events.some((e) => e.kind === 'frame'));
  assert.deepEqual(events.filter((e) => e.kind === 'presence').map((e) => e.users), [[
    { user_id: PEER, online: true, last_seen: null }, { user_id: 3, online: false, last_seen: 5 }]]);
  assert.deepEqual(events.filter((e) => e.kind === 'typing').map((e) => [e.from, e.conversation]),
    [[PEER, { peer: PEER }], [3, { group: 7 }]]);
  assert.equal(events.find((e) => e.kind === 'frame').frame.from, 'someone');

  const sentAt = Date.now();
  assert.equal(chat.typing({ to: PEER }), true);
  assert.equal(chat.typing({ to: PEER }), false, 'the same conversation within the interval');
  assert.equal(chat.typing({ group: 7 }), true, 'another conversation');
  await until(() => chat.typing({ to: PEER }), 5_000, 'the next interval');
  assert.ok(Date.now() - sentAt >= 300);

  await until(() => server.connectedAt.length === 2 && chat.connected, 10_000, 'reconnected');
  chat.watchPresence([]);
  await until(() => cleared || server.failures.length > 0, 10_000, 'the watch set cleared');
  chat.close();
  server.close();
  assert.deepEqual(server.failures, []);
});
