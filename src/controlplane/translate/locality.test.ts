import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LbEndpoint, LocalityEndpoints } from '../aggregate/index.js';
import { parseLocality } from '../../registry/model.js';
import type { Workload } from '../../registry/model.js';
import { prioritize } from './locality.js';
import type { LocalityCaller } from './locality.js';

function ep(address: string, cluster: string, network: string, labels: Record<string, string> = {}, weight = 1): LbEndpoint {
  const workload = { labels, cluster, network } as Workload;
  return { address, port: 80, weight, healthy: true, viaGateway: false, cluster, network, endpoint: { hostname: 'h', servicePort: 80, address, port: 80, workload } };
}

const groups: LocalityEndpoints[] = [
  { locality: parseLocality('us-east/a/1'), endpoints: [ep('10.0.0.1', 'c1', 'n1'), ep('10.0.0.2', 'c1', 'n1')] },
  { locality: parseLocality('us-east/b'), endpoints: [ep('10.0.1.1', 'c1', 'n1')] },
  { locality: parseLocality('us-west/a'), endpoints: [ep('10.1.0.1', 'c2', 'n2')] },
  { locality: parseLocality('eu-west/a'), endpoints: [ep('10.2.0.1', 'c3', 'n3', {}, 3)] },
];

const caller: LocalityCaller = { locality: parseLocality('us-east/a/1'), network: 'n1', cluster: 'c1', labels: {} };

const show = (list: ReturnType<typeof prioritize>) =>
  list.map((p) => `${p.priority} ${[p.locality.region, p.locality.zone, p.locality.subzone].filter(Boolean).join('/')} w${p.weight}`);

const cases: Array<{ name: string; setting: Parameters<typeof prioritize>[2]; outlier: boolean; want: string[] }> = [
  {
    name: 'no setting: one priority, weight = endpoint weights',
    setting: undefined,
    outlier: true,
    want: ['0 us-east/a/1 w2', '0 us-east/b w1', '0 us-west/a w1', '0 eu-west/a w3'],
  },
  {
    name: 'enabled without outlier detection: no failover, as Istio documents',
    setting: { enabled: true },
    outlier: false,
    want: ['0 us-east/a/1 w2', '0 us-east/b w1', '0 us-west/a w1', '0 eu-west/a w3'],
  },
  {
    name: 'failover by locality: subzone, zone, region, then the rest',
    setting: { enabled: true },
    outlier: true,
    want: ['0 us-east/a/1 w2', '1 us-east/b w1', '2 eu-west/a w3', '2 us-west/a w1'],
  },
  {
    name: 'failover rule makes eu-west the next region after us-east',
    setting: { enabled: true, failover: [{ from: 'us-east', to: 'eu-west' }] },
    outlier: true,
    want: ['0 us-east/a/1 w2', '1 us-east/b w1', '2 eu-west/a w3', '3 us-west/a w1'],
  },
  {
    name: 'distribute: 80% in own zone, 20% to us-west, nothing elsewhere',
    setting: { enabled: true, distribute: [{ from: 'us-east/a/*', to: { 'us-east/a/*': 80, 'us-west/*': 20 } }] },
    outlier: false,
    want: ['0 us-east/a/1 w80', '0 us-east/b w0', '0 us-west/a w20', '0 eu-west/a w0'],
  },
  {
    name: 'failoverPriority on network then cluster',
    setting: { enabled: true, failoverPriority: ['topology.istio.io/network', 'topology.istio.io/cluster'] },
    outlier: true,
    want: ['0 us-east/a/1 w2', '1 us-east/b w1', '2 eu-west/a w3', '2 us-west/a w1'],
  },
];

for (const c of cases) {
  test(`locality: ${c.name}`, () => {
    assert.deepEqual(show(prioritize(groups, caller, c.setting, c.outlier)), c.want);
  });
}

test('locality: failoverPriority splits one locality by endpoint labels', () => {
  const mixed: LocalityEndpoints[] = [
    { locality: parseLocality('r/z'), endpoints: [ep('1.1.1.1', 'c1', 'n1', { version: 'v1' }), ep('1.1.1.2', 'c1', 'n1', { version: 'v2' })] },
  ];
  const got = prioritize(mixed, { ...caller, labels: { version: 'v2' } }, { failoverPriority: ['version'] }, true);
  assert.deepEqual(
    got.map((p) => `${p.priority} ${p.endpoints.map((e) => e.address).join(',')}`),
    ['0 1.1.1.2', '1 1.1.1.1'],
  );
});
