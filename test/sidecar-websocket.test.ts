/**
 * WebSocket through a sidecar pair over real mTLS, with the control plane's generated config (upgrade_configs
 * websocket on every HTTP connection manager): the 101 and the tunnel both ways (large messages under
 * backpressure, half-close), telemetry written when the tunnel closes, the route timeout replaced by the
 * stream idle timeout (SI), upgrades refused when not configured (403), non-101 answers relayed, h2c
 * ignored, CONNECT refused (404 NR), and keep-alive pools that never see a tunnel's connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createSidecar } from '../src/proxy/sidecar/index.js';
import { createMeshMetrics } from '../src/proxy/telemetry/index.js';
import type { ProxyXdsState, SidecarHandle as Sidecar } from '../src/proxy/sidecar/index.js';
import type { Listener } from '../src/xds/index.js';
import { EXTENSION_TYPE_URLS, typed } from '../src/xds/index.js';
import { createTestPki } from './proxy-certs.js';
import { recorder, request, startBackend, stateFor, svc, virtualService, workload } from './sidecar-mesh.js';
import type { Backend } from './sidecar-mesh.js';

const NS = 'chat';
const id = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;
const resources = [
  svc(NS, 'ws', 8080, 8080),
  workload(NS, 'ws-1', '127.81.1.2', { app: 'ws' }, { sa: 'ws' }),
  // A second service on the same workload, with a short route timeout.
  { ...svc(NS, 'slowws', 8081, 8081), spec: { selector: { app: 'ws' }, ports: [{ name: 'http', port: 8081, targetPort: 8081 }] } },
  svc(NS, 'client', 80, 80),
  workload(NS, 'client-1', '127.81.1.1', { app: 'client' }, { sa: 'client' }),
];
// A 200 ms route timeout: an upgraded stream must outlive it.
const config = { virtualServices: [virtualService(NS, 'slowws', { hosts: ['slowws'], http: [{ timeout: '0.2s', route: [{ destination: { host: 'slowws' } }] }] })] };
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// A minimal WebSocket codec (RFC 6455): unfragmented text/binary/close frames, client frames masked.
function frame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, body]);
}

/** Feeds bytes, calls back with each complete frame's opcode and (unmasked) payload. */
function frameReader(onFrame: (opcode: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const masked = (buf[1]! & 0x80) !== 0;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const keyAt = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i]! ^= buf[keyAt + (i & 3)]!;
      const opcode = buf[0]! & 0x0f;
      buf = buf.subarray(off + len);
      onFrame(opcode, payload);
    }
  };
}

/** The app: answers plain requests with what it saw, echoes WebSocket messages, says "bye" after the client's FIN. */
/** Upgraded app connections (the HTTP server no longer tracks them), closed after the tests. */
const appSockets = new Set<net.Socket>();
const FLOOD_BYTES = 64 * 1024 * 1024;
const flood = { written: 0 };

/** Sends FLOOD_BYTES in 64 KiB binary messages as fast as the connection takes them (its own backpressure). */
function floodSocket(sock: net.Socket): void {
  const piece = frame(2, Buffer.alloc(64 * 1024, 1), false);
  const pump = (): void => {
    while (flood.written < FLOOD_BYTES) {
      flood.written += 64 * 1024;
      if (!sock.write(piece)) return void sock.once('drain', pump);
    }
  };
  pump();
}

