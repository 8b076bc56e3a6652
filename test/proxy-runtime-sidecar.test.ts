/**
 * Two proxy processes' cores with the real sidecar data path, configured only over ADS from
 * generateForProxy: sleep's explicit HTTP proxy reaches helloworld's app through helloworld's sidecar over
 * mTLS, and config pushes during traffic fail no request. (127.201.x: other worktrees' tests use 127.7x.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Resource } from '../src/api/types.js';
import { aggregate } from '../src/controlplane/aggregate/index.js';
import type { MeshService } from '../src/controlplane/aggregate/index.js';
import { createSnapshotCache } from '../src/controlplane/cache/index.js';
import { proxyInfoFromNode, proxyGroupKey } from '../src/controlplane/translate/index.js';
import { allocateVips, buildClusterRegistry } from '../src/registry/index.js';
import { createProxy } from '../src/proxy/runtime/index.js';
import type { CredentialProvider, Proxy, ProxyOptions } from '../src/proxy/runtime/index.js';
import { createTestPki } from './proxy-certs.js';
import { eventually, startAds } from './xds-helpers.js';
import { httpRequest, snapshotFor, svc, we } from './proxy-runtime-helpers.js';

const NS = 'sample';
const APP_HOST = '127.201.2.2';

function meshOf(extra: Resource[] = []) {
  const registry = buildClusterRegistry({ clusterId: 'ack-1', network: 'network1', locality: 'region-1/zone-a' }, [
    svc(NS, 'helloworld', 5000, 5000),
    we(NS, 'helloworld-1', '127.201.1.2', { app: 'helloworld' }, 'helloworld'),
    svc(NS, 'sleep', 80, 80),
    we(NS, 'sleep-1', '127.201.1.1', { app: 'sleep' }, 'sleep'),
    ...extra,
  ]);
  const view = aggregate([registry], { localCluster: 'ack-1' });
  const vips = allocateVips([...view.services.keys()]);
  return { view, vipOf: (s: MeshService) => vips.get(s.hostname) };
}

function viaProxy(port: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.201.1.1', port, path: url, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('runtime + real sidecar: sleep → helloworld over mTLS from ADS config; pushes mid-traffic fail nothing', async (t) => {
  const pki = await createTestPki();
  const identity = async (sa: string): Promise<CredentialProvider> => {
    const leaf = await pki.issue({ spiffe: `spiffe://cluster.local/ns/${NS}/sa/${sa}` });
    const creds = { certChainPem: leaf.cert, keyPem: leaf.key, rootsPem: pki.rootPem, spiffeId: `spiffe://cluster.local/ns/${NS}/sa/${sa}` };
    return { ready: async () => creds, current: () => creds, onRotate: () => () => undefined, close: () => undefined };
  };
  const app = http.createServer((req, res) => {
    req.resume();
    res.end(`hello ${req.url} from ${String(req.headers['x-forwarded-client-cert'] ?? '').includes(`ns/${NS}/sa/sleep`) ? 'sleep' : 'unknown caller'}`);
  });
  await new Promise<void>((r) => app.listen(5000, APP_HOST, r));
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  const logs: Array<Record<string, unknown>> = [];
  const common = (sa: string, ip: string): ProxyOptions => ({
    role: 'sidecar', discoveryAddress: running.address, ip, podName: `${sa}-1`, namespace: NS, serviceAccount: sa, cluster: 'ack-1', network: 'network1',
    labels: { app: sa }, interception: 'NONE', admin: { port: 0, host: '127.0.0.1', statusPort: false }, dns: false,
    accessLog: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  const proxies: Proxy[] = [
    createProxy({ ...common('sleep', '127.201.1.1'), credentials: await identity('sleep') }),
    createProxy({ ...common('helloworld', '127.201.1.2'), appHost: APP_HOST, credentials: await identity('helloworld') }),
  ];
  t.after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    running.stop();
    app.closeAllConnections();
    app.close();
  });
  const publish = (m: ReturnType<typeof meshOf>) => {
    for (const p of proxies) {
      const s = snapshotFor(p.node, m);
      cache.setSnapshot(s.group, s.snapshot);
    }
  };
  publish(meshOf());
  const [sleepAddr] = await Promise.all(proxies.map((p) => p.start()));
  await Promise.all(proxies.map((p) => p.whenReady()));

  const url = `http://helloworld.${NS}.svc.cluster.local:5000/hi`;
  // Ready means the sidecar's listeners are bound: the first request works.
  assert.deepEqual(await viaProxy(15001, url), { status: 200, body: 'hello /hi from sleep' }, 'the app sees the caller identity the client sidecar presented');

  // Config pushes while requests flow: none may fail.
  let failures = 0;
  let done = 0;
  const load = (async () => {
    for (let i = 0; i < 60; i++) {
      const r = await viaProxy(15001, url).catch(() => ({ status: 0, body: '' }));
      if (r.status !== 200) failures++;
      done++;
    }
  })();
  for (let v = 0; v < 3; v++) {
    await eventually('some traffic', () => (done > v * 15 ? true : undefined), 10_000);
    publish(meshOf([svc(NS, `extra${v}`, 7000 + v, 7000 + v)]));
  }
  await load;
  assert.equal(failures, 0);
  await eventually('last push applied', () => (proxies[0]!.state().clusters.has(`outbound|7002||extra2.${NS}.svc.cluster.local`) ? true : undefined));

  const outbound = logs.filter((l) => l.upstream_cluster === `outbound|5000||helloworld.${NS}.svc.cluster.local`);
  assert.ok(outbound.length >= 61, `client access log lines: ${outbound.length}`);
  const clusters = (await httpRequest(`http://127.0.0.1:${sleepAddr!.admin!.port}/clusters`)).body;
  assert.match(clusters, new RegExp(`^outbound\\|5000\\|\\|helloworld\\.${NS}\\.svc\\.cluster\\.local::127\\.201\\.1\\.2:5000::health_flags::healthy$`, 'm'));
});
