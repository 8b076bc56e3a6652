import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCli } from './helpers/cli.js';

// Every broken fixture, with the exact problem lines `crossmesh validate` must print for it (stderr, in order).
// Compiled tests run from dist/test; the fixtures stay in the source tree.
const dir = fileURLToPath(new URL('../../test/fixtures/invalid/', import.meta.url));

const VS = 'VirtualService/sample/helloworld';
const DR = 'DestinationRule/sample/helloworld';
const GW = 'Gateway/istio-system/cross-network-gateway';

const expected: Record<string, string[]> = {
  'yaml-syntax.yaml': [
    'line 7, column 11: Nested mappings are not allowed in compact mappings',
    'line 7, column 11: Implicit keys need to be on a single line',
  ],
  'yaml-duplicate-key.yaml': ['line 5, column 3: Map keys must be unique'],
  'json-syntax.json': ['line 4, column 35: Expected double-quoted property name'],
  'not-an-object.yaml': ['<document 1>: expected a resource (an object with apiVersion, kind and metadata), got string'],
  'list-items-not-array.json': ['List (document 1): items: expected array'],
  'unknown-kind.yaml': [
    'VirtualSevice/sample/helloworld: kind: unknown kind "VirtualSevice" (did you mean "VirtualService"?); accepted kinds: Namespace, Service, ServiceAccount, Secret, Deployment, VirtualService, DestinationRule, Gateway, ServiceEntry, WorkloadEntry, WorkloadGroup, PeerAuthentication, AuthorizationPolicy, MeshConfig, Topology',
  ],
  'unknown-apiversion.yaml': [
    `${VS}: apiVersion: VirtualService is not served at "networking.istio.io/v2"; accepted: networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3`,
  ],
  'wrong-group.yaml': [
    `${DR}: apiVersion: DestinationRule is not served at "v1"; accepted: networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3`,
  ],
  'missing-kind.yaml': ['<document 1>: kind: required'],
  'missing-apiversion.yaml': ['Namespace/sample: apiVersion: required'],
  'missing-name.yaml': ['ServiceAccount/sample/<unnamed>: metadata.name: required'],
  'missing-metadata.yaml': ['Namespace/<unnamed>: metadata: required'],
  'vs-unknown-field.yaml': [`${VS}: spec.http[0].route[0].weigth: unknown field "weigth" (did you mean "weight"?)`],
  'vs-weight-range.yaml': [
    `${VS}: spec.http[0].route[1].weight: must be an integer 0..100`,
    `${VS}: spec.http[0].route: weights must sum to 100 (got 200)`,
  ],
  'vs-weight-sum.yaml': [`${VS}: spec.http[0].route: weights must sum to 100 (got 95)`],
  'vs-weights-missing.yaml': [`${VS}: spec.http[0].route: weights must sum to 100 (got 0)`],
  'vs-weight-type.yaml': [`${VS}: spec.tcp[0].route[0].weight: expected integer, got string`],
  'vs-unknown-subset.yaml': [
    `${VS}: spec.http[0].route[1].destination.subset: unknown subset "v3": DestinationRule sample/helloworld defines v1, v2`,
  ],
  'vs-missing-hosts.yaml': [`${VS}: spec.hosts: required`],
  'vs-string-match.yaml': [`${VS}: spec.http[0].match[0].uri: must set exactly one of exact, prefix, regex (got 2)`],
  'vs-bad-duration.yaml': [
    `${VS}: spec.http[0].timeout: must be a duration such as "1s", "100ms" or "1h"`,
    `${VS}: spec.http[0].retries.perTryTimeout: expected duration string such as "1s", got number`,
  ],
  'vs-no-action.yaml': [`${VS}: spec.http[0]: must set one of route, redirect, directResponse, delegate`],
  'vs-destination-port.yaml': [
    `${VS}: spec.http[0].route[0].destination.port.number: port 8080 is not a port of Service sample/helloworld (ports: 5000)`,
  ],
  'vs-fault-percentage.yaml': [`${VS}: spec.http[0].fault.abort.percentage.value: must be a number 0..100`],
  'dr-missing-host.yaml': [`${DR}: spec.host: required`],
  'dr-simple-enum.yaml': [
    `${DR}: spec.trafficPolicy.loadBalancer.simple: must be one of "UNSPECIFIED", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN" (got "ROUND_ROBBIN")`,
  ],
  'dr-duplicate-subset.yaml': [`${DR}: spec.subsets[1].name: duplicate subset name "v1" (also subsets[0])`],
  'dr-locality-both.yaml': [`${DR}: spec.trafficPolicy.loadBalancer.localityLbSetting: must not set both distribute and failover`],
  'dr-outlier-type.yaml': [
    `${DR}: spec.trafficPolicy.outlierDetection.consecutive5xxErrors: expected integer, got string`,
    `${DR}: spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be an integer 0..100`,
  ],
  'duplicate-resources.yaml': [`${DR}: metadata.name: duplicate resource: also defined in duplicate-resources.yaml (document 1)`],
  'gateway-no-servers.yaml': [`${GW}: spec.servers: required`],
  'gateway-passthrough-protocol.yaml': [`${GW}: spec.servers[0].tls.mode: AUTO_PASSTHROUGH needs port protocol TLS (got HTTP)`],
  'gateway-port-range.yaml': [`${GW}: spec.servers[0].port.number: must be an integer 1..65535`],
  'service-duplicate-port-name.yaml': ['Service/default/httpbin: spec.ports[1].name: duplicate port name "http" (also ports[0])'],
  'service-name-dns.yaml': [
    'Service/default/Hello_World: metadata.name: must be a DNS-1035 label: at most 63 lower-case letters, digits or "-", starting with a letter',
  ],
  'service-no-ports.yaml': ['Service/default/helloworld: spec.ports: required: at least one port'],
  'namespace-dns.yaml': [
    'Namespace/Sample.Apps: metadata.name: must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
  ],
  'deployment-selector.yaml': [
    'Deployment/default/helloworld-v1: spec.template.metadata.labels: selector does not match template labels: missing version=v1',
  ],
  'deployment-no-containers.yaml': [
    'Deployment/default/sleep: spec.replicas: must be an integer 0..2147483647',
    'Deployment/default/sleep: spec.template.spec.containers: required: at least one container',
  ],
  'secret-not-base64.yaml': ['Secret/istio-system/cacerts: data["ca-cert.pem"]: must be base64-encoded'],
  'remote-secret-empty.yaml': [
    'Secret/istio-system/istio-remote-secret-cluster-2: data: a remote secret (istio/multiCluster: "true") needs one kubeconfig per cluster id',
  ],
  'label-value-type.yaml': [
    'ServiceAccount/default/helloworld: metadata.labels.version: expected string (quote numbers and booleans in YAML), got number',
  ],
  'peer-auth-mode.yaml': [
    'PeerAuthentication/istio-system/default: spec.mtls.mode: must be one of "UNSET", "DISABLE", "PERMISSIVE", "STRICT" (got "STRICTER")',
  ],
  'authz-custom-provider.yaml': ['AuthorizationPolicy/default/ext-authz: spec.provider: required for action CUSTOM'],
  'meshconfig-unknown-field.yaml': ['MeshConfig/mesh: spec.trustdomain: unknown field "trustdomain" (did you mean "trustDomain"?)'],
  'serviceentry-no-hosts.yaml': ['ServiceEntry/default/external-svc: spec.hosts: required: at least one host'],
  'workloadentry-bad-port.yaml': ['WorkloadEntry/default/vm-1: spec.ports.http: must be an integer 1..65535'],
  'topology-unknown-network.yaml': ['Topology/two-networks: spec.clusters[1].network: unknown network "vpc-2" (networks: vpc-1)'],
  'topology-inline-manifest.yaml': [
    'Topology/one-cluster: spec.clusters[0].manifests[0].spec.ports[0].protocol: must be one of "TCP", "UDP", "SCTP" (got "HTTP")',
  ],
  'topology-bad-proxy-settings.yaml': [
    'Topology/bad-proxy-settings: spec.meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE: must be the string "false" (proxyMetadata values are strings: quote it)',
    'Topology/bad-proxy-settings: spec.clusters[0].trustRoot: must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
    'Topology/bad-proxy-settings: spec.clusters[1].meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE: must be "true" or "false" (got "off")',
    'Topology/bad-proxy-settings: spec.clusters[1].meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE: unknown field "ISTIO_META_DNS_AUTO_ALLOCATE"',
  ],
  'topology-bad-manifest-path.yaml': [
    'Topology/missing-file: spec.clusters[0].manifests[0]: "does-not-exist.yaml": no such file or directory',
  ],
};

test('the invalid corpus has at least 30 files and every one is in the table', () => {
  const files = readdirSync(dir).sort();
  assert.ok(files.length >= 30, `only ${files.length} invalid fixtures`);
  assert.deepEqual(files, Object.keys(expected).sort());
});

for (const [file, lines] of Object.entries(expected)) {
  test(`invalid/${file} is rejected with its field path and reason`, async () => {
    const r = await runCli(['validate', '-f', file], { cwd: dir });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr.split('\n').filter(Boolean), lines.map((l) => `${file}: ${l}`));
  });
}

test('the whole invalid directory at once reports every file\'s problems, grouped by file in name order', async () => {
  const r = await runCli(['validate', '-f', '.'], { cwd: dir });
  assert.equal(r.code, 1);
  const files = r.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(0, l.indexOf(': ')));
  // duplicate-resources.yaml alone contributes a problem naming itself; all others appear too.
  for (const f of Object.keys(expected)) assert.ok(files.includes(f), `${f} missing from the directory run`);
  const firstSeen = [...new Set(files)];
  assert.deepEqual(firstSeen, [...firstSeen].sort());
});
