import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../api/types.js';
import type { Any, XdsNode } from '../xds/index.js';
import { TYPE_URLS, encodeResource } from '../xds/index.js';
import { silentLogger } from '../shared/index.js';
import { buildClusterRegistry } from '../registry/index.js';
import { createSnapshotCache } from './cache/index.js';
import type { SnapshotCache } from './cache/index.js';
import { buildMeshInputs } from './mesh-inputs.js';
import type { MeshInputs } from './mesh-inputs.js';
import { createPusher } from './push.js';
import { createResourceEncoder } from './resource-encoder.js';
import { generateEndpointsForProxy, generateForProxy, generateOutboundClusters, generateProxyOwnResources, proxyGroupKey, proxyInfoFromNode } from './translate/index.js';

const svc = (ns: string, name: string, port = 80, portName = 'http'): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: portName, port, targetPort: 8080 }] },
});
const we = (ns: string, name: string, address: string, app: string, extra: Record<string, string> = {}, sa = app): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: ns },
  spec: { address, labels: { app, ...extra }, serviceAccount: sa },
});
const reviewsRule = (connectTimeout: string): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    host: 'reviews.shop.svc.cluster.local',
    trafficPolicy: { connectionPool: { tcp: { connectTimeout } }, outlierDetection: { consecutive5xxErrors: 5 } },
    subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
    // Only proxies in `shop` see it: proxies in `web` get other clusters for the same service.
    exportTo: ['.'],
  },
});
const ewGateway: Resource[] = [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels: { 'topology.istio.io/network': 'net-1' } },
    spec: { selector: { istio: 'eastwestgateway' }, ports: [{ name: 'tls', port: 15443 }], externalIPs: ['198.51.100.1'] },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
    spec: { selector: { istio: 'eastwestgateway' }, servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }] },
  },
];

const baseResources: Resource[] = [
  ...['shop', 'web'].map((name): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
  svc('shop', 'reviews'),
  svc('shop', 'ratings'),
  svc('shop', 'db', 3306, 'tcp-mysql'),
  svc('web', 'frontend'),
  we('shop', 'reviews-1', '10.1.0.1', 'reviews', { version: 'v1' }),
  we('shop', 'reviews-2', '10.1.0.2', 'reviews', { version: 'v2' }),
  we('shop', 'ratings-1', '10.1.0.3', 'ratings'),
  we('shop', 'db-1', '10.1.0.4', 'db'),
  we('web', 'frontend-1', '10.1.0.5', 'frontend'),
  reviewsRule('2s'),
  ...ewGateway,
];
// The same services in a second cluster on another network: split horizon sends its endpoints via a gateway.
const remote = buildClusterRegistry({ clusterId: 'c2', network: 'net-2' }, [
  svc('shop', 'reviews'),
  we('shop', 'reviews-9', '10.2.0.9', 'reviews', { version: 'v1' }),
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels: { 'topology.istio.io/network': 'net-2' } },
    spec: { selector: { istio: 'eastwestgateway' }, ports: [{ name: 'tls', port: 15443 }], externalIPs: ['198.51.100.2'] },
  },
]);
const inputsOf = (local: Resource[]): MeshInputs =>
  buildMeshInputs({ identity: { clusterId: 'c1', network: 'net-1', locality: 'r1/z1' }, local, remotes: [remote] });

const node = (id: string, metadata: Record<string, unknown>, zone = 'z1'): XdsNode => ({
  id,
  metadata: { CLUSTER_ID: 'c1', NETWORK: 'net-1', ...metadata },
  locality: { region: 'r1', zone },
});
/** Groups that share some parts and not others: namespaces, labels, localities, a proxyless client, a gateway. */
const nodes: XdsNode[] = [
  node('sidecar~10.1.0.5~frontend-1.web~web.svc.cluster.local', { NAMESPACE: 'web', LABELS: { app: 'frontend' } }),
  node('sidecar~10.1.0.6~frontend-2.web~web.svc.cluster.local', { NAMESPACE: 'web', LABELS: { app: 'frontend', version: 'canary' } }, 'z2'),
  node('sidecar~10.1.0.3~ratings-1.shop~shop.svc.cluster.local', { NAMESPACE: 'shop', LABELS: { app: 'ratings' } }),
  node('sidecar~10.1.0.4~db-1.shop~shop.svc.cluster.local', { NAMESPACE: 'shop', LABELS: { app: 'db' } }),
  node('sidecar~10.1.0.7~grpc-1.shop~shop.svc.cluster.local', { NAMESPACE: 'shop', GENERATOR: 'grpc' }),
  node('sidecar~10.1.0.8~explicit-1.web~web.svc.cluster.local', { NAMESPACE: 'web', LABELS: { app: 'frontend' }, INTERCEPTION_MODE: 'NONE' }),
  node('router~10.1.0.9~gw-1.istio-system~istio-system.svc.cluster.local', { NAMESPACE: 'istio-system', LABELS: { istio: 'eastwestgateway' }, REQUESTED_NETWORK_VIEW: 'net-1' }),
];

