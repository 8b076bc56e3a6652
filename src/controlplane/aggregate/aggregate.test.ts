import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import { buildClusterRegistry } from '../../registry/index.js';
import { aggregate, endpointsForProxy } from './index.js';

function service(ns: string, name: string, ports: Array<[string, number, number]>, extra: Partial<Resource> = {}): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, ...(extra.metadata ?? {}) },
    spec: {
      selector: { app: name },
      ports: ports.map(([pname, port, targetPort]) => ({ name: pname, port, targetPort })),
      ...((extra.spec as object) ?? {}),
    },
    ...(extra as object),
  } as Resource;
}

function workload(ns: string, name: string, address: string, labels: Record<string, string>, extra: object = {}): Resource {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: ns }, spec: { address, labels, ...extra } };
}

function eastWestGateway(network: string, ...ips: string[]): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels: { 'topology.istio.io/network': network } },
    spec: { selector: { istio: 'eastwestgateway' }, ports: [{ name: 'tls', port: 15443 }], externalIPs: ips },
  };
}

const helloworld = (ns = 'sample') => service(ns, 'helloworld', [['http', 5000, 5000]]);

function twoClusters(sameNetwork: boolean, gateways = true) {
  const c1 = buildClusterRegistry({ clusterId: 'cluster-1', network: 'vpc-1', locality: 'us-east/a' }, [
    helloworld(),
    workload('sample', 'hw-v1-a', '10.1.0.1', { app: 'helloworld', version: 'v1' }),
    workload('sample', 'hw-v1-b', '10.1.0.2', { app: 'helloworld', version: 'v1' }),
    ...(gateways ? [eastWestGateway('vpc-1', '192.0.2.1')] : []),
  ]);
  const c2 = buildClusterRegistry(
    { clusterId: 'cluster-2', network: sameNetwork ? 'vpc-1' : 'vpc-2', locality: 'eu-west/b' },
    [
      helloworld(),
      workload('sample', 'hw-v2-a', '10.2.0.1', { app: 'helloworld', version: 'v2' }),
      workload('sample', 'hw-v2-b', '10.2.0.2', { app: 'helloworld', version: 'v2' }),
      workload('sample', 'hw-v2-c', '10.2.0.3', { app: 'helloworld', version: 'v2' }),
      ...(gateways ? [eastWestGateway(sameNetwork ? 'vpc-1' : 'vpc-2', '192.0.2.2', '192.0.2.3')] : []),
    ],
  );
  return [c1, c2];
}

const flat = (groups: ReturnType<typeof endpointsForProxy>) =>
  groups.flatMap((g) => g.endpoints.map((e) => `${[g.locality.region, g.locality.zone].join('/')} ${e.address}:${e.port} w${e.weight}${e.viaGateway ? ' gw' : ''}`));

const HOST = 'helloworld.sample.svc.cluster.local';

test('same-named services in two clusters merge into one with the union of endpoints', () => {
  const view = aggregate(twoClusters(true), { localCluster: 'cluster-1' });
  const svc = view.services.get(HOST);
  assert.ok(svc);
  assert.deepEqual([...svc.definitions.keys()], ['cluster-1', 'cluster-2']);
  assert.deepEqual(
    view.endpoints(HOST, 5000).map((e) => `${e.workload.cluster} ${e.address}`),
    ['cluster-1 10.1.0.1', 'cluster-1 10.1.0.2', 'cluster-2 10.2.0.1', 'cluster-2 10.2.0.2', 'cluster-2 10.2.0.3'],
  );
});

