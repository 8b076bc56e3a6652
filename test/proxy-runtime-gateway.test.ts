/**
 * The east-west gateway role end to end: the control plane's router resources (LDS server_names + EDS
 * `outbound_.PORT_.SUBSET_.FQDN`) drive the SNI passthrough gateway; a real TLS client reaches the right
 * backends through two gateway replicas side by side, balanced per connection, and anything else is refused.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createSnapshotCache } from '../src/controlplane/cache/index.js';
import { proxyInfoFromNode, proxyGroupKey } from '../src/controlplane/translate/index.js';
import { TYPE_URLS, encodeResource } from '../src/xds/index.js';
import { createProxy } from '../src/proxy/runtime/index.js';
import type { Proxy, ProxyOptions } from '../src/proxy/runtime/index.js';
import { createTestPki } from './proxy-certs.js';
import { eventually, startAds } from './xds-helpers.js';
import { buildMesh, httpRequest, snapshotFor, toSnapshot } from './proxy-runtime-helpers.js';

const SNI = 'outbound_.8000_._.httpbin.default.svc.cluster.local';

async function listenTls(server: tls.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Two TLS backends on 127.0.0.2 and 127.0.0.3 with the same port, each answering its own name. */
async function startBackends(cert: string, key: string): Promise<{ port: number; servers: tls.Server[] }> {
  for (let attempt = 0; ; attempt++) {
    const servers = ['httpbin-1', 'httpbin-2'].map((name) => tls.createServer({ cert, key }, (s) => s.end(name)));
    try {
      const port = await listenTls(servers[0]!, '127.0.0.2', 0);
      await listenTls(servers[1]!, '127.0.0.3', port);
      return { port, servers };
    } catch (err) {
      for (const s of servers) s.close();
      if (attempt > 5) throw err;
    }
  }
}

function dial(port: number, servername: string | undefined, rootPem: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), ca: rootPem, checkServerIdentity: () => undefined });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(`error:${err.code ?? err.message}`));
  });
}

/** Two TLS backends for httpbin, the mesh that routes to them, and an ADS server; stopped after the test. */
async function gatewayFixture(t: TestContext) {
  const pki = await createTestPki();
  const leaf = await pki.issue({ spiffe: 'spiffe://cluster.local/ns/default/sa/httpbin' });
  const backends = await startBackends(leaf.cert, leaf.key);
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  t.after(() => {
    running.stop();
    for (const s of backends.servers) s.close();
  });
  return { pki, backends, m: buildMesh(backends.port), cache, running };
}

