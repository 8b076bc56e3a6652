import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../api/types.js';
import { generateIntermediateCa, generateRootCa } from '../ca/index.js';
import type { ClusterInput } from './analyze.js';
import { analyze, formatFinding, servicePortConflicts } from './analyze.js';

const svc = (name: string, ns = 'sample', labels: Record<string, string> = {}, port = 5000): Resource => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns, labels }, spec: { selector: { app: name }, ports: [{ name: 'http', port }] },
});
const dr = (host: string, spec: Record<string, unknown> = {}): Resource => ({
  apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: host.split('.')[0]!, namespace: 'sample' }, spec: { host, ...spec },
});
const vs = (route: Array<{ host: string; subset?: string; weight?: number }>): Resource => ({
  apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'helloworld', namespace: 'sample' },
  spec: { hosts: ['helloworld'], http: [{ route: route.map((r) => ({ destination: { host: r.host, ...(r.subset ? { subset: r.subset } : {}) }, ...(r.weight !== undefined ? { weight: r.weight } : {}) })) }] },
});
const remoteSecret = (id: string): Resource => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name: `istio-remote-secret-${id}`, namespace: 'istio-system', labels: { 'istio/multiCluster': 'true' } }, stringData: { [id]: 'apiVersion: v1' },
});
const gatewaySvc = (network: string): Resource => svc('istio-eastwestgateway', 'istio-system', { 'topology.istio.io/network': network }, 15443);

const codes = (clusters: ClusterInput[]) => analyze(clusters).map((f) => `${f.cluster} ${f.code} ${f.resource}`);

const cases: Array<{ name: string; clusters: ClusterInput[]; want: string[] }> = [
  { name: 'a clean cluster', clusters: [{ name: 'c1', resources: [svc('helloworld'), dr('helloworld', { subsets: [{ name: 'v1', labels: { version: 'v1' } }] }), vs([{ host: 'helloworld', subset: 'v1' }])] }], want: [] },
  { name: 'subset referenced but not defined', clusters: [{ name: 'c1', resources: [svc('helloworld'), dr('helloworld'), vs([{ host: 'helloworld', subset: 'v3' }])] }], want: ['c1 IST0101 VirtualService/sample/helloworld'] },
  { name: 'destination host that no cluster has', clusters: [{ name: 'c1', resources: [vs([{ host: 'nothere' }])] }], want: ['c1 IST0101 VirtualService/sample/helloworld'] },
  { name: 'DestinationRule host matching no service', clusters: [{ name: 'c1', resources: [dr('ghost')] }], want: ['c1 CM0001 DestinationRule/sample/ghost'] },
  {
    name: 'locality failover without outlier detection',
    clusters: [{ name: 'c1', resources: [svc('helloworld'), dr('helloworld', { trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: true } } } })] }],
    want: ['c1 CM0002 DestinationRule/sample/helloworld'],
  },
  {
    name: 'weights not adding up to 100',
    clusters: [{ name: 'c1', resources: [svc('helloworld'), vs([{ host: 'helloworld', weight: 60 }, { host: 'helloworld', weight: 30 }])] }],
    want: ['c1 CM0008 VirtualService/sample/helloworld'],
  },
  { name: 'remote secret for the cluster itself', clusters: [{ name: 'c1', resources: [remoteSecret('c1')] }], want: ['c1 CM0004 Secret/istio-system/istio-remote-secret-c1'] },
  {
    name: 'remote secret for an unknown cluster',
    clusters: [{ name: 'c1', resources: [remoteSecret('c9')] }, { name: 'c2', resources: [] }],
    want: ['c1 CM0005 Secret/istio-system/istio-remote-secret-c9'],
  },
  {
    name: 'a service with different ports in two clusters',
    clusters: [{ name: 'c1', resources: [], portConflicts: [{ hostname: 'helloworld.sample.svc.cluster.local', port: 5000, clusters: ['c1', 'c2'], detail: 'http HTTP →5000 vs tcp TCP →8080' }] }],
    want: ['c1 CM0006 Service/helloworld.sample.svc.cluster.local'],
  },
  {
    name: 'a remote cluster its control plane cannot sync',
    clusters: [{ name: 'c1', resources: [], remoteErrors: [{ cluster: 'c3', secret: 'istio-system/istio-remote-secret-c3', status: 'error', reason: 'remote secret names cluster "c3" but https://10.0.0.2:6443 is cluster "c2"' }] }],
    want: ['c1 CM0009 Secret/istio-system/istio-remote-secret-c3'],
  },
  {
    name: 'a network with no gateway',
    clusters: [{ name: 'c1', network: 'n1', resources: [gatewaySvc('n1')] }, { name: 'c2', network: 'n2', resources: [] }],
    want: ['c2 CM0007 cluster/c2'],
  },
];

for (const c of cases) {
  test(`analyze: ${c.name}`, () => assert.deepEqual(codes(c.clusters), c.want));
}

test('analyze: clusters whose CAs are intermediates of different roots; one shared root is fine', async () => {
  const rootA = await generateRootCa();
  const rootB = await generateRootCa();
  const c1 = await generateIntermediateCa({ root: rootA, cluster: 'c1' });
  const c2 = await generateIntermediateCa({ root: rootA, cluster: 'c2' });
  const c3 = await generateIntermediateCa({ root: rootB, cluster: 'c3' });
  assert.deepEqual(codes([{ name: 'c1', resources: [], rootCertPem: c1.rootCert }, { name: 'c2', resources: [], rootCertPem: c2.rootCert }]), []);
  const findings = analyze([{ name: 'c1', resources: [], rootCertPem: c1.rootCert }, { name: 'c3', resources: [], rootCertPem: c3.rootCert }]);
  assert.deepEqual(findings.map((f) => `${f.cluster} ${f.code} ${f.level}`), ['c1 CM0003 Error', 'c3 CM0003 Error']);
  assert.match(formatFinding(findings[0]!), /^Error \[CM0003\] \(cluster c1\) c1: clusters do not share a root CA \(\{c1\} vs \{c3\}\)/);
});

test('servicePortConflicts compares each cluster\'s Services with the first cluster defining the port', () => {
  const tcp: Resource = { ...svc('helloworld'), spec: { selector: { app: 'helloworld' }, ports: [{ name: 'tcp', port: 5000, targetPort: 8080 }] } };
  const conflicts = servicePortConflicts([
    { name: 'c1', resources: [svc('helloworld'), svc('sleep', 'sample', {}, 80)] },
    { name: 'c2', resources: [svc('helloworld'), svc('sleep', 'sample', {}, 8080)] },
    { name: 'c3', resources: [tcp] },
  ]);
  assert.deepEqual([...conflicts], [['c3', [{ hostname: 'helloworld.sample.svc.cluster.local', port: 5000, clusters: ['c1', 'c3'], detail: 'http HTTP →5000 vs tcp TCP →8080' }]]]);
});
