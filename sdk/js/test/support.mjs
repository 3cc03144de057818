// Test support: a real `im serve` per test (started, killed, restarted), a scripted fake server, and
// a frame log that the Python suite checks against frames.json (IM_FRAME_LOG).
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocketServer } from 'ws';

const IM = process.env.IM_BIN ?? resolve(import.meta.dirname, '../../../.venv/bin/im');

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

export async function until(check, timeoutMs = 30_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** `im serve` on a free port with its own data directory; `kill`, `stop` (drain) and `start` again. */
export class ImServer {
  static async start() {
    const server = new ImServer(await freePort(), mkdtempSync(join(tmpdir(), 'im-sdk-')));
    await server.start();
    return server;
  }

  constructor(port, dataDir) {
    this.port = port;
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${port}`;
    this.process = null;
    this.log = '';
  }

  async start() {
    // A short drain window keeps the SIGTERM cases quick; reconnect frames still go out.
    const child = spawn(IM, ['serve', '--host', '127.0.0.1', '--port', String(this.port), '--data-dir', this.dataDir,
      '--drain-seconds', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => { this.log += chunk; });
    child.stderr.on('data', (chunk) => { this.log += chunk; });
    this.process = child;
    const exited = new Promise((done) => child.once('exit', done));
    this.exited = exited;
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`im serve exited: ${this.log}`);
      try {
        return (await fetch(`${this.url}/readyz`)).ok;
      } catch {
        return false;
      }
    }, 30_000, 'im serve to be ready');
  }

  async signal(name) {
    if (this.process === null) return;
    this.process.kill(name);
    await this.exited;
    this.process = null;
  }

  kill() { return this.signal('SIGKILL'); }

  stop() { return this.signal('SIGTERM'); }
}

/** Register `name`@example.test and log in. */
export async function signup(http, name) {
  const email = `${name}@example.test`;
  await http.register(email, 'long enough', name);
  return http.login(email, 'long enough');
}

/** Records frames as `trace`; with IM_FRAME_LOG set, appends them there as JSON lines. */
export function frameLog() {
  const frames = [];
  const trace = (direction, frame) => {
    frames.push({ direction, frame });
    if (process.env.IM_FRAME_LOG) appendFileSync(process.env.IM_FRAME_LOG, `${JSON.stringify({ direction, frame })}\n`);
  };
  return { frames, trace };
}

/** A WebSocket server whose n-th connection runs `scripts[n]` (the last one for any later). */
export async function fakeServer(scripts) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((done) => wss.once('listening', done));
  const state = { connectedAt: [], failures: [], url: `http://127.0.0.1:${wss.address().port}`, close: () => wss.close() };
  wss.on('connection', (ws) => {
    const number = state.connectedAt.length;
    state.connectedAt.push(Date.now());
    const queue = [];
    let waiting = null;
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (waiting) { const w = waiting; waiting = null; w(frame); } else queue.push(frame);
    });
    const peer = {
      number,
      ws,
      recv: (timeoutMs = 10_000) => queue.length ? Promise.resolve(queue.shift()) : new Promise((done, fail) => {
        const timer = setTimeout(() => fail(new Error('no frame from the client')), timeoutMs);
        waiting = (frame) => { clearTimeout(timer); done(frame); };
      }),
      send: (frame) => ws.send(JSON.stringify(frame)),
      async expectSync(after) {
        const frame = await peer.recv();
        if (frame.type !== 'sync' || frame.after !== after) throw new Error(`expected sync after ${after}: ${JSON.stringify(frame)}`);
      },
    };
    const script = scripts[Math.min(number, scripts.length - 1)];
    script(peer).catch((err) => state.failures.push(err));
  });
  return state;
}
