/**
 * Sidecar → sidecar over real sockets and real mTLS, with the control plane's own generated config:
 * explicit HTTP proxy (absolute and origin form), inbound termination with the caller's identity passed
 * on, identity pinning (wrong SPIFFE ID refused), STRICT inbound (plaintext and foreign roots refused),
 * captured TCP through virtualOutbound's original-destination hand-off, malformed HTTP, rejected config.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import { createSidecar } from '../src/proxy/sidecar/index.js';
import { createMeshMetrics } from '../src/proxy/telemetry/index.js';
import type { SidecarHandle as Sidecar, ProxyXdsState } from '../src/proxy/sidecar/index.js';
import type { Cluster } from '../src/xds/index.js';
import { createTestPki } from './proxy-certs.js';
import type { Leaf, TestPki } from './proxy-certs.js';
import { pinCaptureListeners, recorder, request, startBackend, stateFor, svc, vipOf, workload } from './sidecar-mesh.js';
import type { Backend } from './sidecar-mesh.js';

const NS = 'sample';
const id = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;
const resources = [
  svc(NS, 'helloworld', 5000, 5000),
  workload(NS, 'helloworld-1', '127.77.1.2', { app: 'helloworld' }, { sa: 'helloworld' }),
  svc(NS, 'sleep', 80, 80),
  workload(NS, 'sleep-1', '127.77.1.1', { app: 'sleep' }, { sa: 'sleep' }),
  svc(NS, 'other', 5001, 5001),
  workload(NS, 'other-1', '127.77.1.5', { app: 'other' }, { sa: 'other' }),
  svc(NS, 'db', 3306, 3306, 'tcp-mysql'),
  workload(NS, 'db-1', '127.77.1.3', { app: 'db' }, { sa: 'db' }),
];

describe('sidecar mTLS data path', () => {
  let pki: TestPki;
  let foreign: TestPki;
  const certs: Record<string, Leaf> = {};
  const sidecars: Sidecar[] = [];
  const backends: Backend[] = [];
  const servers: net.Server[] = [];
  const clientLog = recorder();
  const serverLog = recorder();
  const tcpClientLog = recorder();
  const dbLog = recorder();
  const refusals: string[] = [];
  let client: Sidecar;
  let proxyPort = 0;
  let tcpClient: Sidecar;
  let capturePort = 0;
  let capturedDestination: { address: string; port: number } | undefined;
  let clientState: ProxyXdsState;
  let lastXfcc = '';
  const clientRegistry = new Registry();
  const serverRegistry = new Registry();

  const creds = (leaf: Leaf, sa: string) => () => ({ certChainPem: leaf.cert, keyPem: leaf.key, rootsPem: pki.rootPem, spiffeId: id(sa) });
  const ident = (workloadName: string) => ({ cluster: 'c1', namespace: NS, workload: workloadName, network: 'n1' });

  before(async () => {
    pki = await createTestPki();
    foreign = await createTestPki('foreign root');
    await Promise.all(['sleep', 'helloworld', 'db', 'imposter'].map(async (sa) => (certs[sa] = await pki.issue({ spiffe: id(sa) }))));
    certs.foreign = await foreign.issue({ spiffe: id('sleep') });

    backends.push(
      await startBackend('127.77.2.2', 5000, 'helloworld', (req, res) => {
        lastXfcc = String(req.headers['x-forwarded-client-cert'] ?? '');
        req.resume();
        res.end(`hello ${req.url} host=${req.headers.host}`);
      }),
    );
    backends.push(await startBackend('127.77.2.5', 5001, 'other'));
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(3306, '127.77.2.3', r));
    servers.push(echo);

    client = createSidecar({ credentials: creds(certs.sleep!, 'sleep'), identity: ident('sleep'), accessLog: clientLog.log, metrics: createMeshMetrics(clientRegistry) });
    clientState = stateFor(resources, { ip: '127.77.1.1', pod: 'sleep-1', namespace: NS, serviceAccount: 'sleep', labels: { app: 'sleep' }, appHost: '127.77.2.1' });
    assert.deepEqual(client.apply(clientState).problems, []);
    sidecars.push(client);

    const hello = createSidecar({
      credentials: creds(certs.helloworld!, 'helloworld'),
      identity: ident('helloworld'),
      accessLog: serverLog.log,
      metrics: createMeshMetrics(serverRegistry),
      logger: { debug() {}, info() {}, error() {}, warn: (m, f) => refusals.push(`${m} ${JSON.stringify(f)}`), child() { return this; } },
    });
    assert.deepEqual(hello.apply(stateFor(resources, { ip: '127.77.1.2', pod: 'helloworld-1', namespace: NS, serviceAccount: 'helloworld', labels: { app: 'helloworld' }, appHost: '127.77.2.2' })).problems, []);
    sidecars.push(hello);

    // "other" is served by a sidecar holding someone else's certificate.
    const other = createSidecar({ credentials: creds(certs.imposter!, 'imposter'), identity: ident('other') });
    other.apply(stateFor(resources, { ip: '127.77.1.5', pod: 'other-1', namespace: NS, serviceAccount: 'other', labels: { app: 'other' }, appHost: '127.77.2.5' }));
    sidecars.push(other);

    const db = createSidecar({ credentials: creds(certs.db!, 'db'), identity: ident('db'), accessLog: dbLog.log });
    db.apply(stateFor(resources, { ip: '127.77.1.3', pod: 'db-1', namespace: NS, serviceAccount: 'db', labels: { app: 'db' }, appHost: '127.77.2.3' }));
    sidecars.push(db);

    // A captured-mode client: virtualOutbound on a free port, original destinations injected by the test.
    tcpClient = createSidecar({
      credentials: creds(certs.sleep!, 'sleep'),
      identity: ident('sleep'),
      accessLog: tcpClientLog.log,
      originalDestination: () => capturedDestination,
    });
    const capturedState = stateFor(resources, { ip: '127.77.1.4', pod: 'sleep-2', namespace: NS, serviceAccount: 'sleep', labels: { app: 'sleep' }, interception: 'REDIRECT' });
    pinCaptureListeners(capturedState, '127.77.1.4', { outbound: 15001, inbound: 15006 });
    assert.deepEqual(tcpClient.apply(capturedState).problems, []);
    sidecars.push(tcpClient);

    const bound = await client.listening();
    proxyPort = bound.get('127.77.1.1_15001')!.port;
    for (const s of sidecars) await s.listening();
    capturePort = (await tcpClient.listening()).get('virtualOutbound')!.port;
  });

  after(async () => {
    await Promise.all(sidecars.map((s) => s.close()));
    await Promise.all(backends.map((b) => b.close()));
    for (const s of servers) s.close();
  });

  test('absolute-form request through the explicit proxy reaches the app over mTLS, caller identity in XFCC', async () => {
    const r = await request({ host: '127.77.1.1', port: proxyPort }, 'http://helloworld.sample:5000/hello?x=1');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello /hello?x=1 host=helloworld.sample:5000');
    assert.match(lastXfcc, new RegExp(`^By=${id('helloworld')};Hash=[0-9a-f]{64};URI=${id('sleep')}$`));
    const c = clientLog.records.at(-1)!;
    assert.equal(c.response_code, 200);
    assert.equal(c.response_flags, '-');
    assert.equal(c.upstream_cluster, 'outbound|5000||helloworld.sample.svc.cluster.local');
    assert.equal(c.upstream_host, '127.77.1.2:5000');
    assert.equal(c.route_name, 'default');
    assert.equal(c.authority, 'helloworld.sample:5000');
    assert.equal(c.path, '/hello?x=1');
    assert.ok(c.request_id);
    const s = serverLog.records.at(-1)!;
    assert.equal(s.upstream_cluster, 'inbound|5000||');
    assert.equal(s.request_id, c.request_id, 'x-request-id travels with the request');
    assert.equal(s.upstream_host, '127.77.2.2:5000');
    const source = (await clientRegistry.getSingleMetric('istio_requests_total')!.get()).values.find((v) => String(v.labels.response_code) === '200')!;
    assert.equal(source.labels.reporter, 'source');
    assert.equal(source.labels.destination_service, 'helloworld.sample.svc.cluster.local');
    assert.equal(source.labels.destination_workload, 'helloworld-1');
    assert.equal(source.labels.destination_principal, id('helloworld'));
    assert.equal(source.labels.source_principal, id('sleep'));
    const dest = (await serverRegistry.getSingleMetric('istio_requests_total')!.get()).values[0]!;
    assert.equal(dest.labels.reporter, 'destination');
    assert.equal(dest.labels.source_principal, id('sleep'));
    assert.equal(dest.labels.connection_security_policy, 'mutual_tls');
  });

  test('an app cannot claim another identity in x-forwarded-client-cert: the server app sees only the verified caller', async () => {
    const spoof = 'By=spiffe://cluster.local/ns/sample/sa/helloworld;URI=spiffe://cluster.local/ns/sample/sa/admin';
    const r = await request({ host: '127.77.1.1', port: proxyPort }, 'http://helloworld.sample:5000/spoof', { headers: { 'x-forwarded-client-cert': spoof } });
    assert.equal(r.status, 200);
    assert.match(lastXfcc, new RegExp(`^By=${id('helloworld')};Hash=[0-9a-f]{64};URI=${id('sleep')}$`));
    assert.ok(!lastXfcc.includes('sa/admin'));
  });

  test('origin-form request with a Host header, FQDN with port', async () => {
    const r = await request({ host: '127.77.1.1', port: proxyPort }, '/hi', { headers: { host: 'helloworld.sample.svc.cluster.local:5000' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello /hi host=helloworld.sample.svc.cluster.local:5000');
  });

  test('an unknown host gets 404 NR', async () => {
    const r = await request({ host: '127.77.1.1', port: proxyPort }, 'http://nowhere.sample:5000/');
    assert.equal(r.status, 404);
    assert.equal(clientLog.records.at(-1)!.response_flags, 'NR');
  });

  test('a peer presenting the wrong SPIFFE ID is refused: 503 UF naming the mismatch', async () => {
    const r = await request({ host: '127.77.1.1', port: proxyPort }, 'http://other.sample:5001/');
    assert.equal(r.status, 503);
    const rec = clientLog.records.at(-1)!;
    assert.match(rec.response_flags, /^UF/);
    assert.match(rec.upstream_transport_failure_reason ?? '', new RegExp(`${id('imposter')} does not match ${id('other')}`));
    assert.equal(backends[1]!.requests, 0, 'the app behind the imposter saw nothing');
  });

  test('inbound is STRICT: plaintext and certificates from another root are refused and logged', async () => {
    const before = refusals.length;
    const plain = await request({ host: '127.77.1.2', port: 5000 }, '/').then(
      () => 'answered',
      () => 'refused',
    );
    assert.equal(plain, 'refused');
    const foreignResult = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.77.1.2', port: 5000, cert: certs.foreign!.cert, key: certs.foreign!.key, rejectUnauthorized: false, ALPNProtocols: ['istio-http/1.1'] });
      s.on('secureConnect', () => {
        s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      });
      s.on('data', () => resolve('answered'));
      s.on('error', () => resolve('refused'));
      s.on('close', () => resolve('refused'));
    });
    assert.equal(foreignResult, 'refused');
    assert.ok(refusals.length >= before + 2, `refusals logged: ${refusals.slice(before).join(' | ')}`);
    assert.ok(serverLog.records.some((r) => r.response_flags === 'DPE'));
  });

  test('captured TCP: VIP:3306 through virtualOutbound to the db sidecar over mTLS and back', async () => {
    const vip = vipOf(resources, 'db.sample.svc.cluster.local');
    // What iptables REDIRECT would have recorded for this connection.
    capturedDestination = { address: vip, port: 3306 };
    const s = net.connect({ host: '127.77.1.4', port: capturePort });
    const payload = Buffer.alloc(200_000, 7);
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      s.on('data', (c: Buffer) => {
        got += c.length;
        if (got === payload.length) s.end();
      });
      s.on('close', () => resolve());
      s.on('error', reject);
      s.write(payload);
    });
    assert.equal(got, payload.length);
    await waitFor(() => tcpClientLog.records.length > 0 && dbLog.records.length > 0);
    const c = tcpClientLog.records.at(-1)!;
    assert.equal(c.upstream_cluster, 'outbound|3306||db.sample.svc.cluster.local');
    assert.equal(c.upstream_host, '127.77.1.3:3306');
    assert.equal(c.bytes_received, payload.length);
    assert.equal(c.bytes_sent, payload.length);
    assert.equal(c.downstream_local_address, `${vip}:3306`);
    assert.equal(dbLog.records.at(-1)!.upstream_cluster, 'inbound|3306||');
  });

  test('captured HTTP: an unchanged request to the VIP is handed to 0.0.0.0_5000 and routed by Host', async () => {
    capturedDestination = { address: vipOf(resources, 'helloworld.sample.svc.cluster.local'), port: 5000 };
    const r = await request({ host: '127.77.1.4', port: capturePort }, '/hello', { headers: { host: 'helloworld.sample:5000' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello /hello host=helloworld.sample:5000');
    const rec = tcpClientLog.records.at(-1)!;
    assert.equal(rec.upstream_cluster, 'outbound|5000||helloworld.sample.svc.cluster.local');
    assert.equal(rec.downstream_local_address, `${capturedDestination.address}:5000`);
  });

  test('malformed HTTP from a client gets 400, the proxy keeps serving', async () => {
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.77.1.1', port: proxyPort });
      let data = '';
      s.on('data', (c) => (data += c));
      s.on('close', () => resolve(data));
      s.write('GET / HTTP/1.1\r\nbad header line\r\n\r\n');
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    const r = await request({ host: '127.77.1.1', port: proxyPort }, 'http://helloworld.sample:5000/again');
    assert.equal(r.status, 200);
  });

  test('a rejected resource is reported by name and field, and its last good version keeps serving', async () => {
    const name = 'outbound|5000||helloworld.sample.svc.cluster.local';
    const clusters = new Map(clientState.clusters);
    clusters.set(name, { ...(clusters.get(name) as Cluster), lb_policy: 'MAGLEV' });
    const { problems } = client.apply({ ...clientState, clusters });
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.name, name);
    assert.match(problems[0]!.message, /lb_policy: unsupported load balancer MAGLEV/);
    const r = await request({ host: '127.77.1.1', port: proxyPort }, 'http://helloworld.sample:5000/still');
    assert.equal(r.status, 200);
    assert.deepEqual(client.apply(clientState).problems, []);
  });
});

describe('captured inbound (virtualInbound)', () => {
  test('the chain is chosen by the original destination port; mTLS terminated, plaintext refused', async () => {
    const pki = await createTestPki();
    const [server, caller] = await Promise.all([pki.issue({ spiffe: id('helloworld') }), pki.issue({ spiffe: id('sleep') })]);
    let xfcc = '';
    const app = await startBackend('127.77.3.2', 5000, 'app', (req, res) => {
      xfcc = String(req.headers['x-forwarded-client-cert'] ?? '');
      req.resume();
      res.end('inbound ok');
    });
    const log = recorder();
    const sidecar = createSidecar({
      credentials: () => ({ certChainPem: server.cert, keyPem: server.key, rootsPem: pki.rootPem, spiffeId: id('helloworld') }),
      identity: { cluster: 'c1', namespace: NS, workload: 'helloworld', network: 'n1' },
      accessLog: log.log,
      // What iptables REDIRECT to 15006 would report for a connection to the pod's port 5000.
      originalDestination: () => ({ address: '127.77.3.1', port: 5000 }),
    });
    try {
      const state = stateFor(resources, { ip: '127.77.3.1', pod: 'helloworld-2', namespace: NS, serviceAccount: 'helloworld', labels: { app: 'helloworld' }, interception: 'REDIRECT', appHost: '127.77.3.2' });
      pinCaptureListeners(state, '127.77.3.1', { outbound: 15001, inbound: 15006 });
      assert.deepEqual(sidecar.apply(state).problems, []);
      const port = (await sidecar.listening()).get('virtualInbound')!.port;
      const reply = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.77.3.1', port, cert: caller.cert, key: caller.key, ca: pki.rootPem, servername: 'outbound_.5000_._.helloworld.sample.svc.cluster.local', ALPNProtocols: ['istio-http/1.1'], checkServerIdentity: () => undefined });
        let data = '';
        s.on('secureConnect', () => s.write('GET /in HTTP/1.1\r\nhost: helloworld.sample:5000\r\nconnection: close\r\n\r\n'));
        s.on('data', (c) => (data += c));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      });
      assert.match(reply, /^HTTP\/1\.1 200/);
      assert.match(reply, /inbound ok$/);
      assert.match(xfcc, new RegExp(`URI=${id('sleep')}$`));
      assert.equal(log.records.at(-1)!.upstream_cluster, 'inbound|5000||');
      assert.equal(log.records.at(-1)!.downstream_local_address, '127.77.3.1:5000');
      const plain = await request({ host: '127.77.3.1', port }, '/').then(() => 'answered', () => 'refused');
      assert.equal(plain, 'refused');
    } finally {
      await sidecar.close();
      await app.close();
    }
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
