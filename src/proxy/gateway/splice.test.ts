import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spliceSockets } from './index.js';
import type { Clock } from '../../shared/clock.js';
import { createFakeClock as manualClock } from '../../../test/helpers/fake-clock.js';



async function listen(onConn: (s: net.Socket) => void): Promise<{ port: number; close(): void }> {
  const srv = net.createServer({ allowHalfOpen: true }, onConn);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

interface Rig {
  client: net.Socket;
  server: Promise<net.Socket>;
  down: net.Socket;
  up: net.Socket;
  done: ReturnType<typeof spliceSockets>;
  close(): void;
}

async function rig(clock: Clock, idleTimeoutMs = 60_000, initial = Buffer.alloc(0)): Promise<Rig> {
  let resolveServer!: (s: net.Socket) => void;
  const server = new Promise<net.Socket>((r) => (resolveServer = r));
  const backend = await listen((s) => resolveServer(s));
  let resolveDown!: (s: net.Socket) => void;
  const downP = new Promise<net.Socket>((r) => (resolveDown = r));
  const front = await listen((s) => {
    s.pause();
    resolveDown(s);
  });
  const client = net.connect({ port: front.port, host: '127.0.0.1', allowHalfOpen: true });
  const down = await downP;
  const up = net.connect({ port: backend.port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => up.once('connect', r));
  client.on('error', () => {});
  void server.then((s) => s.on('error', () => {}));
  const done = spliceSockets(down, up, initial, { idleTimeoutMs, clock });
  return {
    client,
    server,
    down,
    up,
    done,
    close: () => {
      client.destroy();
      void server.then((s) => s.destroy());
      backend.close();
      front.close();
    },
  };
}

const collect = (s: net.Socket): Promise<string> =>
  new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('end', () => resolve(text));
  });

test('initial bytes go first, and a FIN each way is passed through while the other way stays open', async () => {
  const r = await rig(manualClock(), 60_000, Buffer.from('hello '));
  try {
    const server = await r.server;
    const serverGot = collect(server);
    r.client.end('world');
    assert.equal(await serverGot, 'hello world');
    // The client half-closed, yet the server can still answer.
    const clientGot = collect(r.client);
    server.end('late reply');
    assert.equal(await clientGot, 'late reply');
    const outcome = await r.done;
    assert.equal(outcome.idleTimeout, false);
  } finally {
    r.close();
  }
});

test('a reset on one side resets the other', async () => {
  const r = await rig(manualClock());
  try {
    const server = await r.server;
    // The client allows half-open, so the proxy's close shows up as 'end' (or a reset as 'close').
    const clientSawClose = new Promise((res) => (r.client.once('end', res), r.client.once('close', res)));
    r.client.resume();
    server.resetAndDestroy();
    const outcome = await r.done;
    await clientSawClose;
    assert.match(outcome.upstreamError ?? '', /ECONNRESET/);
    assert.equal(r.down.destroyed, true);
  } finally {
    r.close();
  }
});

test('the idle timer closes a quiet pair but not one with traffic', async () => {
  const clock = manualClock();
  const r = await rig(clock, 1000);
  try {
    const server = await r.server;
    clock.advance(600);
    const got = new Promise((res) => server.once('data', res));
    r.client.write('ping');
    await got;
    clock.advance(600); // 1200 since start, 600 since traffic: still open
    assert.equal(r.down.destroyed, false);
    clock.advance(500);
    const outcome = await r.done;
    assert.equal(outcome.idleTimeout, true);
  } finally {
    r.close();
  }
});

test('a slow reader applies backpressure instead of buffering without bound', async () => {
  const r = await rig(manualClock());
  try {
    const server = await r.server;
    server.pause(); // the backend stops reading
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    const pump = (): void => {
      while (r.client.write(chunk)) written += chunk.length;
      written += chunk.length;
    };
    r.client.on('drain', pump);
    pump();
    // Kernel buffers fill at their own pace: wait (bounded) until the whole chain is stuck, i.e. the proxy
    // has stopped reading and the client cannot write, on several consecutive checks.
    let stuck = 0;
    for (let i = 0; i < 500 && stuck < 5; i++) {
      await new Promise((res) => setTimeout(res, 10));
      stuck = r.down.readableFlowing === false && r.client.writableLength > 0 ? stuck + 1 : 0;
    }
    assert.equal(stuck, 5, 'the proxy stopped reading from the client');
    const heldByProxy = r.up.writableLength + r.down.readableLength;
    assert.ok(heldByProxy < 1024 * 1024, `proxy holds ${heldByProxy} bytes`);
    assert.ok(written > 1024 * 1024, `only ${written} bytes were offered`);
    r.client.off('drain', pump);
  } finally {
    r.close();
  }
});
