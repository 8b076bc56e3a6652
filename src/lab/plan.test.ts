import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLab } from './plan.js';

test('plan: DNS capture from the mesh-wide proxyMetadata, overridden per cluster; trustRoot defaults to the shared root', () => {
  const off = { defaultConfig: { proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'false' as const } } };
  const on = { defaultConfig: { proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true' as const } } };
  const spec = { meshId: 'mesh1', trustDomain: 'cluster.local', isolation: 'netns' as const, networks: [{ name: 'n1' }], checks: [] };
  const plan = planLab({ ...spec, meshConfig: off, clusters: [{ name: 'c1', network: 'n1' }, { name: 'c2', network: 'n1', meshConfig: on, trustRoot: 'other' }] }, new Map());
  assert.deepEqual(plan.clusters.map((c) => [c.name, c.dnsCapture, c.trustRoot]), [['c1', false, 'mesh'], ['c2', true, 'other']]);
  const defaults = planLab({ ...spec, clusters: [{ name: 'c1', network: 'n1', meshConfig: {} }] }, new Map());
  assert.equal(defaults.clusters[0]!.dnsCapture, true);
});
