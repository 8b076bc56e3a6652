/** Snapshots and the snapshot cache, in process: versions, the EDS fast path, watches, consistency. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSnapshotConsistency, createSnapshot, createSnapshotCache, SnapshotError } from '../src/controlplane/cache/index.js';
import type { WatchResponse } from '../src/controlplane/cache/index.js';
import {
  TYPE_URLS,
  apiListener,
  clusterLoadAssignment,
  decodeResource,
  edsCluster,
  encodeResource,
  httpConnectionManagerFilter,
  simpleRouteConfiguration,
} from '../src/xds/index.js';
import type { Any } from '../src/xds/index.js';
import { ValidationError, silentLogger } from '../src/shared/index.js';

const cluster = (name: string, ms = 1000): Any => encodeResource(TYPE_URLS.cluster, edsCluster(name, { connectTimeoutMs: ms }));
const cla = (name: string, port = 80): Any =>
  encodeResource(TYPE_URLS.endpoint, clusterLoadAssignment(name, [{ locality: { zone: 'z' }, endpoints: [{ address: '10.0.0.1', port }] }]));

test('content versions: equal content gives equal versions whatever the order, any change a new one', () => {
  const a = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a'), cluster('b')] });
  const b = createSnapshot({ [TYPE_URLS.cluster]: [cluster('b'), cluster('a')] });
  const c = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a'), cluster('b', 2000)] });
  assert.equal(a.version(TYPE_URLS.cluster), b.version(TYPE_URLS.cluster));
  assert.notEqual(a.version(TYPE_URLS.cluster), c.version(TYPE_URLS.cluster));
  assert.deepEqual([...a.get(TYPE_URLS.cluster)!.resources.keys()], ['a', 'b']);
  const explicit = createSnapshot({ [TYPE_URLS.cluster]: { version: 'v42', resources: [cluster('a')] } });
  assert.equal(explicit.version(TYPE_URLS.cluster), 'v42');
  assert.ok(Object.isFrozen(a));
});

test('snapshots refuse duplicates and resources of the wrong type', () => {
  assert.throws(() => createSnapshot({ [TYPE_URLS.cluster]: [cluster('a'), cluster('a', 5)] }), (e: unknown) => e instanceof SnapshotError && /"a" appears twice/.test(e.message));
  assert.throws(() => createSnapshot({ [TYPE_URLS.cluster]: [cla('a')] }), /expected type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster/);
});

test('setEndpoints replaces only EDS: other versions kept, only EDS watches fire', () => {
  const cache = createSnapshotCache();
  const base = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')], [TYPE_URLS.endpoint]: [cla('a')] });
  cache.setSnapshot('g', base);
  const fired: string[] = [];
  cache.watch('g', TYPE_URLS.cluster, undefined, base.version(TYPE_URLS.cluster), (r) => fired.push(r.typeUrl));
  cache.watch('g', TYPE_URLS.endpoint, ['a'], base.version(TYPE_URLS.endpoint), (r) => fired.push(r.typeUrl));
  const next = cache.setEndpoints('g', [cla('a', 81)]);
  assert.deepEqual(fired, [TYPE_URLS.endpoint]);
  assert.equal(next.version(TYPE_URLS.cluster), base.version(TYPE_URLS.cluster));
  assert.equal(next.get(TYPE_URLS.cluster), base.get(TYPE_URLS.cluster), 'shared, not rebuilt');
  assert.equal(cache.getSnapshot('g'), next);
  assert.equal(cache.watchCount(), 1, 'the CDS watch is still open');
  // With no snapshot yet, the fast path creates an endpoint-only one.
  assert.deepEqual(cache.setEndpoints('h', [cla('x')]).typeUrls, [TYPE_URLS.endpoint]);
});

test('patchEndpoints adds, replaces and removes single assignments; an unchanged patch keeps the version', () => {
  const cache = createSnapshotCache();
  const base = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')], [TYPE_URLS.endpoint]: [cla('a'), cla('b'), cla('c')] });
  cache.setSnapshot('g', base);
  const next = cache.patchEndpoints('g', { upsert: [cla('a', 81), cla('d')], remove: ['b'] });
  const eds = next.get(TYPE_URLS.endpoint)!;
  assert.deepEqual([...eds.resources.keys()], ['a', 'c', 'd']);
  assert.deepEqual(decodeResource(eds.resources.get('a')!).value, decodeResource(cla('a', 81)).value);
  assert.equal(eds.resources.get('c'), base.get(TYPE_URLS.endpoint)!.resources.get('c'), 'untouched resources are shared');
  assert.equal(next.get(TYPE_URLS.cluster), base.get(TYPE_URLS.cluster));
  // Same content as a full rebuild: same version, so a rebuild after a patch pushes nothing new.
  assert.equal(eds.version, createSnapshot({ [TYPE_URLS.endpoint]: [cla('d'), cla('c'), cla('a', 81)] }).version(TYPE_URLS.endpoint));
  assert.equal(cache.patchEndpoints('g', { remove: ['nope'] }).version(TYPE_URLS.endpoint), eds.version);
});

test('watches: answered at once when behind, held when current, one-shot, cancellable, fired in push order', () => {
  const cache = createSnapshotCache();
  const got: WatchResponse[] = [];
  // No snapshot yet: held.
  cache.watch('g', TYPE_URLS.route, ['r'], undefined, (r) => got.push(r));
  cache.watch('g', TYPE_URLS.listener, undefined, undefined, (r) => got.push(r));
  cache.watch('g', TYPE_URLS.endpoint, ['b', 'zz'], undefined, (r) => got.push(r));
  const cancel = cache.watch('g', TYPE_URLS.cluster, undefined, undefined, () => assert.fail('cancelled watch fired'));
  cache.watch('g', TYPE_URLS.cluster, undefined, undefined, (r) => got.push(r));
  cache.watch('other', TYPE_URLS.cluster, undefined, undefined, () => assert.fail('other group fired'));
  cancel();
  assert.equal(got.length, 0);
  const s = createSnapshot({
    [TYPE_URLS.listener]: [encodeResource(TYPE_URLS.listener, apiListener('l', 'r'))],
    [TYPE_URLS.route]: [encodeResource(TYPE_URLS.route, simpleRouteConfiguration('r', [{ domains: ['*'], cluster: 'a' }]))],
    [TYPE_URLS.cluster]: [cluster('a'), cluster('b')],
    [TYPE_URLS.endpoint]: [cla('a'), cla('b')],
  });
  cache.setSnapshot('g', s);
  assert.deepEqual(
    got.map((r) => r.typeUrl),
    [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route],
  );
  assert.deepEqual(got[1]!.resources.map((r) => r.name), ['b'], 'named: only what exists of what was asked');
  assert.deepEqual(got[0]!.resources.map((r) => r.name), ['a', 'b'], 'wildcard: everything');
  assert.equal(cache.watchCount(), 1, 'only the other group is left');

  // Current: held; behind: answered inside the call.
  let now = 0;
  cache.watch('g', TYPE_URLS.cluster, undefined, s.version(TYPE_URLS.cluster), () => now++);
  assert.equal(now, 0);
  cache.watch('g', TYPE_URLS.cluster, undefined, 'old', () => now++);
  assert.equal(now, 1);
  // A named type asked as a wildcard subscribes to nothing rather than to everything.
  const empty: WatchResponse[] = [];
  cache.watch('g', TYPE_URLS.endpoint, undefined, undefined, (r) => empty.push(r));
  assert.deepEqual(empty[0]?.resources, []);
});

test('a throwing watch callback does not stop the others', () => {
  const cache = createSnapshotCache();
  let reached = false;
  cache.watch('g', TYPE_URLS.cluster, undefined, undefined, () => {
    throw new Error('boom');
  });
  cache.watch('g', TYPE_URLS.cluster, undefined, undefined, () => (reached = true));
  cache.setSnapshot('g', createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] }));
  assert.ok(reached);
});

test('a cache with consistency "reject" refuses a dangling snapshot and keeps serving the last good one', () => {
  const cache = createSnapshotCache({ consistency: 'reject' });
  const good = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')], [TYPE_URLS.endpoint]: [cla('a')] });
  cache.setSnapshot('g', good);
  const fired: string[] = [];
  cache.watch('g', TYPE_URLS.cluster, undefined, good.version(TYPE_URLS.cluster), (r) => fired.push(r.version));
  assert.throws(
    () => cache.setSnapshot('g', good.withType(TYPE_URLS.cluster, [cluster('a'), cluster('b')])),
    (e: unknown) => e instanceof ValidationError && /g: Cluster\/b: eds_cluster_config\.service_name: no ClusterLoadAssignment named "b"/.test(e.message),
  );
  assert.throws(() => cache.setEndpoints('g', []), ValidationError);
  assert.equal(cache.getSnapshot('g'), good);
  assert.deepEqual(fired, []);
  const warned: string[] = [];
  const lenient = createSnapshotCache({ consistency: 'warn', logger: { ...silentLogger, warn: (m, f) => warned.push(`${m} ${String(f?.problem)}`) } });
  lenient.setSnapshot('g', good.withType(TYPE_URLS.endpoint, []));
  assert.deepEqual(warned, ['inconsistent snapshot Cluster/a: eds_cluster_config.service_name: no ClusterLoadAssignment named "a"']);
});

test('consistency check names every dangling reference', () => {
  const listener = encodeResource(TYPE_URLS.listener, {
    name: 'in',
    filter_chains: [{ filters: [httpConnectionManagerFilter('missing-route')] }],
  });
  const s = createSnapshot({
    [TYPE_URLS.listener]: [listener, encodeResource(TYPE_URLS.listener, apiListener('api', 'r'))],
    [TYPE_URLS.route]: [encodeResource(TYPE_URLS.route, simpleRouteConfiguration('r', [{ domains: ['*'], cluster: 'nope' }, { domains: ['x'], cluster: 'a' }]))],
    [TYPE_URLS.cluster]: [cluster('a'), encodeResource(TYPE_URLS.cluster, edsCluster('b', { serviceName: 'b-eds' }))],
    [TYPE_URLS.endpoint]: [cla('a')],
  });
  assert.deepEqual(
    checkSnapshotConsistency(s).map((p) => `${p.resource} ${p.path}: ${p.message}`),
    [
      'Cluster/b eds_cluster_config.service_name: no ClusterLoadAssignment named "b-eds"',
      'Listener/in filter_chains[0].filters[0].typed_config.rds.route_config_name: no RouteConfiguration named "missing-route"',
      'RouteConfiguration/r virtual_hosts[0].routes[0].route.cluster: no Cluster named "nope"',
    ],
  );
  assert.deepEqual(checkSnapshotConsistency(s.withType(TYPE_URLS.listener, [encodeResource(TYPE_URLS.listener, apiListener('api', 'r'))]).withType(TYPE_URLS.route, []).withType(TYPE_URLS.cluster, [cluster('a')]).withoutType(TYPE_URLS.route)), [
    { resource: 'Listener/api', path: 'api_listener.api_listener.rds.route_config_name', message: 'no RouteConfiguration named "r"' },
  ]);
});
