import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { createSniPassthroughGateway } from '../src/proxy/gateway/index.js';
import { outboundSni } from '../src/xds/index.js';
import type { OutboundSni } from '../src/xds/index.js';
import type { Endpoint, GatewayTcpEvent, SniPassthroughGateway } from '../src/proxy/gateway/index.js';
import type { AccessLogRecord } from '../src/proxy/telemetry/index.js';
import { createTestPki } from './proxy-certs.js';
import { manualClock } from './proxy-clock.js';
import type { Leaf, TestPki } from './proxy-certs.js';

const SLEEP_ID = 'spiffe://cluster.local/ns/sample/sa/sleep';

interface Backend {
  name: string;
  endpoint: Endpoint;
  accepted: number;
  server: tls.Server;
}

let pki: TestPki;
let clientLeaf: Leaf;
const backends: Backend[] = [];

/** A TLS echo server demanding a client certificate; it first reports who it is and whom it sees. */
async function startBackend(name: string, spiffe: string): Promise<Backend> {
  const leaf = await pki.issue({ spiffe });
  const backend: Backend = { name, endpoint: { address: '127.0.0.1', port: 0 }, accepted: 0, server: undefined as unknown as tls.Server };
  backend.server = tls.createServer(
    { key: leaf.key, cert: leaf.cert, ca: [pki.rootPem], requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['istio'], allowHalfOpen: true },
    (s) => {
      backend.accepted++;
      const peer = s.getPeerCertificate();
      s.write(JSON.stringify({ backend: name, peer: peer.subjectaltname, alpn: s.alpnProtocol, sni: (s as unknown as { servername: string }).servername }) + '\n');
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end('bye\n'));
      s.on('error', () => {});
    },
  );
  await new Promise<void>((r) => backend.server.listen(0, '127.0.0.1', r));
  backend.endpoint.port = (backend.server.address() as net.AddressInfo).port;
  backends.push(backend);
  return backend;
}

async function deadEndpoint(): Promise<Endpoint> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return { address: '127.0.0.1', port };
}

interface Session {
  hello: { backend: string; peer: string; alpn: string; sni: string };
  echoed: Buffer;
  trailer: string;
}

/** A mutual-TLS client like a sidecar: SNI names the cluster, the server's SPIFFE ID is checked. */
function dialThrough(port: number, servername: string | undefined, expectId: string, payload: Buffer): Promise<Session> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ...(servername === undefined ? {} : { servername }),
      ca: [pki.rootPem],
      key: clientLeaf.key,
      cert: clientLeaf.cert,
      ALPNProtocols: ['istio-peer-exchange', 'istio'],
      checkServerIdentity: (_host, cert) => (cert.subjectaltname?.includes(`URI:${expectId}`) ? undefined : new Error(`server is ${cert.subjectaltname}`)),
    });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('secureConnect', () => {
      s.write(payload);
      // Half-close: the backend answers our FIN with a trailer, which must still reach us.
      s.end();
    });
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(10);
      if (nl < 0) return reject(new Error('connection closed before the backend spoke'));
      const rest = all.subarray(nl + 1);
      resolve({
        hello: JSON.parse(all.subarray(0, nl).toString()) as Session['hello'],
        echoed: rest.subarray(0, payload.length),
        trailer: rest.subarray(payload.length).toString(),
      });
    });
  });
}