const ROOTS = '-----BEGIN CERTIFICATE-----\nroots\n-----END CERTIFICATE-----\n';

/** name -> hex bytes of every resource of every type in a group's snapshot. */
function contents(cache: SnapshotCache, group: string): Record<string, Record<string, string>> {
  const snapshot = cache.getSnapshot(group);
  assert.ok(snapshot, `no snapshot for ${group}`);
  const out: Record<string, Record<string, string>> = {};
  for (const t of snapshot.typeUrls) out[t] = Object.fromEntries([...snapshot.get(t)!.resources].map(([n, a]) => [n, hex(a)]));
  return out;
}

const hex = (a: Any): string => Buffer.from(a.value).toString('hex');

/** What the pusher did before any sharing or caching: generateForProxy and encodeResource, per group. */
function uncached(inputs: MeshInputs, n: XdsNode): Record<string, Record<string, string>> {
  const r = generateForProxy({ ...inputs, proxy: proxyInfoFromNode(n) });
  const encode = (typeUrl: string, m: ReadonlyMap<string, object>) => Object.fromEntries([...m].map(([name, v]) => [name, hex(encodeResource(typeUrl, v))]));
  return {
    [TYPE_URLS.cluster]: encode(TYPE_URLS.cluster, r.clusters),
    [TYPE_URLS.endpoint]: encode(TYPE_URLS.endpoint, r.endpoints),
    [TYPE_URLS.listener]: encode(TYPE_URLS.listener, r.listeners),
    [TYPE_URLS.route]: encode(TYPE_URLS.route, r.routes),
    ...(r.nameTable ? { [TYPE_URLS.nameTable]: { '': hex(encodeResource(TYPE_URLS.nameTable, r.nameTable)) } } : {}),
  };
}

/** The snapshot contents without the ROOTCA secret, and name tables under one key (they have no name). */
function comparable(c: Record<string, Record<string, string>>): Record<string, Record<string, string>> {
  const { [TYPE_URLS.secret]: _secret, [TYPE_URLS.nameTable]: table, ...rest } = c;
  return { ...rest, ...(table ? { [TYPE_URLS.nameTable]: { '': Object.values(table)[0]! } } : {}) };
}

function setup(initial: MeshInputs) {
  let inputs = initial;
  const cache = createSnapshotCache();
  const encoder = createResourceEncoder();
  const pusher = createPusher({ cache, logger: silentLogger, current: () => inputs, rootsPem: () => ROOTS, encoder });
  const groups = nodes.map((n) => pusher.groupFor(n));
  assert.equal(new Set(groups).size, nodes.length, 'every test node is its own group');
  return {
    cache,
    encoder,
    pusher,
    groups,
    async push(next: MeshInputs) {
      inputs = next;
      await pusher.pushAll(next);
    },
  };
}

function assertSameAsUncached(t: ReturnType<typeof setup>, inputs: MeshInputs, when: string): void {
  for (const [i, n] of nodes.entries()) {
    assert.deepEqual(comparable(contents(t.cache, t.groups[i]!)), uncached(inputs, n), `${when}: ${t.groups[i]}`);
  }
  assert.equal(t.pusher.stats().generationErrors, 0);
}

/** Every distinct packed resource the live snapshots hold, by identity. */
function liveAnys(cache: SnapshotCache): Set<Any> {
  const out = new Set<Any>();
  for (const g of cache.groups()) {
    const s = cache.getSnapshot(g)!;
    for (const t of s.typeUrls) for (const a of s.get(t)!.resources.values()) out.add(a);
  }
  return out;
}

const reviewsCluster = 'outbound|80||reviews.shop.svc.cluster.local';
const shopSidecar = 2;
const webSidecar = 0;

test('sharing and caching do not change what any group is sent', async () => {
  const first = inputsOf(baseResources);
  const t = setup(first);
  assertSameAsUncached(t, first, 'first generation');
  await t.push(first);
  assertSameAsUncached(t, first, 'full push, same inputs');
  // Proxies in different namespaces see different DestinationRules, so shared clusters must not cross them.
  assert.notEqual(contents(t.cache, t.groups[shopSidecar]!)[TYPE_URLS.cluster]![reviewsCluster], contents(t.cache, t.groups[webSidecar]!)[TYPE_URLS.cluster]![reviewsCluster]);

  const before = t.cache.getSnapshot(t.groups[shopSidecar]!)!.get(TYPE_URLS.cluster)!.resources.get(reviewsCluster);
  const unrelated = inputsOf([...baseResources, svc('web', 'extra')]);
  await t.push(unrelated);
  assertSameAsUncached(t, unrelated, 'after an unrelated service was added');
  // The unchanged cluster was not encoded again: the very same bytes were reused.
  assert.equal(t.cache.getSnapshot(t.groups[shopSidecar]!)!.get(TYPE_URLS.cluster)!.resources.get(reviewsCluster), before);
  assert.ok(t.encoder.stats().hits > 0);
});

