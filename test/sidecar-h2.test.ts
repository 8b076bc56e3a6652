/**
 * HTTP/2 and gRPC through a sidecar pair over real mTLS, with the control plane's own generated config:
 * a real @grpc/grpc-js client and server (unary and server-streaming, status codes, metadata and trailers
 * kept), a node:http2 client to an HTTP/1.1 app and an HTTP/1.1 client to an HTTP/2 app (translation both
 * ways), gRPC errors the proxy makes itself (UNAVAILABLE with no endpoint, DEADLINE_EXCEEDED on the route
 * timeout), gRPC retries, and malformed HTTP/2 that must cost one connection only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { createSidecar } from '../src/proxy/sidecar/index.js';
import { createMeshMetrics } from '../src/proxy/telemetry/index.js';
import type { AccessLogRecord } from '../src/proxy/telemetry/index.js';
import type { ProxyXdsState, SidecarHandle as Sidecar } from '../src/proxy/sidecar/index.js';
import type { Listener } from '../src/xds/index.js';
import { createTestPki } from './proxy-certs.js';
import type { TestPki } from './proxy-certs.js';
import { destinationRule, recorder, request, startBackend, stateFor, svc, virtualService, workload } from './sidecar-mesh.js';
import type { Backend } from './sidecar-mesh.js';

const NS = 'h2';
const id = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;
const resources = [
  svc(NS, 'client', 80, 80),
  workload(NS, 'client-1', '127.76.1.1', { app: 'client' }, { sa: 'client' }),
  svc(NS, 'greeter', 9000, 9000, 'grpc'),
  workload(NS, 'greeter-1', '127.76.1.2', { app: 'greeter' }, { sa: 'greeter' }),
  svc(NS, 'web', 8080, 8080, 'http'),
  workload(NS, 'web-1', '127.76.1.3', { app: 'web' }, { sa: 'web' }),
  svc(NS, 'h2app', 8081, 8081, 'http2'),
  workload(NS, 'h2app-1', '127.76.1.4', { app: 'h2app' }, { sa: 'h2app' }),
  // A gRPC service with no endpoint at all.
  svc(NS, 'empty', 9001, 9001, 'grpc'),
];
const virtualServices = [
  virtualService(NS, 'greeter', {
    hosts: ['greeter'],
    http: [{ timeout: '400ms', retries: { attempts: 2, retryOn: 'unavailable' }, route: [{ destination: { host: 'greeter' } }] }],
  }),
];

// HTTP/1.1 app, HTTP/2 between the sidecars (Istio's h2UpgradePolicy).
const destinationRules = [
  destinationRule(NS, 'web', { host: 'web', trafficPolicy: { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE' } } } }),
  // One connection, one pending request: HTTP/2 still multiplexes any number of streams over it.
  destinationRule(NS, 'h2app', { host: 'h2app', trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } } }),
];

const bytes = (b: Buffer): Buffer => b;
const method = (path: string, responseStream: boolean) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
});
const GREETER = {
  sayHello: method('/test.Greeter/SayHello', false),
  sayMany: method('/test.Greeter/SayMany', true),
  fail: method('/test.Greeter/Fail', false),
  slow: method('/test.Greeter/Slow', false),
  flaky: method('/test.Greeter/Flaky', false),
  forever: method('/test.Greeter/Forever', true),
};
type GreeterClient = grpc.Client & Record<keyof typeof GREETER, (...args: unknown[]) => unknown>;
const GreeterClient = grpc.makeGenericClientConstructor(GREETER, 'Greeter') as unknown as new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => GreeterClient;

describe('sidecar HTTP/2 and gRPC', () => {
  let pki: TestPki;
  const sidecars: Sidecar[] = [];
  const backends: Backend[] = [];
  const clientLog = recorder();
  const serverLog = recorder();
  const webLog = recorder();
  const clientRegistry = new Registry();
  let grpcServer: grpc.Server;
  let h2App: http2.Http2Server;
  let proxyPort = 0;
  let flakyCalls = 0;
  let cancelledOnServer = 0;
  let h2AppSessions = 0;
  let clientSidecar: Sidecar;
  let clientState: ProxyXdsState;
  const appSessions = new Set<http2.ServerHttp2Session>();
  const seenMetadata: string[] = [];

  const client = (authority: string): GreeterClient => new GreeterClient(`127.76.1.1:${proxyPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });

  before(async () => {
    pki = await createTestPki();
    const sidecar = async (sa: string, ip: string, appHost: string, opts: { log?: (r: AccessLogRecord) => void; registry?: Registry } = {}): Promise<Sidecar> => {
      const state = stateFor(resources, { ip, pod: `${sa}-1`, namespace: NS, serviceAccount: sa, labels: { app: sa }, appHost }, { virtualServices, destinationRules });
      if (sa === 'client') clientState = state;
      const leaf = await pki.issue({ spiffe: id(sa) });
      const s = createSidecar({
        credentials: () => ({ certChainPem: leaf.cert, keyPem: leaf.key, rootsPem: pki.rootPem, spiffeId: id(sa) }),
        identity: { cluster: 'c1', namespace: NS, workload: sa, network: 'n1' },
        ...(opts.log ? { accessLog: opts.log } : {}),
        ...(opts.registry ? { metrics: createMeshMetrics(opts.registry) } : {}),
      });
      assert.deepEqual(s.apply(state).problems, []);
      sidecars.push(s);
      return s;
    };

    grpcServer = new grpc.Server();
    grpcServer.addService(GREETER, {
      sayHello(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
        seenMetadata.push(String(call.metadata.get('x-who')[0]));
        const initial = new grpc.Metadata();
        initial.set('x-initial', 'hi');
        call.sendMetadata(initial);
        const trailing = new grpc.Metadata();
        trailing.set('x-trailing', 'bye');
        cb(null, Buffer.from(`hello ${call.request.toString()}`), trailing);
      },
      sayMany(call: grpc.ServerWritableStream<Buffer, Buffer>) {
        for (let i = 1; i <= 3; i++) call.write(Buffer.from(`${call.request.toString()} #${i}`));
        call.end();
      },
      fail(_call: unknown, cb: grpc.sendUnaryData<Buffer>) {
        cb({ code: grpc.status.NOT_FOUND, details: 'no such greeting' });
      },
      slow(_call: unknown, cb: grpc.sendUnaryData<Buffer>) {
        setTimeout(() => cb(null, Buffer.from('late')), 2000).unref();
      },
      forever(call: grpc.ServerWritableStream<Buffer, Buffer>) {
        const timer = setInterval(() => call.write(Buffer.from('tick')), 10);
        call.on('cancelled', () => {
          clearInterval(timer);
          cancelledOnServer++;
        });
      },
      flaky(_call: unknown, cb: grpc.sendUnaryData<Buffer>) {
        if (++flakyCalls % 2 === 1) return cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
        cb(null, Buffer.from(`ok after ${flakyCalls} calls`));
      },
    });
    await new Promise<void>((resolve, reject) => grpcServer.bindAsync('127.76.2.2:9000', grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));

    backends.push(
      await startBackend('127.76.2.3', 8080, 'web', (req, res) => {
        req.resume();
        res.setHeader('x-app-version', String(req.httpVersion));
        res.end(`web saw ${req.method} ${req.url} host=${req.headers.host}`);
      }),
    );
    h2App = http2.createServer();
    h2App.on('session', (session) => {
      h2AppSessions++;
      appSessions.add(session);
      session.once('close', () => appSessions.delete(session));
    });
    h2App.on('stream', (st, h) => {
      const path = String(h[':path']);
      if (path === '/trailers') {
        st.respond({ ':status': 200 }, { waitForTrailers: true });
        st.once('wantTrailers', () => st.sendTrailers({ 'x-checksum': 'abc' }));
        st.end('body then trailers');
        return;
      }
      if (path === '/slow') {
        setTimeout(() => {
          st.respond({ ':status': 200 });
          st.end('slow');
        }, 150);
        return;
      }
      st.respond({ ':status': 200, 'x-app-protocol': 'h2' });
      st.end(`h2app saw ${String(h[':method'])} ${path} authority=${String(h[':authority'])}`);
      // A server shutting down gracefully: every connection ends with GOAWAY after one stream.
      if (path === '/bye') st.session!.goaway(http2.constants.NGHTTP2_NO_ERROR);
    });
    await new Promise<void>((r) => h2App.listen(8081, '127.76.2.4', r));

    clientSidecar = await sidecar('client', '127.76.1.1', '127.76.2.1', { log: clientLog.log, registry: clientRegistry });
    const c = clientSidecar;
    await sidecar('greeter', '127.76.1.2', '127.76.2.2', { log: serverLog.log });
    await sidecar('web', '127.76.1.3', '127.76.2.3', { log: webLog.log });
    await sidecar('h2app', '127.76.1.4', '127.76.2.4');
    for (const s of sidecars) await s.listening();
    proxyPort = (await c.listening()).get('127.76.1.1_15001')!.port;
  });

  after(async () => {
    await Promise.all(sidecars.map((s) => s.close()));
    await Promise.all(backends.map((b) => b.close()));
    grpcServer.forceShutdown();
    for (const session of appSessions) session.destroy();
    await new Promise((r) => h2App.close(r));
  });

  test('gRPC unary through the pair: reply, metadata both ways and trailers kept; logged as HTTP/2 and counted as grpc', async () => {
    const c = client('greeter.h2:9000');
    try {
      const md = new grpc.Metadata();
      md.set('x-who', 'tester');
      let initial: grpc.Metadata | undefined;
      let status: grpc.StatusObject | undefined;
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const call = c.sayHello(Buffer.from('world'), md, (err: Error | null, r: Buffer) => (err ? reject(err) : resolve(r))) as grpc.ClientUnaryCall;
        call.on('metadata', (m: grpc.Metadata) => (initial = m));
        call.on('status', (s: grpc.StatusObject) => (status = s));
      });
      assert.equal(reply.toString(), 'hello world');
      assert.deepEqual(seenMetadata.at(-1), 'tester');
      assert.deepEqual(initial?.get('x-initial'), ['hi']);
      await waitFor(() => status !== undefined);
      assert.equal(status!.code, grpc.status.OK);
      assert.deepEqual(status!.metadata.get('x-trailing'), ['bye']);
      await waitFor(() => clientLog.records.length > 0 && serverLog.records.length > 0);
      const rec = clientLog.records.at(-1)!;
      assert.equal(rec.protocol, 'HTTP/2');
      assert.equal(rec.path, '/test.Greeter/SayHello');
      assert.equal(rec.upstream_cluster, 'outbound|9000||greeter.h2.svc.cluster.local');
      assert.equal(serverLog.records.at(-1)!.protocol, 'HTTP/2');
      assert.equal(serverLog.records.at(-1)!.upstream_cluster, 'inbound|9000||');
      const series = (await clientRegistry.getSingleMetric('istio_requests_total')!.get()).values.find((v) => v.labels.request_protocol === 'grpc');
      assert.ok(series, 'a grpc series');
      assert.equal(String(series.labels.grpc_response_status), '0');
      assert.equal(series.labels.destination_principal, id('greeter'));
    } finally {
      c.close();
    }
  });

  test('gRPC server streaming and an error status with its message pass through', async () => {
    const c = client('greeter.h2:9000');
    try {
      const got: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = c.sayMany(Buffer.from('tick')) as grpc.ClientReadableStream<Buffer>;
        call.on('data', (m: Buffer) => got.push(m.toString()));
        call.on('error', reject);
        call.on('end', () => resolve());
      });
      assert.deepEqual(got, ['tick #1', 'tick #2', 'tick #3']);
      const err = await new Promise<grpc.ServiceError>((resolve) => c.fail(Buffer.from('x'), (e: grpc.ServiceError) => resolve(e)));
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, 'no such greeting');
    } finally {
      c.close();
    }
  });

  test('a client cancelling a stream mid-response: the cancel reaches the app through both sidecars, logged DC', async () => {
    const c = client('greeter.h2:9000');
    try {
      const before = clientLog.records.length;
      await new Promise<void>((resolve) => {
        const call = c.forever(Buffer.from('x')) as grpc.ClientReadableStream<Buffer>;
        let n = 0;
        call.on('data', () => {
          if (++n === 3) call.cancel();
        });
        call.on('error', () => resolve());
      });
      await waitFor(() => cancelledOnServer === 1 && clientLog.records.length > before);
      assert.match(clientLog.records.at(-1)!.response_flags, /DC/);
      const after = await new Promise<Buffer>((resolve, reject) => c.sayHello(Buffer.from('again'), (e: Error | null, r: Buffer) => (e ? reject(e) : resolve(r))));
      assert.equal(after.toString(), 'hello again');
    } finally {
      c.close();
    }
  });

  test('gRPC conditions the proxy makes: UNAVAILABLE (HTTP 200, trailers-only) with no endpoint, DEADLINE_EXCEEDED on the route timeout, a retried UNAVAILABLE', async () => {
    const c = client('empty.h2:9001');
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => c.sayHello(Buffer.from('x'), (e: grpc.ServiceError) => resolve(e)));
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.equal(err.details, 'no healthy upstream');
      const rec = clientLog.records.at(-1)!;
      assert.equal(rec.response_code, 200);
      assert.equal(rec.response_flags, 'UH');
    } finally {
      c.close();
    }
    // The raw frames: one HEADERS block, :status 200 and grpc-status together, nothing after.
    const raw = await h2Request({ ':method': 'POST', ':path': '/test.Greeter/SayHello', ':authority': 'empty.h2:9001', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.alloc(5));
    assert.equal(raw.headers[':status'], 200);
    assert.equal(raw.headers['grpc-status'], '14');
    assert.equal(raw.body, '');
    assert.equal(raw.trailers, undefined);

    const g = client('greeter.h2:9000');
    try {
      const late = await new Promise<grpc.ServiceError>((resolve) => g.slow(Buffer.from('x'), (e: grpc.ServiceError) => resolve(e)));
      assert.equal(late.code, grpc.status.DEADLINE_EXCEEDED);
      assert.equal(clientLog.records.at(-1)!.response_flags, 'UT');
      flakyCalls = 0;
      const ok = await new Promise<Buffer>((resolve, reject) => g.flaky(Buffer.from('x'), (e: Error | null, r: Buffer) => (e ? reject(e) : resolve(r))));
      // The first answer (UNAVAILABLE) was retried with the streamed request body's copy; a retry that
      // succeeds carries no flag (URX is for retries exhausted).
      assert.equal(ok.toString(), 'ok after 2 calls');
      assert.equal(clientLog.records.at(-1)!.response_flags, '-');
    } finally {
      g.close();
    }
  });

  test('protocol translation: an HTTP/2 client reaches an HTTP/1.1 app, an HTTP/1.1 client reaches an HTTP/2 app', async () => {
    const r = await h2Request({ ':method': 'GET', ':path': '/page?q=1', ':authority': 'web.h2:8080' });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['x-app-version'], '1.1');
    assert.equal(r.body, 'web saw GET /page?q=1 host=web.h2:8080');
    assert.equal(clientLog.records.at(-1)!.protocol, 'HTTP/2');

    // h2UpgradePolicy: UPGRADE: an HTTP/1.1 client and app, HTTP/2 between the sidecars.
    const up = await request({ host: '127.76.1.1', port: proxyPort }, 'http://web.h2:8080/upgraded', { method: 'POST', body: 'payload' });
    assert.equal(up.status, 200);
    assert.equal(up.headers['x-app-version'], '1.1');
    assert.equal(up.body, 'web saw POST /upgraded host=web.h2:8080');
    await waitFor(() => webLog.records.some((rec) => rec.path === '/upgraded'));
    assert.equal(webLog.records.find((rec) => rec.path === '/upgraded')!.protocol, 'HTTP/2');
    assert.equal(webLog.records.find((rec) => rec.path === '/upgraded')!.bytes_received, 7);

    const h1 = await request({ host: '127.76.1.1', port: proxyPort }, 'http://h2app.h2:8081/x');
    assert.equal(h1.status, 200);
    assert.equal(h1.headers['x-app-protocol'], 'h2');
    assert.equal(h1.body, 'h2app saw GET /x authority=h2app.h2:8081');
    assert.equal(clientLog.records.at(-1)!.protocol, 'HTTP/1.1');
  });

  test('maxConnections 1 on an HTTP/2 cluster multiplexes concurrent requests over it instead of overflowing (UO)', async () => {
    const all = await Promise.all(Array.from({ length: 6 }, () => h2Request({ ':method': 'GET', ':path': '/slow', ':authority': 'h2app.h2:8081' })));
    assert.deepEqual(
      all.map((r) => `${r.headers[':status']} ${r.body}`),
      Array.from({ length: 6 }, () => '200 slow'),
    );
  });

  test('HTTP/2 trailers reach an HTTP/1.1 client in the last chunk; an app that sends GOAWAY after each stream costs no request', async () => {
    const got = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      const req = httpRequest({ host: '127.76.1.1', port: proxyPort, path: 'http://h2app.h2:8081/trailers', headers: { te: 'trailers' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ body, trailers: res.trailers }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(got.body, 'body then trailers');
    assert.equal(got.trailers['x-checksum'], 'abc');

    const before = h2AppSessions;
    for (let i = 0; i < 5; i++) {
      const r = await request({ host: '127.76.1.1', port: proxyPort }, 'http://h2app.h2:8081/bye');
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.body, 'h2app saw GET /bye authority=h2app.h2:8081');
    }
    assert.ok(h2AppSessions - before >= 4, `the inbound sidecar opened new sessions after GOAWAY (${h2AppSessions - before})`);
  });

  test('malformed HTTP/2 (a bad preface, a garbage frame) ends that connection only; the proxy keeps serving', async () => {
    const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    for (const bad of [Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'), Buffer.concat([Buffer.from(preface), Buffer.from([0, 0, 4, 0xff, 0, 0, 0, 0, 1, 1, 2, 3, 4]), Buffer.alloc(64, 0xee)])]) {
      const closed = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.76.1.1', port: proxyPort });
        s.on('error', () => {});
        s.on('close', () => resolve(true));
        s.on('data', () => {});
        s.write(bad);
        setTimeout(() => resolve(false), 3000).unref();
      });
      assert.ok(closed, `connection closed after ${JSON.stringify(bad.subarray(0, 30).toString('latin1'))}`);
    }
    const r = await h2Request({ ':method': 'GET', ':path': '/after', ':authority': 'web.h2:8080' });
    assert.equal(r.headers[':status'], 200);
    const h1 = await request({ host: '127.76.1.1', port: proxyPort }, 'http://web.h2:8080/after');
    assert.equal(h1.status, 200);
  });

  test('the HCM codec_type is honoured: HTTP2 serves only HTTP/2, HTTP1 refuses the preface', async () => {
    const name = '127.76.1.1_15001';
    const withCodec = (codec: string): ProxyXdsState => {
      const l = structuredClone(clientState.listeners.get(name)) as Listener & { filter_chains: Array<{ filters: Array<{ typed_config: Record<string, unknown> }> }> };
      l.filter_chains[0]!.filters[0]!.typed_config.codec_type = codec;
      return { ...clientState, listeners: new Map([...clientState.listeners, [name, l as Listener]]) };
    };
    try {
      assert.deepEqual(clientSidecar.apply(withCodec('HTTP2')).problems, []);
      assert.equal((await h2Request({ ':method': 'GET', ':path': '/h2-only', ':authority': 'web.h2:8080' })).headers[':status'], 200);
      const h1 = await request({ host: '127.76.1.1', port: proxyPort }, 'http://web.h2:8080/').then(
        (r) => `answered ${r.status}`,
        () => 'refused',
      );
      assert.equal(h1, 'refused');
      assert.deepEqual(clientSidecar.apply(withCodec('HTTP1')).problems, []);
      const h2 = await h2Request({ ':method': 'GET', ':path': '/', ':authority': 'web.h2:8080' }).then(
        () => 'answered',
        () => 'refused',
      );
      assert.equal(h2, 'refused');
      assert.equal((await request({ host: '127.76.1.1', port: proxyPort }, 'http://web.h2:8080/h1-only')).status, 200);
    } finally {
      clientSidecar.apply(clientState);
    }
  });

  test('inbound mTLS with a non-h2 ALPN (istio-peer-exchange) still serves HTTP/2 by its preface', async () => {
    const leaf = await pki.issue({ spiffe: id('client') });
    const logged = serverLog.records.length;
    const session = http2.connect('http://greeter', {
      createConnection: () =>
        tls.connect({
          host: '127.76.1.2',
          port: 9000,
          cert: leaf.cert,
          key: leaf.key,
          ca: pki.rootPem,
          servername: 'outbound_.9000_._.greeter.h2.svc.cluster.local',
          ALPNProtocols: ['istio-peer-exchange'],
          checkServerIdentity: () => undefined,
        }),
    });
    try {
      const res = await new Promise<{ alpn: string | false | null; headers: http2.IncomingHttpHeaders }>((resolve, reject) => {
        session.on('error', reject);
        const st = session.request({ ':method': 'POST', ':path': '/test.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' });
        st.on('response', (h) => resolve({ alpn: (session.socket as tls.TLSSocket).alpnProtocol, headers: h }));
        st.on('error', reject);
        // One gRPC message: not compressed, 2 bytes long.
        st.end(Buffer.from([0, 0, 0, 0, 2, 0x68, 0x69]));
      });
      assert.equal(res.alpn, 'istio-peer-exchange');
      assert.equal(res.headers[':status'], 200);
      assert.match(String(res.headers['content-type']), /^application\/grpc/);
      await waitFor(() => serverLog.records.length > logged);
      const rec = serverLog.records.at(-1)!;
      assert.equal(rec.protocol, 'HTTP/2');
      assert.equal(rec.path, '/test.Greeter/SayHello');
      assert.equal(rec.requested_server_name, 'outbound_.9000_._.greeter.h2.svc.cluster.local');
    } finally {
      session.destroy();
    }
  });

  /** One request over a fresh prior-knowledge h2c connection to the client sidecar. */
  function h2Request(headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; body: string; trailers?: http2.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`http://127.76.1.1:${proxyPort}`);
      session.on('error', reject);
      const st = session.request(headers, { endStream: body === undefined });
      let got: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      let text = '';
      st.on('response', (h) => (got = h));
      st.on('trailers', (t) => (trailers = t));
      st.on('data', (c: Buffer) => (text += c.toString()));
      st.on('error', reject);
      st.on('close', () => {
        session.close();
        resolve({ headers: got, body: text, ...(trailers ? { trailers } : {}) });
      });
      if (body !== undefined) st.end(body);
    });
  }
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
