/**
 * Robustness of the sidecar pair under change: config updates and certificate rotation in the middle of
 * mTLS traffic without a single failed request, and bounded buffering when the client reads slowly.
 * Certificates come from the project's CA: root → cluster intermediate → workload chains.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { createSidecar } from '../src/proxy/sidecar/index.js';
import type { ProxyXdsState, SidecarHandle as Sidecar } from '../src/proxy/sidecar/index.js';
import { caMaterialFromPem, generateIntermediateCa, generateRootCa, generateWorkloadCert } from '../src/ca/index.js';
import { destinationRule, request, startBackend, stateFor, svc, virtualService, workload } from './sidecar-mesh.js';
import type { Backend } from './sidecar-mesh.js';

const NS = 'app';
const id = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;
const base = [
  svc(NS, 'api', 8080, 8080),
  workload(NS, 'api-1', '127.79.1.2', { app: 'api', version: 'v1' }, { sa: 'api' }),
  workload(NS, 'api-2', '127.79.1.3', { app: 'api', version: 'v2' }, { sa: 'api' }),
  svc(NS, 'bulk', 8090, 8090),
  workload(NS, 'bulk-1', '127.79.1.9', { app: 'bulk' }, { plaintext: true }),
  svc(NS, 'web', 80, 80),
];
// Short-lived upstream connections, so rotation is visible on new connections while traffic flows.
const pool = destinationRule(NS, 'api', {
  host: 'api',
  trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 5 } } },
  subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
});
const split = (w1: number) =>
  virtualService(NS, 'api', {
    hosts: ['api'],
    http: [{ route: [{ destination: { host: 'api', subset: 'v1' }, weight: w1 }, { destination: { host: 'api', subset: 'v2' }, weight: 100 - w1 }] }],
  });

describe('sidecar updates under traffic', () => {
  interface Leaf {
    cert: string;
    key: string;
  }
  let rootPem = '';
  const certs: Record<string, Leaf> = {};
  let clientCreds: Leaf;
  let serverCreds: Leaf;
  let client: Sidecar;
  const servers: Sidecar[] = [];
  const backends: Backend[] = [];
  let port = 0;
  const hashes = new Set<string>();
  const clientState = (w1: number): ProxyXdsState =>
    stateFor(base, { ip: '127.79.1.1', pod: 'web-1', namespace: NS, serviceAccount: 'web', labels: { app: 'web' }, appHost: '127.79.2.1' }, {
      virtualServices: [split(w1)],
      destinationRules: [pool],
    });

  before(async () => {
    const root = await generateRootCa({ days: 1 });
    const cacerts = await generateIntermediateCa({ root, cluster: 'c1', days: 1 });
    const material = await caMaterialFromPem(cacerts);
    rootPem = root.certPem;
    for (const n of ['web', 'web2', 'api', 'api2']) {
      const w = await generateWorkloadCert({ material, spiffeId: id(n.replace('2', '')), ttlSeconds: 3600 });
      certs[n] = { cert: w.certChainPem, key: w.keyPem };
    }
    clientCreds = certs.web!;
    serverCreds = certs.api!;
    const handler = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      hashes.add(/Hash=([0-9a-f]+)/.exec(String(req.headers['x-forwarded-client-cert']))?.[1] ?? '');
      req.resume();
      res.end(name);
    };
    backends.push(await startBackend('127.79.2.2', 8080, 'api-1', handler('api-1')));
    backends.push(await startBackend('127.79.2.3', 8080, 'api-2', handler('api-2')));
    const chunk = Buffer.alloc(64 * 1024, 1);
    backends.push(
      await startBackend('127.79.1.9', 8090, 'bulk', (req, res) => {
        req.resume();
        const total = Number(req.headers['x-size']);
        let written = 0;
        res.writeHead(200, { 'content-length': total });
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            bulkWritten = written;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      }),
    );
    client = createSidecar({ credentials: () => ({ certChainPem: clientCreds.cert, keyPem: clientCreds.key, rootsPem: rootPem, spiffeId: id('web') }), identity: { cluster: 'c1', namespace: NS, workload: 'web', network: 'n1' } });
    assert.deepEqual(client.apply(clientState(50)).problems, []);
    for (const [ip, pod, app] of [['127.79.1.2', 'api-1', '127.79.2.2'], ['127.79.1.3', 'api-2', '127.79.2.3']] as const) {
      const s = createSidecar({ credentials: () => ({ certChainPem: serverCreds.cert, keyPem: serverCreds.key, rootsPem: rootPem, spiffeId: id('api') }), identity: { cluster: 'c1', namespace: NS, workload: pod, network: 'n1' } });
      assert.deepEqual(s.apply(stateFor(base, { ip, pod, namespace: NS, serviceAccount: 'api', labels: { app: 'api' }, appHost: app })).problems, []);
      servers.push(s);
      await s.listening();
    }
    port = (await client.listening()).get('127.79.1.1_15001')!.port;
  });

  let bulkWritten = 0;

  after(async () => {
    await client.close();
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(backends.map((b) => b.close()));
  });

  /** Keeps `workers` keep-alive clients busy until `stop` resolves; returns every status seen. */
  async function traffic(stop: Promise<void>, workers = 4): Promise<number[]> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
    const statuses: number[] = [];
    let done = false;
    void stop.then(() => (done = true));
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (!done) statuses.push((await request({ host: '127.79.1.1', port }, 'http://api.app:8080/', { agent }).catch(() => ({ status: -1 }))).status);
      }),
    );
    agent.destroy();
    return statuses;
  }

  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('apply() mid-traffic: weights move, nothing fails', async () => {
    // Built before the traffic starts: generating config is the control plane's work, not the proxy's.
    const states = [100, 0, 30, 100, 50].map((w) => clientState(w));
    const serverStates = servers.map((_, i) =>
      stateFor(base, { ip: `127.79.1.${i + 2}`, pod: `api-${i + 1}`, namespace: NS, serviceAccount: 'api', labels: { app: 'api' }, appHost: `127.79.2.${i + 2}` }),
    );
    const stop = (async () => {
      for (const state of states) {
        await tick(100);
        assert.deepEqual(client.apply(state).problems, []);
        servers.forEach((s, i) => assert.deepEqual(s.apply(serverStates[i]!).problems, []));
      }
      await tick(60);
    })();
    const statuses = await traffic(stop);
    assert.ok(statuses.length >= 20, `only ${statuses.length} requests`);
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
  });

  test('credentialsChanged() mid-traffic: new connections use the new certificate, nothing fails', async () => {
    hashes.clear();
    const stop = (async () => {
      await tick(100);
      clientCreds = certs.web2!;
      serverCreds = certs.api2!;
      client.credentialsChanged();
      for (const s of servers) s.credentialsChanged();
      await tick(200);
    })();
    const statuses = await traffic(stop);
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
    const fp = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
    assert.ok(hashes.has(fp(certs.web!.cert)), 'old certificate in use before rotation');
    assert.ok(hashes.has(fp(certs.web2!.cert)), 'new certificate in use after rotation');
  });

  test('a slow reader does not make the proxy buffer the response', async () => {
    const size = 96 * 1024 * 1024;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.79.1.1', port, path: 'http://bulk.app:8090/', headers: { 'x-size': String(size) }, agent: false }, resolve);
      req.on('error', reject);
      req.end();
    });
    res.pause();
    await tick(400);
    const whilePaused = bulkWritten;
    assert.ok(whilePaused < size / 2, `backend got ${whilePaused} bytes out while the client read nothing`);
    let got = 0;
    res.on('data', (c: Buffer) => (got += c.length));
    res.resume();
    await new Promise((r) => res.on('end', r));
    assert.equal(got, size);
  });
});