test('a change to a service changes its cluster, in every group that sees it', async () => {
  const first = inputsOf(baseResources);
  const t = setup(first);
  await t.push(first);
  const old = contents(t.cache, t.groups[shopSidecar]!)[TYPE_URLS.cluster]!;

  const changed = inputsOf(baseResources.map((r) => (r.kind === 'DestinationRule' ? reviewsRule('7s') : r)));
  await t.push(changed);
  assertSameAsUncached(t, changed, 'after the DestinationRule changed');
  const now = contents(t.cache, t.groups[shopSidecar]!)[TYPE_URLS.cluster]!;
  for (const name of [reviewsCluster, 'outbound|80|v1|reviews.shop.svc.cluster.local', 'outbound|80|v2|reviews.shop.svc.cluster.local']) {
    assert.notEqual(now[name], old[name], `${name} must change with its DestinationRule`);
  }
  assert.equal(now['outbound|80||ratings.shop.svc.cluster.local'], old['outbound|80||ratings.shop.svc.cluster.local']);

  // A new identity behind a service changes its cluster's SAN checks for everyone (the web proxies too).
  const webOld = contents(t.cache, t.groups[webSidecar]!)[TYPE_URLS.cluster]![reviewsCluster];
  const newIdentity = inputsOf([...baseResources.map((r) => (r.kind === 'DestinationRule' ? reviewsRule('7s') : r)), we('shop', 'reviews-3', '10.1.0.10', 'reviews', { version: 'v1' }, 'reviews-canary')]);
  await t.push(newIdentity);
  assertSameAsUncached(t, newIdentity, 'after a new service account appeared');
  assert.notEqual(contents(t.cache, t.groups[webSidecar]!)[TYPE_URLS.cluster]![reviewsCluster], webOld);
});

test('the endpoint fast path serves the same assignments as a full generation', async () => {
  const first = inputsOf(baseResources);
  const t = setup(first);
  const moreEndpoints = inputsOf([...baseResources, we('shop', 'ratings-2', '10.1.0.11', 'ratings')]);
  await t.pusher.pushEndpoints(moreEndpoints);
  assertSameAsUncached(t, moreEndpoints, 'after the EDS fast path');
});

test('the encoder holds only what live snapshots hold: entries go with their services and groups', async () => {
  const first = inputsOf(baseResources);
  const t = setup(first);
  await t.push(first);
  assert.equal(t.encoder.stats().entries, liveAnys(t.cache).size);

  // Services deleted: their clusters and assignments leave the encoder with the next full push.
  const fewer = inputsOf(baseResources.filter((r) => r.metadata.name !== 'ratings' && r.metadata.name !== 'ratings-1'));
  const entriesBefore = t.encoder.stats().entries;
  await t.push(fewer);
  assert.equal(t.encoder.stats().entries, liveAnys(t.cache).size);
  assert.ok(t.encoder.stats().entries < entriesBefore);

  // Groups forgotten: what only they used goes too.
  for (const g of t.groups.slice(1)) t.pusher.forget(g);
  await t.push(fewer);
  assert.equal(t.cache.groups().length, 1);
  assert.equal(t.encoder.stats().entries, liveAnys(t.cache).size);

  // An endpoint-only push drops stale assignments but keeps the other types' entries.
  await t.pusher.pushEndpoints(inputsOf(baseResources.filter((r) => r.metadata.name !== 'ratings-1' && r.metadata.name !== 'reviews-2')));
  assert.equal(t.encoder.stats().entries, liveAnys(t.cache).size);
});

test('generateForProxy is exactly its three parts for sidecars and proxyless clients', () => {
  const inputs = inputsOf(baseResources);
  for (const n of nodes.slice(0, -1)) {
    const input = { ...inputs, proxy: proxyInfoFromNode(n) };
    const whole = generateForProxy(input);
    const own = generateProxyOwnResources(input)!;
    assert.deepEqual(new Map([...generateOutboundClusters(input)!, ...own.clusters]), whole.clusters, proxyGroupKey(input.proxy));
    assert.deepEqual(generateEndpointsForProxy(input), whole.endpoints);
    assert.deepEqual(own.endpoints.size, 0);
    assert.deepEqual(own.listeners, whole.listeners);
    assert.deepEqual(own.routes, whole.routes);
    assert.deepEqual(own.nameTable, whole.nameTable);
  }
  const gateway = { ...inputs, proxy: proxyInfoFromNode(nodes.at(-1)!) };
  assert.equal(generateProxyOwnResources(gateway), undefined);
  assert.equal(generateOutboundClusters(gateway), undefined);
});
