import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostMatches, isClusterLocal, routeWeights, secretData } from './helpers.js';
import { parseResources } from './validate.js';
import { isKind } from './kinds.js';

test('secretData decodes data and lays stringData over it', () => {
  const [s] = parseResources(
    `apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: ${Buffer.from('from-data').toString('base64')}, b: eA==}\nstringData: {b: override}\n`,
    's.yaml',
  );
  assert.ok(s && isKind(s, 'Secret'));
  assert.deepEqual(secretData(s), { a: 'from-data', b: 'override' });
});

test('cluster-local hosts come from clusterLocalHosts and serviceSettings, with wildcards', () => {
  const [mesh] = parseResources(
    'apiVersion: crossmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: m}\nspec:\n  clusterLocalHosts: ["*.kube-system.svc.cluster.local"]\n  serviceSettings: [{settings: {clusterLocal: true}, hosts: [istiod.istio-system.svc.cluster.local]}, {settings: {clusterLocal: false}, hosts: ["*"]}]\n',
    'm.yaml',
  );
  assert.ok(mesh && isKind(mesh, 'MeshConfig'));
  assert.equal(mesh.spec.trustDomain, 'cluster.local');
  assert.equal(isClusterLocal(mesh, 'kube-dns.kube-system.svc.cluster.local'), true);
  assert.equal(isClusterLocal(mesh, 'istiod.istio-system.svc.cluster.local'), true);
  assert.equal(isClusterLocal(mesh, 'helloworld.sample.svc.cluster.local'), false);
  assert.equal(isClusterLocal(undefined, 'istiod.istio-system.svc.cluster.local'), false);
  assert.equal(hostMatches('*.local', 'a.local'), true);
  assert.equal(hostMatches('*.local', '.local'), false);
  assert.equal(hostMatches('*', 'anything'), true);
});

test('route weights: a lone destination takes everything, several use their weights', () => {
  const d = { destination: { host: 'a' } };
  assert.deepEqual(routeWeights([{ ...d, weight: 30 }]), [100]);
  assert.deepEqual(routeWeights([{ ...d, weight: 90 }, { ...d, weight: 10 }]), [90, 10]);
  assert.deepEqual(routeWeights([{ ...d, weight: 100 }, d]), [100, 0]);
});

test('Service targetPort defaults to port; exportTo accepts ".", "*" and namespaces only', () => {
  const [svc] = parseResources('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n', 's.yaml');
  assert.ok(svc && isKind(svc, 'Service'));
  assert.equal(svc.spec.ports?.[0]?.targetPort, 80);
  assert.throws(
    () => parseResources('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: a, exportTo: [".", "Bad NS"]}\n', 'd.yaml'),
    /spec\.exportTo\[1\]: must be "\.", "\*", "~" or a namespace name/,
  );
});
