import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as yamlParse } from 'yaml';
import { ValidationError } from '../shared/errors.js';
import { isKind, KINDS, ofKind } from './kinds.js';
import type { Resource } from './types.js';
import { resourceRef } from './types.js';
import { parseResources, validateResources } from './validate.js';
import { resolveHost } from './checks.js';
import { parseDuration } from './schema/common.js';
import { NETWORKING_VERSIONS, SECURITY_VERSIONS } from './schema/versions.js';

const yaml = (s: string) => s.replace(/^\n/, '');

test('valid resources come back defaulted, typed and frozen', () => {
  const resources = parseResources(
    yaml(`
apiVersion: v1
kind: Service
metadata: {name: httpbin}
spec:
  ports: [{name: http, port: 8000, targetPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: apps}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      containers: [{name: httpbin, image: httpbin}]
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {a: b}
status: {anything: goes}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps, namespace: ignored}
`),
    'in.yaml',
  );
  const [svc, deploy, secret, ns] = resources;
  assert.ok(svc && isKind(svc, 'Service'));
  assert.equal(svc.metadata.namespace, 'default');
  assert.equal(svc.spec.type, 'ClusterIP');
  assert.equal(svc.spec.ports?.[0]?.protocol, 'TCP');
  assert.ok(deploy && isKind(deploy, 'Deployment'));
  assert.equal(deploy.spec.replicas, 1);
  assert.equal(deploy.metadata.namespace, 'apps');
  assert.ok(secret && isKind(secret, 'Secret'));
  assert.equal(secret.type, 'Opaque');
  assert.equal('status' in secret, false);
  assert.ok(ns && isKind(ns, 'Namespace'));
  assert.equal(ns.metadata.namespace, undefined);
  assert.ok(Object.isFrozen(svc) && Object.isFrozen(svc.spec.ports) && Object.isFrozen(svc.spec.ports![0]));
  assert.throws(() => {
    (svc.metadata as { name: string }).name = 'other';
  }, TypeError);
  assert.equal(ofKind(resources, 'Deployment').length, 1);
  // Typed resources are also plain `Resource`s, for code that handles any kind.
  const generic: readonly Resource[] = resources;
  assert.equal(generic.map(resourceRef).join(' '), 'Service/default/httpbin Deployment/apps/httpbin Secret/default/s Namespace/apps');
});

test('every networking kind is served at v1, v1beta1 and v1alpha3, every security kind at v1 and v1beta1', () => {
  const specs: Record<string, string> = {
    VirtualService: 'hosts: [a]\n  http: [{route: [{destination: {host: a}}]}]',
    DestinationRule: 'host: a',
    Gateway: 'servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]',
    ServiceEntry: 'hosts: [a.example.com]',
    WorkloadEntry: 'address: 10.0.0.1',
    WorkloadGroup: 'template: {serviceAccount: a}',
    PeerAuthentication: 'mtls: {mode: STRICT}',
    AuthorizationPolicy: 'action: DENY',
  };
  for (const [kind, spec] of Object.entries(specs)) {
    const versions = kind === 'PeerAuthentication' || kind === 'AuthorizationPolicy' ? SECURITY_VERSIONS : NETWORKING_VERSIONS;
    assert.deepEqual(KINDS.find((k) => k.kind === kind)?.apiVersions, versions);
    for (const v of versions) {
      const r = parseResources(`apiVersion: ${v}\nkind: ${kind}\nmetadata: {name: x}\nspec:\n  ${spec}\n`, 'x.yaml');
      assert.equal(r[0]?.kind, kind);
    }
  }
});

test('parseResources throws a ValidationError carrying every problem', () => {
  try {
    parseResources('apiVersion: v1\nkind: Service\nmetadata: {name: X}\nspec: {ports: [{port: 0}], bogus: 1}\n', 'bad.yaml');
    assert.fail('expected a ValidationError');
  } catch (err) {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.code, 'E_INVALID');
    assert.deepEqual(
      err.problems.map((p) => `${p.path}: ${p.message}`),
      [
        'metadata.name: must be a DNS-1035 label: at most 63 lower-case letters, digits or "-", starting with a letter',
        'spec.ports[0].port: must be an integer 1..65535',
        'spec.bogus: unknown field "bogus"',
      ],
    );
  }
});

test('subset references are only checked when a DestinationRule for that host is in the same input', () => {
  const vs = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: ns1}\nspec:\n  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews, subset: v9}}]}]\n';
  const alone = validateResources([{ file: 'vs.yaml', index: 1, value: parse(vs) }]);
  assert.deepEqual(alone.problems, []);
  // Same host written as FQDN, in another resource's namespace: resolves to the same service.
  const dr = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: other}\nspec:\n  host: reviews.ns1.svc.cluster.local\n  subsets: [{name: v1}]\n';
  const both = validateResources([
    { file: 'vs.yaml', index: 1, value: parse(vs) },
    { file: 'dr.yaml', index: 1, value: parse(dr) },
  ]);
  assert.deepEqual(both.problems.map((p) => p.path), ['spec.http[0].route[0].destination.subset']);
});

test('binary garbage and scalars are rejected as documents, not thrown', () => {
  const r = validateResources([
    { file: 'b.yaml', index: 1, value: '\u0000\u0001\uffff' },
    { file: 'b.yaml', index: 2, value: 42 },
    { file: 'b.yaml', index: 3, value: [] },
    { file: 'b.yaml', index: 4, value: { apiVersion: 1, kind: ['x'] } },
  ]);
  assert.equal(r.resources.length, 0);
  assert.deepEqual(
    r.problems.map((p) => `${p.resource}: ${p.path ?? ''}: ${p.message}`),
    [
      '<document 1>: : expected a resource (an object with apiVersion, kind and metadata), got string',
      '<document 2>: : expected a resource (an object with apiVersion, kind and metadata), got number',
      '<document 3>: : expected a resource (an object with apiVersion, kind and metadata), got array',
      '<document 4>: apiVersion: expected string, got number',
      '<document 4>: kind: expected string, got array',
    ],
  );
});

test('host resolution and durations follow Istio', () => {
  assert.equal(resolveHost('reviews', 'bookinfo'), 'reviews.bookinfo.svc.cluster.local');
  assert.equal(resolveHost('reviews.bookinfo.svc.cluster.local', 'x'), 'reviews.bookinfo.svc.cluster.local');
  assert.equal(resolveHost('*.local', 'x'), '*.local');
  assert.equal(parseDuration('1s'), 1000);
  assert.equal(parseDuration('100ms'), 100);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.throws(() => parseDuration('5 seconds'), RangeError);
});

/** The validator takes plain values, as the loader produces them from YAML. */
function parse(text: string): unknown {
  return yamlParse(text);
}
