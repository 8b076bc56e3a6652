import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { parseClientHello, peekClientHello } from './index.js';
import type { Clock } from '../../shared/clock.js';

/** Captures the first flight a real node:tls client sends, by listening with a plain TCP server. */
async function captureClientHello(opts: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  try {
    const got = new Promise<Buffer>((resolve) => {
      server.once('connection', (s) => {
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          const all = Buffer.concat(chunks);
          if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
            resolve(all);
            s.destroy();
          }
        });
      });
    });
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    client.on('error', () => {});
    const bytes = await got;
    client.destroy();
    return bytes;
  } finally {
    server.close();
  }
}

/** Re-frames a single-record ClientHello into several records cut at the given handshake offsets. */
function refragment(hello: Buffer, cuts: number[]): Buffer {
  const header = hello.subarray(0, 5);
  const payload = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const points = [...new Set(cuts.map((c) => c % payload.length).filter((c) => c > 0))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, payload.length]) {
    const h = Buffer.from(header);
    h.writeUInt16BE(p - prev, 3);
    parts.push(h, payload.subarray(prev, p));
    prev = p;
  }
  return Buffer.concat(parts);
}

test('parses SNI and ALPN from a real node:tls ClientHello', async () => {
  const bytes = await captureClientHello({ servername: 'outbound_.8000_._.httpbin.default.svc.cluster.local', ALPNProtocols: ['istio-peer-exchange', 'istio'] });
  const r = parseClientHello(bytes);
  assert.equal(r.kind, 'client-hello');
  assert.ok(r.kind === 'client-hello');
  assert.equal(r.hello.sni, 'outbound_.8000_._.httpbin.default.svc.cluster.local');
  assert.deepEqual(r.hello.alpn, ['istio-peer-exchange', 'istio']);
  assert.equal(r.consumed, bytes.length);
});

test('a ClientHello without server_name or ALPN parses with sni undefined and empty alpn', async () => {
  const r = parseClientHello(await captureClientHello({}));
  assert.ok(r.kind === 'client-hello');
  assert.equal(r.hello.sni, undefined);
  assert.deepEqual(r.hello.alpn, []);
});

test('every strict prefix of a ClientHello needs more, in one record or split across many', async () => {
  const bytes = await captureClientHello({ servername: 'a.example', ALPNProtocols: ['h2'] });
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
      const framed = refragment(bytes, cuts);
      for (let n = 0; n < framed.length; n++) assert.equal(parseClientHello(framed.subarray(0, n)).kind, 'need-more', `prefix ${n}`);
      const whole = parseClientHello(framed);
      assert.ok(whole.kind === 'client-hello');
      assert.equal(whole.hello.sni, 'a.example');
      assert.deepEqual(whole.hello.alpn, ['h2']);
      assert.equal(whole.consumed, framed.length);
    }),
    { numRuns: 30 },
  );
});

test('plaintext and non-handshake input are classified, never thrown on', () => {
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).kind, 'not-tls');
  assert.equal(parseClientHello(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')).kind, 'not-tls');
  assert.equal(parseClientHello(Buffer.from([0x16, 0x01])).kind, 'not-tls');
  // A handshake record whose message is a ServerHello, not a ClientHello.
  assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00])).kind, 'invalid');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const r = parseClientHello(bytes);
      assert.ok(['need-more', 'not-tls', 'invalid', 'client-hello'].includes(r.kind));
    }),
  );
});

test('a ClientHello whose inner lengths overrun the message is invalid', async () => {
  const bytes = Buffer.from(await captureClientHello({ servername: 'b.example' }));
  // Claim a cipher suite list far longer than the message: the parser must stay inside its bounds.
  const sessionIdLength = bytes[5 + 4 + 2 + 32]!;
  bytes.writeUInt16BE(0xfffe, 5 + 4 + 2 + 32 + 1 + sessionIdLength);
  assert.equal(parseClientHello(bytes).kind, 'invalid');
});

async function socketPair(): Promise<{ client: net.Socket; server: net.Socket; close(): void }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  const server = await accepted;
  server.on('error', () => {});
  client.on('error', () => {});
  return { client, server, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

test('peekClientHello waits across TCP segments and returns every byte it read', async () => {
  const bytes = refragment(await captureClientHello({ servername: 'c.example', ALPNProtocols: ['istio'] }), [7, 40, 100]);
  const pair = await socketPair();
  try {
    const peek = peekClientHello(pair.server, { timeoutMs: 5000, maxBytes: 65536 });
    pair.client.setNoDelay(true);
    let sent = 0;
    for (const cut of [3, 9, 60, bytes.length]) {
      pair.client.write(bytes.subarray(sent, cut));
      sent = cut;
      await new Promise((r) => setImmediate(r));
    }
    pair.client.write('trailing application data');
    const r = await peek;
    assert.ok(r.ok);
    assert.equal(r.sni, 'c.example');
    assert.deepEqual(r.alpn, ['istio']);
    assert.ok(r.buffered.subarray(0, bytes.length).equals(bytes));
  } finally {
    pair.close();
  }
});

test('peekClientHello reports plaintext, oversize, early close and timeout as values', async () => {
  const fakeClock = (): Clock & { fire(): void } => {
    let fn: (() => void) | undefined;
    return { now: () => 0, setTimeout: (f) => ((fn = f), { cancel: () => (fn = undefined) }), fire: () => fn?.() };
  };
  const pair = await socketPair();
  try {
    const p = peekClientHello(pair.server, { timeoutMs: 5000, maxBytes: 1024 });
    pair.client.write('GET / HTTP/1.1\r\n\r\n');
    const r = await p;
    assert.ok(!r.ok);
    assert.equal(r.error, 'plaintext');
    assert.equal(r.buffered.toString(), 'GET / HTTP/1.1\r\n\r\n');
  } finally {
    pair.close();
  }
  const big = await socketPair();
  try {
    const p = peekClientHello(big.server, { timeoutMs: 5000, maxBytes: 64 });
    big.client.write(await captureClientHello({ servername: 'd.example' }));
    const r = await p;
    assert.ok(!r.ok && r.error === 'too-large');
  } finally {
    big.close();
  }
  const early = await socketPair();
  try {
    const p = peekClientHello(early.server, { timeoutMs: 5000, maxBytes: 1024 });
    early.client.end(Buffer.from([0x16, 0x03, 0x01]));
    const r = await p;
    assert.ok(!r.ok && r.error === 'closed');
  } finally {
    early.close();
  }
  const slow = await socketPair();
  try {
    const clock = fakeClock();
    const p = peekClientHello(slow.server, { timeoutMs: 10, maxBytes: 1024, clock });
    slow.client.write(Buffer.from([0x16, 0x03, 0x01]));
    await new Promise((r) => slow.server.once('data', r));
    clock.fire();
    const r = await p;
    assert.ok(!r.ok && r.error === 'timeout');
    assert.deepEqual([...r.buffered], [0x16, 0x03, 0x01]);
  } finally {
    slow.close();
  }
});