/** Resolves when the gateway closes a connection it refused; returns what the client got back. */
function expectRefused(connect: () => net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = connect();
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

interface Gw {
  gw: SniPassthroughGateway;
  port: number;
  logs: AccessLogRecord[];
  nextLog(): Promise<AccessLogRecord>;
}

const gateways: SniPassthroughGateway[] = [];
async function startGateway(resolve: (t: OutboundSni) => readonly Endpoint[] | undefined): Promise<Gw> {
  const logs: AccessLogRecord[] = [];
  const waiters: ((r: AccessLogRecord) => void)[] = [];
  let read = 0;
  const gw = createSniPassthroughGateway({
    port: 0,
    host: '127.0.0.1',
    resolve,
    connectTimeoutMs: 2000,
    onLog: (r) => {
      logs.push(r);
      waiters.shift()?.(r);
    },
  });
  gateways.push(gw);
  const { port } = await gw.listen();
  return {
    gw,
    port,
    logs,
    nextLog: () => (read < logs.length ? Promise.resolve(logs[read++]!) : new Promise((r) => waiters.push((x) => (read++, r(x))))),
  };
}

let table: Map<string, Endpoint[]>;
let httpbin: Backend;
let httpbin2: Backend;
let reviewsV1: Backend;
let reviewsV2: Backend;
const httpbinId = 'spiffe://cluster.local/ns/default/sa/httpbin';
const reviewsId = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const httpbinSni = outboundSni(8000, '', 'httpbin.default.svc.cluster.local');

before(async () => {
  pki = await createTestPki();
  clientLeaf = await pki.issue({ spiffe: SLEEP_ID });
  httpbin = await startBackend('httpbin-a', httpbinId);
  httpbin2 = await startBackend('httpbin-b', httpbinId);
  reviewsV1 = await startBackend('reviews-v1', reviewsId);
  reviewsV2 = await startBackend('reviews-v2', reviewsId);
  table = new Map([
    ['outbound|8000||httpbin.default.svc.cluster.local', [httpbin.endpoint, httpbin2.endpoint]],
    ['outbound|9080|v1|reviews.bookinfo.svc.cluster.local', [reviewsV1.endpoint]],
    ['outbound|9080|v2|reviews.bookinfo.svc.cluster.local', [reviewsV2.endpoint]],
    ['outbound|9080||reviews.bookinfo.svc.cluster.local', [reviewsV1.endpoint, reviewsV2.endpoint]],
  ]);
});

after(async () => {
  for (const g of gateways) await g.close();
  for (const b of backends) await new Promise((r) => b.server.close(r));
});

test('routes by SNI without terminating: the backend sees the client certificate, ALPN and SNI', async () => {
  const g = await startGateway((t) => table.get(t.clusterName));
  const payload = randomBytes(200_000);
  const v1 = await dialThrough(g.port, outboundSni(9080, 'v1', 'reviews.bookinfo.svc.cluster.local'), reviewsId, payload);
  assert.equal(v1.hello.backend, 'reviews-v1');
  assert.equal(v1.hello.peer, `URI:${SLEEP_ID}`);
  assert.equal(v1.hello.alpn, 'istio');
  assert.equal(v1.hello.sni, 'outbound_.9080_.v1_.reviews.bookinfo.svc.cluster.local');
  assert.ok(v1.echoed.equals(payload));
  assert.equal(v1.trailer, 'bye\n');
  const v2 = await dialThrough(g.port, 'outbound_.9080_.v2_.reviews.bookinfo.svc.cluster.local', reviewsId, Buffer.from('x'));
  assert.equal(v2.hello.backend, 'reviews-v2');
  const hb = await dialThrough(g.port, httpbinSni, httpbinId, Buffer.from('y'));
  assert.match(hb.hello.backend, /^httpbin-/);

  const log = await g.nextLog();
  assert.equal(log.requested_server_name, 'outbound_.9080_.v1_.reviews.bookinfo.svc.cluster.local');
  assert.equal(log.upstream_cluster, 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local');
  assert.equal(log.upstream_host, `127.0.0.1:${reviewsV1.endpoint.port}`);
  assert.equal(log.response_flags, '-');
  assert.ok(log.bytes_received > payload.length, 'bytes_received counts the client bytes');
  assert.ok(log.bytes_sent > payload.length, 'bytes_sent counts the bytes back to the client');
  assert.match(log.downstream_remote_address ?? '', /^127\.0\.0\.1:\d+$/);
  assert.ok(!Number.isNaN(Date.parse(log.start_time)));
});

test('plaintext, missing SNI, malformed SNI and unknown hosts are refused with NR; no backend is dialled', async () => {
  const g = await startGateway((t) => table.get(t.clusterName));
  const acceptedBefore = backends.reduce((n, b) => n + b.accepted, 0);

  const plain = await expectRefused(() => net.connect(g.port, '127.0.0.1', function (this: net.Socket) {
    this.write('GET /status/200 HTTP/1.1\r\nHost: httpbin\r\n\r\n');
  }));
  assert.equal(plain.length, 0, 'the gateway never answers plaintext');
  let log = await g.nextLog();
  assert.equal(log.response_flags, 'NR');
  assert.equal(log.requested_server_name, null);

  const tlsOpts = { host: '127.0.0.1', port: g.port, ca: [pki.rootPem], key: clientLeaf.key, cert: clientLeaf.cert };
  await expectRefused(() => tls.connect(tlsOpts)); // an IP host: node sends no SNI
  log = await g.nextLog();
  assert.equal(log.response_flags, 'NR');
  assert.equal(log.requested_server_name, null);

  await expectRefused(() => tls.connect({ ...tlsOpts, servername: 'httpbin.default.svc.cluster.local' }));
  log = await g.nextLog();
  assert.equal(log.response_flags, 'NR');
  assert.equal(log.requested_server_name, 'httpbin.default.svc.cluster.local');

  await expectRefused(() => tls.connect({ ...tlsOpts, servername: 'outbound_.8000_._.nope.default.svc.cluster.local' }));
  log = await g.nextLog();
  assert.equal(log.response_flags, 'NR');
  assert.equal(log.requested_server_name, 'outbound_.8000_._.nope.default.svc.cluster.local');
  assert.equal(log.upstream_host, null);

  assert.equal(backends.reduce((n, b) => n + b.accepted, 0), acceptedBefore);
});

test('a refused endpoint is skipped for the next one; all down is UF with the reason; none is UH', async () => {
  const dead = await deadEndpoint();
  const g = await startGateway((t) =>
    t.fqdn === 'httpbin.default.svc.cluster.local' ? [dead, httpbin.endpoint] : t.fqdn === 'empty.default.svc.cluster.local' ? [] : t.fqdn === 'down.default.svc.cluster.local' ? [dead] : undefined,
  );
  for (let i = 0; i < 4; i++) {
    const s = await dialThrough(g.port, httpbinSni, httpbinId, Buffer.from(`n${i}`));
    assert.equal(s.hello.backend, 'httpbin-a');
    const log = await g.nextLog();
    assert.equal(log.upstream_host, `127.0.0.1:${httpbin.endpoint.port}`);
    assert.equal(log.response_flags, '-');
  }
  const tlsOpts = { host: '127.0.0.1', port: g.port, ca: [pki.rootPem], key: clientLeaf.key, cert: clientLeaf.cert };
  await expectRefused(() => tls.connect({ ...tlsOpts, servername: 'outbound_.8000_._.down.default.svc.cluster.local' }));
  let log = await g.nextLog();
  assert.equal(log.response_flags, 'UF');
  assert.match(log.upstream_transport_failure_reason ?? '', /ECONNREFUSED/);
  await expectRefused(() => tls.connect({ ...tlsOpts, servername: 'outbound_.8000_._.empty.default.svc.cluster.local' }));
  log = await g.nextLog();
  assert.equal(log.response_flags, 'UH');
});

test('many concurrent connections are balanced round robin, across two gateway replicas', async () => {
  const resolve = (t: OutboundSni): readonly Endpoint[] | undefined => table.get(t.clusterName);
  const g1 = await startGateway(resolve);
  const g2 = await startGateway(resolve);
  const before = { a: httpbin.accepted, b: httpbin2.accepted };
  const n = 60;
  const sessions = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const payload = randomBytes(16_384 + i);
      return dialThrough(i % 2 === 0 ? g1.port : g2.port, httpbinSni, httpbinId, payload).then((s) => ({ s, payload }));
    }),
  );
  for (const { s, payload } of sessions) {
    assert.ok(s.echoed.equals(payload));
    assert.equal(s.trailer, 'bye\n');
  }
  // Each replica balances its own connections round robin: exactly half of each replica's 30 go each way.
  assert.equal(httpbin.accepted - before.a, n / 2);
  assert.equal(httpbin2.accepted - before.b, n / 2);
  for (const g of [g1, g2]) {
    for (let i = 0; i < n / 2; i++) assert.equal((await g.nextLog()).response_flags, '-');
    assert.equal(g.logs.length, n / 2);
  }
  assert.equal(g1.gw.connectionCount() + g2.gw.connectionCount(), 0);
});