test('gateway runtime: routes control-plane SNIs to EDS endpoints across replicas, refuses the rest', async (t) => {
  const { pki, backends, m, cache, running } = await gatewayFixture(t);
  const logs: Array<Record<string, unknown>> = [];
  const gatewayOptions = (replica: number): ProxyOptions => ({
    role: 'eastwest-gateway',
    discoveryAddress: running.address,
    ip: `127.0.0.${10 + replica}`,
    podName: `istio-eastwestgateway-${replica}`,
    namespace: 'istio-system',
    serviceAccount: 'istio-eastwestgateway',
    cluster: 'ack-2',
    network: 'network2',
    labels: { istio: 'eastwestgateway' },
    admin: { port: 0, statusPort: false },
    gateway: { port: 0, host: '127.0.0.1' },
    accessLog: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  const replicas: Proxy[] = [createProxy(gatewayOptions(1)), createProxy(gatewayOptions(2))];
  t.after(async () => {
    await Promise.all(replicas.map((r) => r.close()));
  });
  // Both replicas are one group: the control plane serves them one snapshot.
  const s = snapshotFor(replicas[0]!.node, m);
  assert.equal(snapshotFor(replicas[1]!.node, m).group, s.group);
  assert.equal(replicas[0]!.node.id.split('~')[0], 'router');
  assert.equal(replicas[0]!.node.metadata?.REQUESTED_NETWORK_VIEW, 'network2');
  cache.setSnapshot(s.group, s.snapshot);
  const started = await Promise.all(replicas.map((r) => r.start()));
  await Promise.all(replicas.map((r) => r.whenReady()));

  for (const [i, addr] of started.entries()) {
    const answers = new Set<string>();
    for (let n = 0; n < 4; n++) answers.add(await dial(addr.gateway!.port, SNI, pki.rootPem));
    assert.deepEqual([...answers].sort(), ['httpbin-1', 'httpbin-2'], `replica ${i + 1} balances per connection`);
  }
  const gw = started[0]!.gateway!.port;
  // An SNI of the right form the control plane does not route, no SNI, and plaintext are refused.
  assert.match(await dial(gw, 'outbound_.8000_._.db.sample.svc.cluster.local', pki.rootPem), /^error:|^$/);
  assert.match(await dial(gw, undefined, pki.rootPem), /^error:|^$/);
  const plain = await new Promise<string>((resolve) => {
    const c = net.connect(gw, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    let d = '';
    c.on('data', (b) => (d += b.toString()));
    c.on('close', () => resolve(d));
    c.on('error', () => undefined);
  });
  assert.equal(plain, '');
  const refused = await eventually('refusal logs', () => {
    const r = logs.filter((l) => l.response_flags === 'NR');
    return r.length >= 3 ? r : undefined;
  });
  assert.ok(refused.some((l) => l.requested_server_name === 'outbound_.8000_._.db.sample.svc.cluster.local'));
  const ok = logs.filter((l) => l.requested_server_name === SNI && l.response_flags === '-');
  assert.equal(ok.length, 8);
  assert.deepEqual(new Set(ok.map((l) => l.upstream_host)), new Set([`127.0.0.2:${backends.port}`, `127.0.0.3:${backends.port}`]));

  // Endpoints follow EDS: drop one workload and only the other is used.
  const fewer = snapshotFor(replicas[0]!.node, m);
  const cla = fewer.resources.endpoints.get(SNI) as { endpoints: Array<{ lb_endpoints: Array<{ health_status?: string; endpoint: { address: { socket_address: { address: string } } } }> }> };
  for (const g of cla.endpoints) for (const e of g.lb_endpoints) if (e.endpoint.address.socket_address.address === '127.0.0.2') e.health_status = 'UNHEALTHY';
  cache.setSnapshot(s.group, toSnapshot(fewer.resources));
  await eventually('EDS update', () => (replicas[0]!.versions().get(TYPE_URLS.endpoint)?.version !== s.snapshot.version(TYPE_URLS.endpoint) ? true : undefined));
  for (let n = 0; n < 3; n++) assert.equal(await dial(gw, SNI, pki.rootPem), 'httpbin-2');

  // A listener the passthrough gateway cannot run (server_names without a tcp_proxy) is NACKed; routing goes on.
  const current = cache.getSnapshot(s.group)!;
  cache.setSnapshot(s.group, current.withType(TYPE_URLS.listener, [
    ...current.get(TYPE_URLS.listener)!.resources.values(),
    encodeResource(TYPE_URLS.listener, { name: 'broken', filter_chains: [{ name: 'no-proxy', filter_chain_match: { server_names: ['outbound_.1_._.x.y.svc.cluster.local'] } }] }),
  ]));
  const nack = await eventually('gateway NACK', () => running.ads.connectedProxies().map((p) => p.types.find((ty) => ty.typeUrl === TYPE_URLS.listener)?.lastNack).find(Boolean));
  assert.match(nack.message, /broken: filter chain no-proxy has server_names but no tcp_proxy cluster/);
  assert.equal(await dial(gw, SNI, pki.rootPem), 'httpbin-2');

  // The gateway's admin shows its EDS with health.
  const clusters = (await httpRequest(`http://127.0.0.1:${started[0]!.admin!.port}/clusters`)).body;
  assert.match(clusters, new RegExp(`^${SNI.replace(/\./g, '\\.')}::127\\.0\\.0\\.2:${backends.port}::health_flags::/eds_status_unhealthy$`, 'm'));
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

test('gateway runtime: without a pinned port it listens on the LDS listener\'s port and follows it when it moves', async (t) => {
  const { pki, m, cache, running } = await gatewayFixture(t);
  const proxy = createProxy({
    role: 'eastwest-gateway',
    discoveryAddress: running.address,
    ip: '127.0.0.10',
    podName: 'istio-eastwestgateway-1',
    namespace: 'istio-system',
    serviceAccount: 'istio-eastwestgateway',
    cluster: 'ack-2',
    network: 'network2',
    labels: { istio: 'eastwestgateway' },
    admin: { port: 0, statusPort: false },
    gateway: { host: '127.0.0.1' },
  });
  t.after(() => proxy.close());
  const withPort = (port: number) => {
    const s = snapshotFor(proxy.node, m);
    const listeners = [...s.resources.listeners.values()] as Array<{ name: string; address: { socket_address: { port_value: number } } }>;
    assert.deepEqual(listeners.map((l) => [l.name, l.address.socket_address.port_value]), [['0.0.0.0_15443', 15443]], 'the control plane sends 15443');
    listeners[0]!.address.socket_address.port_value = port;
    return { group: s.group, snapshot: toSnapshot(s.resources) };
  };
  const p1 = await freePort();
  const first = withPort(p1);
  cache.setSnapshot(first.group, first.snapshot);
  const addresses = await proxy.start();
  await proxy.whenReady();
  assert.equal(addresses.gateway?.port, p1);
  assert.match(await dial(p1, SNI, pki.rootPem), /^httpbin-[12]$/);

  const p2 = await freePort();
  const moved = withPort(p2);
  cache.setSnapshot(moved.group, moved.snapshot);
  await eventually('the new listener version', () => (proxy.versions().get(TYPE_URLS.listener)?.version === moved.snapshot.version(TYPE_URLS.listener) ? true : undefined));
  // The new port is bound before the update is acknowledged as ready; allow the bind a moment.
  let answer = '';
  for (let i = 0; i < 100 && !/^httpbin-[12]$/.test(answer); i++) {
    answer = await dial(p2, SNI, pki.rootPem);
    if (!/^httpbin-[12]$/.test(answer)) await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(answer, /^httpbin-[12]$/);
  assert.equal(await dial(p1, SNI, pki.rootPem), 'error:ECONNREFUSED', 'the old port was drained and closed');
  assert.equal(addresses.gateway?.port, p2);
});
