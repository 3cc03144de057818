// The client against a real `im serve` killed (SIGKILL) and drained (SIGTERM) mid-stream: nothing acked
// is lost, nothing is handed over twice, every inbox stays gapless.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, HttpApi, MemoryStore } from '../dist/index.js';
import { ImServer, frameLog, sleep, until } from './support.mjs';

const COUNT = 200;
const SEND_EVERY_MS = 25; // under the server's default rate of 50 sends per second
const OPTIONS = { reconnect: { firstDelayMs: 200, maxDelayMs: 2000 } };

async function signup(http, email) {
  await http.register(email, 'correct horse', email.split('@')[0]);
  return http.login(email, 'correct horse');
}

function recorded(chat) {
  const events = [];
  chat.on((event) => events.push(event));
  const messages = () => events.filter((e) => e.kind === 'message');
  return { events, messages };
}

function assertOnceAndGapless(messages, count) {
  const seqs = messages.map((e) => e.message.seq);
  assert.equal(new Set(seqs).size, seqs.length, 'handed over twice');
  assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i + 1));
}

test('a killed and a drained server lose nothing and double nothing', { timeout: 180_000 }, async () => {
  const server = await ImServer.start();
  try {
    const http = new HttpApi(server.url);
    const aliceLogin = await signup(http, 'alice@example.com');
    const bobLogin = await signup(http, 'bob@example.com');
    const log = frameLog();
    const bobStore = new MemoryStore();
    const alice = new ChatClient({ url: server.url, credentials: aliceLogin, store: new MemoryStore(), trace: log.trace, ...OPTIONS });
    let bob = new ChatClient({ url: server.url, credentials: bobLogin, store: bobStore, trace: log.trace, ...OPTIONS });
    const a = recorded(alice);
    const b = recorded(bob);
    await alice.start();
    await bob.start();

    const interruptions = (async () => {
      await until(() => b.messages().length >= COUNT / 3, 60_000, 'a third delivered');
      await server.kill();
      await server.start();
      await until(() => b.messages().length >= (2 * COUNT) / 3, 60_000, 'two thirds delivered');
      await server.stop();
      await server.start();
    })();
    const sent = [];
    for (let i = 0; i < COUNT; i += 1) {
      sent.push(alice.send(`m${i}`, { to: bobLogin.user_id }).done);
      await sleep(SEND_EVERY_MS);
    }
    await interruptions;
    const acked = await Promise.all(sent);
    await until(() => b.messages().length >= COUNT && a.messages().length >= COUNT, 60_000, 'everything delivered');

    assert.deepEqual(acked.map((m) => m.content), Array.from({ length: COUNT }, (_, i) => `m${i}`));
    assert.deepEqual(alice.outbox(), []);
    assertOnceAndGapless(a.messages(), COUNT);
    assertOnceAndGapless(b.messages(), COUNT);
    assert.ok([...a.events, ...b.events].some((e) => e.kind === 'reconnectRequested'), 'the drain told the clients');
    const stored = await http.history(bobLogin.token);
    assert.equal(new Set(stored.map((m) => m.cid)).size, COUNT, 'each cid stored once');
    assert.deepEqual(stored.map((m) => m.seq), Array.from({ length: COUNT }, (_, i) => i + 1));

    // Bob's client starts again from its store: only what came meanwhile is handed over.
    bob.close();
    for (let i = 0; i < 3; i += 1) await alice.send(`later ${i}`, { to: bobLogin.user_id }).done;
    bob = new ChatClient({ url: server.url, credentials: bobLogin, store: bobStore, trace: log.trace, ...OPTIONS });
    const again = recorded(bob);
    await bob.start();
    await until(() => again.messages().length >= 3 && again.events.some((e) => e.kind === 'synced'));
    assert.deepEqual(again.messages().map((e) => [e.message.seq, e.message.content]),
      [[COUNT + 1, 'later 0'], [COUNT + 2, 'later 1'], [COUNT + 3, 'later 2']]);
    alice.close();
    bob.close();
  } finally {
    await server.kill();
  }
});

test('a refused token ends the session unless the credentials can log in again', { timeout: 60_000 }, async () => {
  const server = await ImServer.start();
  try {
    const http = new HttpApi(server.url);
    const login = await signup(http, 'carol@example.com');
    const stale = { ...login, token: 'not-a-token' };
    const ended = new ChatClient({ url: server.url, credentials: stale, store: new MemoryStore(), ...OPTIONS });
    const events = recorded(ended).events;
    await ended.start();
    await until(() => events.some((e) => e.kind === 'sessionEnded'));
    ended.close();

    const logins = [stale, login];
    const renewed = new ChatClient({ url: server.url, credentials: async () => logins.shift(), store: new MemoryStore(), ...OPTIONS });
    await renewed.start();
    await until(() => renewed.connected);
    assert.equal(renewed.login.token, login.token);
    renewed.close();
  } finally {
    await server.kill();
  }
});

test('reconnectNow skips the rest of the backoff', { timeout: 60_000 }, async () => {
  const server = await ImServer.start();
  try {
    const login = await signup(new HttpApi(server.url), 'dave@example.com');
    // Equal jitter: the first wait after a lost connection is 30-60 s.
    const patient = { reconnect: { firstDelayMs: 60_000, maxDelayMs: 60_000 } };
    const chat = new ChatClient({ url: server.url, credentials: login, store: new MemoryStore(), ...patient });
    await chat.start();
    await until(() => chat.connected, 10_000, 'connected');
    await server.kill();
    await until(() => !chat.connected, 10_000, 'disconnected');
    await server.start();
    chat.reconnectNow();
    await until(() => chat.connected, 10_000, 'connected again without waiting out the backoff');
    chat.close();
  } finally {
    await server.kill();
  }
});