const splitHorizonCases: Array<{ name: string; sameNetwork: boolean; proxy: Parameters<typeof endpointsForProxy>[4]; subset?: Record<string, string>; want: string[] }> = [
  {
    name: 'one network: every endpoint directly',
    sameNetwork: true,
    proxy: { network: 'vpc-1' },
    want: ['eu-west/b 10.2.0.1:5000 w1', 'eu-west/b 10.2.0.2:5000 w1', 'eu-west/b 10.2.0.3:5000 w1', 'us-east/a 10.1.0.1:5000 w1', 'us-east/a 10.1.0.2:5000 w1'],
  },
  {
    name: 'two networks, caller on vpc-1: remote endpoints become the two vpc-2 gateways, weight split, locality kept',
    sameNetwork: false,
    proxy: { network: 'vpc-1' },
    // 3 remote endpoints over 2 gateways: scale 2, local endpoints weigh 2, each gateway 3.
    want: ['eu-west/b 192.0.2.2:15443 w3 gw', 'eu-west/b 192.0.2.3:15443 w3 gw', 'us-east/a 10.1.0.1:5000 w2', 'us-east/a 10.1.0.2:5000 w2'],
  },
  {
    name: 'two networks, caller on vpc-2: the single vpc-1 gateway stands for 2 endpoints',
    sameNetwork: false,
    proxy: { network: 'vpc-2' },
    want: ['eu-west/b 10.2.0.1:5000 w1', 'eu-west/b 10.2.0.2:5000 w1', 'eu-west/b 10.2.0.3:5000 w1', 'us-east/a 192.0.2.1:15443 w2 gw'],
  },
  {
    name: 'an east-west gateway sees only its own network, directly',
    sameNetwork: false,
    proxy: { network: 'vpc-2', requestedNetworkView: ['vpc-2'] },
    want: ['eu-west/b 10.2.0.1:5000 w1', 'eu-west/b 10.2.0.2:5000 w1', 'eu-west/b 10.2.0.3:5000 w1'],
  },
  {
    name: 'a subset that lives only in the remote network goes through the gateway',
    sameNetwork: false,
    proxy: { network: 'vpc-1' },
    subset: { version: 'v2' },
    want: ['eu-west/b 192.0.2.2:15443 w3 gw', 'eu-west/b 192.0.2.3:15443 w3 gw'],
  },
];

for (const c of splitHorizonCases) {
  test(`split horizon: ${c.name}`, () => {
    const view = aggregate(twoClusters(c.sameNetwork), { localCluster: 'cluster-1' });
    assert.deepEqual(flat(endpointsForProxy(view, HOST, 5000, c.subset, c.proxy)), c.want);
  });
}

test('split horizon: a remote network without a gateway is unreachable, so its endpoints are left out', () => {
  const view = aggregate(twoClusters(false, false), { localCluster: 'cluster-1' });
  assert.deepEqual(flat(endpointsForProxy(view, HOST, 5000, undefined, { network: 'vpc-1' })), [
    'us-east/a 10.1.0.1:5000 w1',
    'us-east/a 10.1.0.2:5000 w1',
  ]);
});

test('split horizon: only mTLS-capable endpoints cross networks', () => {
  const [c1, c2] = twoClusters(false);
  c2!.workloads[0]!.tlsMode = 'disabled';
  const view = aggregate([c1!, c2!], { localCluster: 'cluster-1' });
  const groups = endpointsForProxy(view, HOST, 5000, undefined, { network: 'vpc-1' });
  // 2 mTLS endpoints left behind 2 gateways: each gateway weight 2 (scale 2 × 2 endpoints / 2 gateways).
  assert.deepEqual(flat(groups).filter((l) => l.includes('gw')), ['eu-west/b 192.0.2.2:15443 w2 gw', 'eu-west/b 192.0.2.3:15443 w2 gw']);
});