function attachWebSocketEcho(b: Backend, upgrades: string[]): void {
  b.server.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
    upgrades.push(req.url ?? '');
    if (req.url === '/refuse') {
      sock.end('HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nnot today');
      return;
    }
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}${WS_GUID}`).digest('base64');
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    appSockets.add(sock);
    sock.once('close', () => appSockets.delete(sock));
    if (req.url === '/flood') {
      sock.on('end', () => sock.end());
      return floodSocket(sock);
    }
    const read = frameReader((opcode, payload) => {
      if (payload.toString() === 'reset') return sock.destroy();
      if (!sock.write(frame(opcode, payload, false))) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
    });
    if (head.length) read(head);
    sock.on('data', read);
    sock.on('end', () => sock.end(frame(1, Buffer.from('bye'), false)));
    sock.on('error', () => {});
  });
}

interface WsClient {
  sock: net.Socket;
  status: number;
  head: string;
  /** Bytes written after the request head and read after the response head (what the proxy should count). */
  sent: number;
  received: number;
  send(payload: Buffer | string, binary?: boolean): void;
  next(): Promise<Buffer>;
  closed: Promise<void>;
}

/** Opens a WebSocket to `url` through the proxy at `via` with a raw upgrade request. */
function connectWs(via: { host: string; port: number }, host: string, path: string, extraHead = ''): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(via);
    const key = randomBytes(16).toString('base64');
    const messages: Buffer[] = [];
    const waiters: Array<{ resolve: (b: Buffer) => void; reject: (e: Error) => void }> = [];
    let buf = Buffer.alloc(0);
    let client: WsClient | undefined;
    const read = frameReader((_op, payload) => {
      const w = waiters.shift();
      if (w) w.resolve(payload);
      else messages.push(payload);
    });
    let isClosed = false;
    const closed = new Promise<void>((r) =>
      sock.once('close', () => {
        isClosed = true;
        for (const w of waiters.splice(0)) w.reject(new Error('the tunnel closed before the message came'));
        r();
      }),
    );
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      if (client) {
        client.received += chunk.length;
        return read(chunk);
      }
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const rest = buf.subarray(end + 4);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      client = {
        sock,
        status,
        head,
        sent: 0,
        received: status === 101 ? rest.length : 0,
        send(payload, binary = false) {
          const f = frame(binary ? 2 : 1, Buffer.from(payload), true);
          this.sent += f.length;
          sock.write(f);
        },
        next: () =>
          new Promise((resolve, reject) => {
            if (messages.length) resolve(messages.shift()!);
            else if (isClosed) reject(new Error('the tunnel is closed'));
            else waiters.push({ resolve, reject });
          }),
        closed,
      };
      if (status === 101) {
        const accept = createHash('sha1').update(`${key}${WS_GUID}`).digest('base64');
        if (!head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) return reject(new Error(`bad accept in ${head}`));
        if (rest.length) read(rest);
      } else client.head += `\r\n\r\n${rest.toString()}`;
      resolve(client);
    });
    sock.write(
      `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${key}\r\n${extraHead}\r\n`,
    );
  });
}

/** Sends raw bytes and collects the reply until the proxy closes the connection. */
function rawExchange(via: { host: string; port: number }, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(via, () => s.write(text));
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString('latin1')));
    s.on('close', () => resolve(data));
    s.on('error', reject);
  });
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The state with every HTTP connection manager's fields changed by `edit` (upgrade_configs, stream_idle_timeout). */
function withHcm(state: ProxyXdsState, edit: (hcm: Record<string, unknown>) => void): ProxyXdsState {
  const listeners = new Map<string, Listener>();
  for (const [name, l] of state.listeners) {
    const copy = structuredClone(l);
    for (const chain of [...(copy.filter_chains ?? []), ...(copy.default_filter_chain ? [copy.default_filter_chain] : [])]) {
      for (const f of chain.filters ?? []) if (f.name === 'envoy.filters.network.http_connection_manager') edit(f.typed_config as unknown as Record<string, unknown>);
    }
    listeners.set(name, copy);
  }
  return { ...state, listeners };
}

describe('WebSocket through the sidecar pair', () => {
  const sidecars: Sidecar[] = [];
  const backends: Backend[] = [];
  const upgrades: string[] = [];
  const clientLog = recorder();
  const serverLog = recorder();
  const clientRegistry = new Registry();
  let client: Sidecar;
  let clientState: ProxyXdsState;
  let via: { host: string; port: number };
  let plainSeen: http.IncomingHttpHeaders | undefined;

  before(async () => {
    const pki = await createTestPki();
    const [clientCert, wsCert] = await Promise.all([pki.issue({ spiffe: id('client') }), pki.issue({ spiffe: id('ws') })]);
    for (const port of [8080, 8081]) {
      const b = await startBackend('127.81.2.2', port, 'ws', (req, res) => {
        plainSeen = req.headers;
        req.resume();
        res.end(`plain ${req.url}`);
      });
      attachWebSocketEcho(b, upgrades);
      backends.push(b);
    }
    client = createSidecar({
      credentials: () => ({ certChainPem: clientCert.cert, keyPem: clientCert.key, rootsPem: pki.rootPem, spiffeId: id('client') }),
      identity: { cluster: 'c1', namespace: NS, workload: 'client', network: 'n1' },
      accessLog: clientLog.log,
      metrics: createMeshMetrics(clientRegistry),
    });
    clientState = stateFor(resources, { ip: '127.81.1.1', pod: 'client-1', namespace: NS, serviceAccount: 'client', labels: { app: 'client' }, appHost: '127.81.2.1' }, config);
    assert.deepEqual(client.apply(clientState).problems, []);
    const server = createSidecar({
      credentials: () => ({ certChainPem: wsCert.cert, keyPem: wsCert.key, rootsPem: pki.rootPem, spiffeId: id('ws') }),
      identity: { cluster: 'c1', namespace: NS, workload: 'ws', network: 'n1' },
      accessLog: serverLog.log,
    });
    assert.deepEqual(server.apply(stateFor(resources, { ip: '127.81.1.2', pod: 'ws-1', namespace: NS, serviceAccount: 'ws', labels: { app: 'ws' }, appHost: '127.81.2.2' }, config)).problems, []);
    sidecars.push(client, server);
    via = { host: '127.81.1.1', port: (await client.listening()).get('127.81.1.1_15001')!.port };
    await server.listening();
  });

  after(async () => {
    await Promise.all(sidecars.map((s) => s.close()));
    for (const s of appSockets) s.destroy();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('101 through both sidecars, echo both ways incl. a 4 MiB message, half-close passes through, one log line per side at close', async () => {
    const ws = await connectWs(via, 'ws.chat:8080', '/echo?room=1');
    assert.equal(ws.status, 101);
    assert.match(ws.head, /^upgrade: websocket$/im);
    assert.match(ws.head, /^connection: upgrade$/im);
    ws.send('hello');
    assert.equal((await ws.next()).toString(), 'hello');
    const big = randomBytes(4 * 1024 * 1024);
    ws.send(big, true);
    ws.send('after');
    assert.ok((await ws.next()).equals(big), 'the large message came back intact');
    assert.equal((await ws.next()).toString(), 'after');
    const clientRecords = clientLog.records.length;
    assert.equal(clientLog.records.filter((r) => r.response_code === 101).length, 0, 'no log line while the tunnel is open');
    // Our FIN reaches the app through both sidecars; the app still answers, then closes.
    ws.sock.end();
    assert.equal((await ws.next()).toString(), 'bye');
    await ws.closed;
    await waitFor(() => clientLog.records.length > clientRecords && serverLog.records.some((r) => r.response_code === 101));
    const c = clientLog.records.at(-1)!;
    assert.equal(c.response_code, 101);
    assert.equal(c.response_flags, '-');
    assert.equal(c.method, 'GET');
    assert.equal(c.path, '/echo?room=1');
    assert.equal(c.upstream_cluster, 'outbound|8080||ws.chat.svc.cluster.local');
    assert.equal(c.upstream_host, '127.81.1.2:8080');
    assert.equal(c.bytes_received, ws.sent, 'tunnel bytes from the client');
    assert.equal(c.bytes_sent, ws.received, 'tunnel bytes to the client');
    assert.ok(c.duration >= 0);
    const s = serverLog.records.find((r) => r.response_code === 101)!;
    assert.equal(s.upstream_cluster, 'inbound|8080||');
    assert.equal(s.bytes_received, ws.sent);
    assert.equal(s.request_id, c.request_id);
    const total = (await clientRegistry.getSingleMetric('istio_requests_total')!.get()).values.find((v) => String(v.labels.response_code) === '101');
    assert.equal(total?.value, 1);
    assert.equal(total?.labels.destination_service, 'ws.chat.svc.cluster.local');
  });

  test('backpressure: a client that stops reading stops the app writing, nothing piles up in the sidecars', async () => {
    const ws = await connectWs(via, 'ws.chat:8080', '/flood');
    assert.equal(ws.status, 101);
    ws.sock.pause();
    await new Promise((r) => setTimeout(r, 400));
    const whilePaused = flood.written;
    assert.ok(whilePaused < FLOOD_BYTES / 2, `the app got ${whilePaused} bytes out while the client read nothing`);
    let got = 0;
    const all = new Promise<void>((resolve) => {
      const count = (): void => {
        ws.next().then((m) => {
          got += m.length;
          if (got >= FLOOD_BYTES) resolve();
          else count();
        }, resolve);
      };
      count();
    });
    ws.sock.resume();
    await all;
    assert.equal(got, FLOOD_BYTES);
    ws.sock.end();
    await ws.closed;
    await waitFor(() => clientLog.records.some((r) => r.path === '/flood'));
    await waitFor(() => serverLog.records.some((r) => r.path === '/flood'));
  });

  test('the tunnel outlives the route timeout; ordinary requests meanwhile use other pooled connections', async () => {
    const ws = await connectWs(via, 'slowws.chat:8081', '/slow');
    assert.equal(ws.status, 101);
    for (let i = 0; i < 3; i++) {
      const r = await request(via, 'http://slowws.chat:8081/plain');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'plain /plain');
    }
    await new Promise((r) => setTimeout(r, 400));
    ws.send('still here');
    assert.equal((await ws.next()).toString(), 'still here');
    ws.sock.destroy();
    await waitFor(() => clientLog.records.some((r) => r.response_code === 101 && r.path === '/slow'));
    // The tunnel's connections never went back to a pool: the next requests are clean HTTP exchanges.
    for (let i = 0; i < 3; i++) assert.equal((await request(via, 'http://slowws.chat:8081/after')).body, 'plain /after');
    assert.equal(clientLog.records.find((r) => r.path === '/slow')!.response_flags, '-');
  });

  test('the app resetting its connection tears down the tunnel to the client', async () => {
    const ws = await connectWs(via, 'ws.chat:8080', '/reset');
    assert.equal(ws.status, 101);
    ws.send('reset');
    await ws.closed;
    await waitFor(() => clientLog.records.some((r) => r.path === '/reset'));
    assert.equal(clientLog.records.find((r) => r.path === '/reset')!.response_code, 101);
  });

  test('a non-101 answer to an upgrade is relayed as a normal response', async () => {
    const ws = await connectWs(via, 'ws.chat:8080', '/refuse');
    assert.equal(ws.status, 426);
    assert.match(ws.head, /not today$/);
    await ws.closed;
    assert.equal((await request(via, 'http://ws.chat:8080/next')).body, 'plain /next');
  });

  test('h2c upgrades are ignored: the request proceeds as HTTP/1.1 without the upgrade headers', async () => {
    const before = upgrades.length;
    const r = await request(via, 'http://ws.chat:8080/h2c', { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'plain /h2c');
    assert.equal(upgrades.length, before);
    assert.equal(plainSeen?.upgrade, undefined);
    assert.equal(plainSeen?.['http2-settings'], undefined);
  });

  test('CONNECT gets 404 NR', async () => {
    const reply = await rawExchange(via, 'CONNECT ws.chat:8080 HTTP/1.1\r\nhost: ws.chat:8080\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 404 /);
    const rec = clientLog.records.at(-1)!;
    assert.equal(rec.response_code, 404);
    assert.equal(rec.response_flags, 'NR');
    assert.equal(rec.method, 'CONNECT');
  });

  test('an idle tunnel is closed by the stream idle timeout and logged with SI', async () => {
    client.apply(withHcm(clientState, (h) => (h.stream_idle_timeout = { seconds: 0, nanos: 300_000_000 })));
    try {
      const ws = await connectWs(via, 'ws.chat:8080', '/idle');
      assert.equal(ws.status, 101);
      ws.send('ping');
      assert.equal((await ws.next()).toString(), 'ping');
      const opened = Date.now();
      await ws.closed;
      assert.ok(Date.now() - opened >= 250, 'closed by the idle timer, not at once');
      await waitFor(() => clientLog.records.some((r) => r.path === '/idle'));
      const rec = clientLog.records.find((r) => r.path === '/idle')!;
      assert.equal(rec.response_code, 101);
      assert.equal(rec.response_flags, 'SI');
    } finally {
      assert.deepEqual(client.apply(clientState).problems, []);
    }
  });

  test('upgrades not enabled on the connection manager get 403 and never reach the app', async () => {
    const before = upgrades.length;
    client.apply(withHcm(clientState, (h) => delete h.upgrade_configs));
    try {
      const ws = await connectWs(via, 'ws.chat:8080', '/denied');
      assert.equal(ws.status, 403);
      await ws.closed;
      assert.equal(clientLog.records.at(-1)!.response_code, 403);
      client.apply(withHcm(clientState, (h) => (h.upgrade_configs = [{ upgrade_type: 'websocket', enabled: { value: false } }])));
      assert.equal((await connectWs(via, 'ws.chat:8080', '/denied')).status, 403);
      assert.equal(upgrades.length, before);
    } finally {
      assert.deepEqual(client.apply(clientState).problems, []);
    }
    const again = await connectWs(via, 'ws.chat:8080', '/allowed-again');
    assert.equal(again.status, 101);
    again.sock.destroy();
  });

  test('an upgrade to a cluster that speaks HTTP/2 upstream (h2UpgradePolicy) is refused with 403, not sent', async () => {
    const before = upgrades.length;
    const clusters = new Map(clientState.clusters);
    for (const [name, c] of clusters) {
      if (!name.startsWith('outbound|8080||')) continue;
      clusters.set(name, {
        ...structuredClone(c),
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(EXTENSION_TYPE_URLS.httpProtocolOptions, { explicit_http_config: { http2_protocol_options: {} } }),
        },
      });
    }
    assert.deepEqual(client.apply({ ...clientState, clusters }).problems, []);
    try {
      const ws = await connectWs(via, 'ws.chat:8080', '/over-h2');
      assert.equal(ws.status, 403);
      await ws.closed;
      assert.equal(upgrades.length, before, 'the app never saw the upgrade');
    } finally {
      assert.deepEqual(client.apply(clientState).problems, []);
    }
  });
});
