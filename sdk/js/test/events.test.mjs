// Edits, recalls and reads against a real `im serve`: the sender's ack becomes its event, the other side
// gets the pushed events, a refusal rejects, and every seq is handed over once. Typing reaches the peer
// (private and group) once per interval; presence comes as a snapshot, then changes, and the watch set
// survives a server restart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, ChatClient, HttpApi, MemoryStore } from '../dist/index.js';
import { ImServer, frameLog, signup, until } from './support.mjs';

function recorded(chat) {
  const events = [];
  chat.on((event) => events.push(event));
  const seqs = () => events.flatMap((e) => (e.kind === 'message' ? [e.message.seq] : e.kind === 'event' ? [e.event.seq] : []));
  const presence = (userId) => events.filter((e) => e.kind === 'presence').flatMap((e) => e.users)
    .filter((p) => p.user_id === userId);
  return {
    events, seqs, presence,
    inbox: () => events.filter((e) => e.kind === 'event').map((e) => e.event),
    latest: (userId) => presence(userId).at(-1),
    typing: () => events.filter((e) => e.kind === 'typing'),
  };
}

test('edit, recall and read: acked, pushed, and refused', { timeout: 60_000 }, async () => {
  const server = await ImServer.start();
  const log = frameLog();
  const clients = [];
  try {
    const http = new HttpApi(server.url);
    const [annLogin, benLogin] = [await signup(http, 'ann'), await signup(http, 'ben')];
    const start = async (login) => {
      const chat = new ChatClient({ url: server.url, credentials: login, store: new MemoryStore(), trace: log.trace });
      clients.push(chat);
      const record = recorded(chat);
      await chat.start();
      await until(() => record.events.some((e) => e.kind === 'synced'), 10_000, 'synced');
      return [chat, record];
    };
    const [ann, a] = await start(annLogin);
    const [ben, b] = await start(benLogin);

    const hi = await ann.send('hi', { to: ben.userId }).done;
    const bye = await ann.send('bye', { to: ben.userId }).done;
    const edited = await ann.edit(hi, 'hi, edited');
    assert.equal(edited.id, hi.id);
    await ann.recall(bye);
    await until(() => b.inbox().length >= 2, 10_000, 'ben gets the edit and the recall');
    assert.deepEqual(b.inbox().map((e) => [e.type, e.id, e.from, e.to]),
      [['edit', hi.id, ann.userId, ben.userId], ['recall', bye.id, ann.userId, ben.userId]]);
    assert.equal(b.inbox()[0].content, 'hi, edited');
    assert.deepEqual(a.inbox().map((e) => [e.type, e.id, e.to]), [['edit', hi.id, ben.userId], ['recall', bye.id, ben.userId]]);

    assert.ok(ben.read({ peer: ann.userId }, bye.id));
    await until(() => a.inbox().some((e) => e.type === 'read'), 10_000, 'ann sees the read');
    assert.deepEqual(a.inbox().at(-1), { ...a.inbox().at(-1), type: 'read', by: ben.userId, peer: ben.userId, up_to: bye.id });
    await until(() => b.inbox().some((e) => e.type === 'read'), 10_000, 'ben sees his own read');

    const refusal = await ben.edit(hi, 'not mine').then(() => null, (err) => err);
    assert.ok(refusal instanceof ApiError && refusal.code === 'forbidden', String(refusal));
    assert.ok(b.events.some((e) => e.kind === 'requestFailed' && e.code === 'forbidden'));

    for (const r of [a, b]) {
      const seqs = r.seqs();
      assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: seqs.length }, (_, i) => i + 1));
    }
  } finally {
    for (const chat of clients) chat.close();
    await server.kill();
  }
});

const OPTIONS = { reconnect: { firstDelayMs: 200, maxDelayMs: 1000 } };

test('typing and presence between two clients; the watch is sent again after a restart', { timeout: 90_000 }, async () => {
  const server = await ImServer.start();
  const log = frameLog();
  const clients = [];
  try {
    const http = new HttpApi(server.url);
    const [annLogin, benLogin] = [await signup(http, 'ann'), await signup(http, 'ben')];
    const client = (login) => {
      const chat = new ChatClient({ url: server.url, credentials: login, store: new MemoryStore(), trace: log.trace, ...OPTIONS });
      clients.push(chat);
      return [chat, recorded(chat)];
    };
    const [ann, a] = client(annLogin);
    const [ben, b] = client(benLogin);
    const benId = benLogin.user_id;
    ann.watchPresence([benId]);
    await ann.start();
    await until(() => a.presence(benId).length === 1, 10_000, 'the snapshot');
    assert.deepEqual(a.latest(benId), { user_id: benId, online: false, last_seen: null });
    assert.deepEqual(await http.presence(annLogin.token, [benId]), [a.latest(benId)]);

    await ben.start();
    await until(() => a.latest(benId).online, 10_000, 'ben online');
    await until(() => ben.connected && ann.connected, 10_000, 'both synced');

    assert.ok(ben.typing({ to: ann.userId }));
    assert.ok(!ben.typing({ to: ann.userId }), 'once per interval');
    await until(() => a.typing().length === 1, 10_000, 'ann sees ben typing');
    assert.deepEqual(a.typing().map((e) => [e.from, e.conversation]), [[benId, { peer: benId }]]);
    const { group_id: group } = await http.createGroup(benLogin.token, 'team');
    await http.addMember(benLogin.token, group, ann.userId);
    assert.ok(ben.typing({ group }));
    await until(() => a.typing().length === 2, 10_000, 'ann sees ben typing in the group');
    assert.deepEqual(a.typing()[1].conversation, { group });
    assert.equal(b.typing().length, 0, "the typist's own connections are not told");

    const watches = () => log.frames.filter((f) => f.direction === 'out' && f.frame.type === 'presence'
      && f.frame.watch.includes(benId)).length;
    assert.equal(watches(), 1);
    await server.stop();
    await until(() => !ann.connected, 10_000, 'ann disconnected');
    await server.start();
    await until(() => watches() === 2 && a.presence(benId).length >= 3, 20_000, 'watched again after the restart');
    await until(() => a.latest(benId).online, 10_000, 'ben online again');

    ben.close();
    await until(() => !a.latest(benId).online, 10_000, 'ben offline');
    const seen = a.latest(benId).last_seen;
    assert.ok(Number.isSafeInteger(seen) && Math.abs(seen - Date.now()) < 60_000, `last_seen ${seen}`);
  } finally {
    for (const chat of clients) chat.close();
    await server.kill();
  }
});