test('network comes from the workload, else its namespace label, else the system namespace, else the cluster', () => {
  const ns = (name: string, network?: string): Resource => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, ...(network ? { labels: { 'topology.istio.io/network': network } } : {}) },
  });
  const reg = buildClusterRegistry({ clusterId: 'c', network: 'configured' }, [
    ns('labelled', 'ns-net'),
    ns('plain'),
    workload('labelled', 'a', '10.0.0.1', { app: 'x' }),
    workload('plain', 'b', '10.0.0.2', { app: 'x' }),
    workload('plain', 'c', '10.0.0.3', { app: 'x', 'topology.istio.io/network': 'own-label' }),
    workload('plain', 'd', '10.0.0.4', { app: 'x' }, { network: 'own-field' }),
  ]);
  assert.deepEqual(reg.workloads.map((w) => `${w.name}=${w.network}`), ['a=ns-net', 'b=configured', 'c=own-label', 'd=own-field']);
  const withSystem = buildClusterRegistry({ clusterId: 'c', network: 'configured' }, [ns('istio-system', 'sys-net'), workload('plain', 'b', '10.0.0.2', {})]);
  assert.equal(withSystem.workloads[0]!.network, 'sys-net');
});

test('cluster-local hosts from remote clusters are not exported', () => {
  const view = aggregate(twoClusters(true), {
    localCluster: 'cluster-1',
    isClusterLocal: (h) => h.endsWith('.sample.svc.cluster.local'),
  });
  assert.deepEqual(
    view.endpoints(HOST, 5000).map((e) => e.workload.cluster),
    ['cluster-1', 'cluster-1'],
  );
});

test('a port defined differently in two clusters is reported as a conflict', () => {
  const c1 = buildClusterRegistry({ clusterId: 'cluster-1', network: 'n' }, [service('sample', 'helloworld', [['http', 5000, 5000]])]);
  const c2 = buildClusterRegistry({ clusterId: 'cluster-2', network: 'n' }, [service('sample', 'helloworld', [['tcp', 5000, 8080]])]);
  const view = aggregate([c1, c2], { localCluster: 'cluster-1' });
  assert.equal(view.conflicts.length, 1);
  assert.equal(view.conflicts[0]!.detail, 'http HTTP →5000 vs tcp TCP →8080');
});

test('a WorkloadEntry port named after the service port overrides targetPort', () => {
  const reg = buildClusterRegistry({ clusterId: 'c', network: 'n' }, [
    service('default', 'httpbin', [['http', 8000, 80]]),
    workload('default', 'httpbin-1', '10.0.0.9', { app: 'httpbin' }, { ports: { http: 8080 } }),
  ]);
  const view = aggregate([reg], { localCluster: 'c' });
  assert.equal(view.endpoints('httpbin.default.svc.cluster.local', 8000)[0]!.port, 8080);
});

test('selectors pick workloads of their own namespace carrying every selected label, in registry order', () => {
  const selecting = (name: string, selector: Record<string, string>): Resource => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'sample' },
    spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  });
  const c1 = buildClusterRegistry({ clusterId: 'c1', network: 'n' }, [
    selecting('v1-only', { app: 'hw', version: 'v1' }),
    selecting('all-hw', { app: 'hw' }),
    selecting('nothing', { app: 'hw', version: 'v9' }),
    selecting('everyone', {}),
    workload('sample', 'b', '10.0.0.2', { app: 'hw', version: 'v1' }),
    workload('sample', 'a', '10.0.0.1', { app: 'hw', version: 'v2' }),
    workload('sample', 'c', '10.0.0.3', { app: 'hw', version: 'v1', extra: 'x' }),
    workload('other', 'd', '10.0.0.4', { app: 'hw', version: 'v1' }),
    workload('sample', 'e', '10.0.0.5', { version: 'v1' }),
  ]);
  const view = aggregate([c1], { localCluster: 'c1' });
  const names = (svc: string) => view.endpoints(`${svc}.sample.svc.cluster.local`, 80).map((e) => e.workload.name);
  assert.deepEqual(names('v1-only'), ['b', 'c']);
  assert.deepEqual(names('all-hw'), ['b', 'a', 'c']);
  assert.deepEqual(names('nothing'), []);
  assert.deepEqual(names('everyone'), ['b', 'a', 'c', 'e']);
});