test('timeouts run on the injected clock: a silent client is refused, a hanging connect moves on', async () => {
  const clock = manualClock();
  const logs: AccessLogRecord[] = [];
  let logged!: () => void;
  let onLog = new Promise<void>((r) => (logged = r));
  const hanging: Endpoint = { address: '127.0.0.1', port: 1 };
  const dials: number[] = [];
  const gw = createSniPassthroughGateway({
    port: 0,
    host: '127.0.0.1',
    clock,
    peekTimeoutMs: 5000,
    connectTimeoutMs: 3000,
    resolve: (t) => (t.fqdn === 'httpbin.default.svc.cluster.local' ? [hanging, httpbin.endpoint] : undefined),
    // A socket that never connects stands in for a blackholed endpoint.
    connect: (ep) => (dials.push(ep.port), ep.port === 1 ? new net.Socket() : net.connect({ host: ep.address, port: ep.port, allowHalfOpen: true })),
    onLog: (r) => {
      logs.push(r);
      logged();
    },
  });
  gateways.push(gw);
  const { port } = await gw.listen();

  const silent = net.connect(port, '127.0.0.1');
  silent.on('error', () => {});
  const silentClosed = new Promise((r) => silent.once('close', r));
  await new Promise((r) => silent.once('connect', r));
  while (clock.pending() === 0) await new Promise((r) => setImmediate(r)); // the peek timer is armed
  clock.advance(4999);
  assert.equal(logs.length, 0);
  clock.advance(1);
  await silentClosed;
  await onLog;
  assert.equal(logs[0]!.response_flags, 'NR');

  onLog = new Promise<void>((r) => (logged = r));
  const session = dialThrough(port, httpbinSni, httpbinId, Buffer.from('through'));
  while (dials.length === 0) await new Promise((r) => setImmediate(r));
  assert.deepEqual(dials, [1], 'round robin starts at the hanging endpoint');
  clock.advance(3000);
  const s = await session;
  assert.equal(s.hello.backend, 'httpbin-a');
  assert.equal(s.echoed.toString(), 'through');
  await onLog;
  assert.deepEqual(dials, [1, httpbin.endpoint.port]);
  assert.equal(logs[1]!.upstream_host, `127.0.0.1:${httpbin.endpoint.port}`);
});

