/**
 * The pieces together, as the control plane wires them: config changes trigger a debouncer, whose action
 * rebuilds the snapshot outside any request path; the ADS server pushes; a proxy-side client applies.
 * A burst of changes reaches the proxy as one update.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSnapshot, createSnapshotCache } from '../src/controlplane/cache/index.js';
import { createDebouncer } from '../src/controlplane/server/index.js';
import { TYPE_URLS, clusterLoadAssignment, createAdsClient, edsCluster, encodeResource } from '../src/xds/index.js';
import type { ClusterLoadAssignment, ResourceUpdate } from '../src/xds/index.js';
import { createFakeClock, eventually, startAds } from './xds-helpers.js';

test('a burst of endpoint changes is debounced into one rebuild and one push', async (t) => {
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: () => 'mesh' });
  const client = createAdsClient({ address: running.address, node: { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local' } });
  const clock = createFakeClock();
  t.after(() => {
    client.close();
    running.stop();
  });

  // The "registry": endpoints of one service, mutated by events.
  const ports: number[] = [8000];
  let rebuilds = 0;
  const rebuild = (): void => {
    rebuilds++;
    const cla = clusterLoadAssignment('svc', [{ locality: { region: 'r' }, endpoints: ports.map((port) => ({ address: '10.1.0.1', port })) }]);
    cache.setEndpoints('mesh', [encodeResource(TYPE_URLS.endpoint, cla)]);
  };
  cache.setSnapshot('mesh', createSnapshot({ [TYPE_URLS.cluster]: [encodeResource(TYPE_URLS.cluster, edsCluster('svc'))] }));
  rebuild();
  const debouncer = createDebouncer<string>({ quietMs: 100, maxDelayMs: 1000, clock }, () => rebuild());

  const updates: Array<ResourceUpdate<ClusterLoadAssignment>> = [];
  client.subscribe<ClusterLoadAssignment>(TYPE_URLS.endpoint, (u) => void updates.push(u), ['svc']);
  await eventually('initial endpoints', () => updates[0]);

  for (let i = 1; i <= 10; i++) {
    ports.push(8000 + i);
    debouncer.trigger(`endpoint ${8000 + i} added`);
    clock.advance(20);
  }
  assert.equal(rebuilds, 1, 'nothing rebuilt during the burst');
  clock.advance(100);
  assert.equal(rebuilds, 2, 'one rebuild for the burst');
  const latest = await eventually('the burst to arrive', () => (updates.length >= 2 ? updates[updates.length - 1] : undefined));
  assert.equal(updates.length, 2, 'one push for the burst');
  assert.equal(latest.resources.get('svc')?.endpoints?.[0]?.lb_endpoints?.length, 11);
  assert.equal(latest.version, cache.getSnapshot('mesh')?.version(TYPE_URLS.endpoint));
});