test('close() drains: no new connections, live ones may finish within the drain time, the rest are reset', async () => {
  const clock = manualClock();
  const events: GatewayTcpEvent[] = [];
  const gw = createSniPassthroughGateway({
    port: 0,
    host: '127.0.0.1',
    clock,
    drainTimeoutMs: 1000,
    tcpReportIntervalMs: 100,
    onTcp: (e) => events.push(e),
    resolve: (t) => (t.fqdn === 'httpbin.default.svc.cluster.local' ? [httpbin.endpoint] : undefined),
  });
  gateways.push(gw);
  const { port } = await gw.listen();

  /** A session left open: resolves once the backend has said hello through the gateway. */
  const open = async (): Promise<{ s: tls.TLSSocket; text: () => string; closed: Promise<Error | undefined> }> => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: httpbinSni, ca: [pki.rootPem], key: clientLeaf.key, cert: clientLeaf.cert, ALPNProtocols: ['istio'], checkServerIdentity: () => undefined });
    let text = '';
    let err: Error | undefined;
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('error', (e) => (err = e));
    const closed = new Promise<Error | undefined>((r) => s.once('close', () => r(err)));
    while (!text.includes('\n')) await new Promise((r) => setTimeout(r, 5));
    return { s, text: () => text, closed };
  };
  const a = await open();
  const b = await open();
  a.s.write('ping');
  while (!a.text().endsWith('ping')) await new Promise((r) => setTimeout(r, 5));
  // Bytes are reported while the connection is open, not only at its end.
  clock.advance(100);
  const flowing = events.filter((e) => e.phase === 'bytes' && e.sni === httpbinSni);
  assert.ok(flowing.reduce((n, e) => n + e.received, 0) > 0, `bytes reported while open: ${JSON.stringify(events)}`);
  assert.equal(events.filter((e) => e.phase === 'closed').length, 0);

  let drained = false;
  const closing = gw.close().then(() => (drained = true));
  // Not accepting any more.
  const refused = await new Promise<string>((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    c.on('connect', () => resolve('connected'));
  });
  assert.equal(refused, 'ECONNREFUSED');
  // A live connection finishes normally: the backend's trailer after our FIN still arrives.
  a.s.end();
  assert.equal(await a.closed, undefined);
  assert.ok(a.text().endsWith('ping' + 'bye\n'), a.text());
  assert.equal(drained, false, 'b is still open');
  assert.equal(gw.connectionCount(), 1);
  // The drain time runs out: what is left is reset.
  clock.advance(1000);
  const bErr = await b.closed;
  await closing;
  assert.equal(gw.connectionCount(), 0);
  assert.ok(bErr === undefined || /ECONNRESET|socket hang up/.test(bErr.message), String(bErr));
  assert.equal(events.filter((e) => e.phase === 'opened').length, 2);
  assert.equal(events.filter((e) => e.phase === 'closed').length, 2);
  const total = events.reduce((n, e) => n + e.sent, 0);
  assert.ok(total > 0);
});
