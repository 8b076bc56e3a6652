import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '../src/api/types.js';
import { runCli } from './helpers/cli.js';
import type { TestCluster } from './helpers/mesh.js';
import { exchangeRemoteSecret, freePort, service, startClusters, tempDir } from './helpers/mesh.js';

/** `crossmesh analyze --server …` against real control planes: two sharing a root, a third with its own. */
let shared: Awaited<ReturnType<typeof startClusters>>;
let other: Awaited<ReturnType<typeof startClusters>>;
let c1: TestCluster;
let c2: TestCluster;
let c3: TestCluster;
const files = tempDir('cm-analyze-servers-');

const api = (c: TestCluster) => c.cp.addresses().api;
const rootOf = (c: TestCluster) => join(c.cacertsDir, 'root-cert.pem');
const networkNamespace = (network: string): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system', labels: { 'topology.istio.io/network': network } } });

before(async () => {
  shared = await startClusters([{ name: 'cluster-1', network: 'vpc-1' }, { name: 'cluster-2', network: 'vpc-2' }]);
  other = await startClusters([{ name: 'cluster-3', network: 'vpc-1' }]);
  [c1, c2] = shared.clusters as [TestCluster, TestCluster];
  c3 = other.clusters[0]!;
  await c1.cp.store.apply([
    networkNamespace('vpc-1'),
    service('sample', 'helloworld', 5000),
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'helloworld', namespace: 'sample' }, spec: { hosts: ['helloworld'], http: [{ route: [{ destination: { host: 'helloworld', subset: 'v9' } }] }] } },
  ]);
  await c2.cp.store.apply([networkNamespace('vpc-2'), { ...service('sample', 'helloworld', 5000, 8080), spec: { selector: { app: 'helloworld' }, ports: [{ name: 'tcp', port: 5000, targetPort: 8080 }] } }]);
  await exchangeRemoteSecret(c1, c2, shared.root);
  await exchangeRemoteSecret(c1, c2, shared.root, { clusterId: 'cluster-9' });
  await c3.cp.store.apply([service('sample', 'helloworld', 5000)]);
});

after(async () => {
  await shared?.stop();
  await other?.stop();
  files.cleanup();
});

test('analyze --server NAME=URL (twice): each API server is one cluster, cross-cluster findings included, exit 1', async () => {
  const r = await runCli(['analyze', '--server', `cluster-1=${api(c1)}`, '--token', c1.cp.adminToken, '--server', `cluster-2=${api(c2)}`, '--token', c2.cp.adminToken, '--ca-file', rootOf(c1)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^Error \[IST0101\] \(VirtualService sample\/helloworld\) cluster-1: Referenced host\+subset in destinationrule not found: "helloworld\.sample\.svc\.cluster\.local\+v9"$/m);
  assert.match(r.stdout, /^Warning \[CM0006\] \(Service helloworld\.sample\.svc\.cluster\.local\) cluster-2: service port 5000 is defined differently in cluster-1 and cluster-2: http HTTP →5000 vs tcp TCP →8080$/m);
  assert.match(r.stdout, /^Warning \[CM0005\] \(Secret istio-system\/\S+\) cluster-2: remote secret names cluster "cluster-9", which is not among the analyzed clusters \(cluster-1, cluster-2\)$/m);
  assert.match(r.stdout, /^Warning \[CM0007\] \(cluster cluster-1\) cluster-1: network "vpc-1" has no east-west gateway/m, 'the network comes from istio-system\'s label');
  assert.doesNotMatch(r.stdout, /CM0003/, 'one root');
  assert.doesNotMatch(r.stdout, /remote secret names cluster "cluster-1"/, 'cluster-1 is among the analyzed clusters');
  assert.match(r.stderr, /1 error found/);
});

test('analyze --server: a cluster whose CA is another root is reported (per-server --ca-file, or one bundle holding both roots)', async () => {
  const servers = ['--server', `cluster-1=${api(c1)}`, '--server', `cluster-2=${api(c2)}`, '--server', `cluster-3=${api(c3)}`, '--token', c1.cp.adminToken, '--token', c2.cp.adminToken, '--token', c3.cp.adminToken];
  const perServer = await runCli(['analyze', ...servers, '--ca-file', rootOf(c1), '--ca-file', rootOf(c2), '--ca-file', rootOf(c3), '-o', 'json']);
  assert.equal(perServer.code, 1, perServer.stderr);
  const roots = (JSON.parse(perServer.stdout) as Array<{ code: string; cluster: string; message: string }>).filter((f) => f.code === 'CM0003');
  assert.deepEqual(roots.map((f) => f.cluster), ['cluster-1', 'cluster-2', 'cluster-3']);
  assert.match(roots[0]!.message, /do not share a root CA \(\{cluster-1, cluster-2\} vs \{cluster-3\}\)/);

  const bundle = join(files.path, 'both-roots.pem');
  writeFileSync(bundle, readFileSync(rootOf(c1), 'utf8') + readFileSync(rootOf(c3), 'utf8'));
  const oneBundle = await runCli(['analyze', ...servers, '--ca-file', bundle]);
  assert.equal(oneBundle.code, 1, oneBundle.stderr);
  assert.match(oneBundle.stdout, /\[CM0003\] \(cluster cluster-3\) cluster-3: clusters do not share a root CA \(\{cluster-1, cluster-2\} vs \{cluster-3\}\)/);
});

test('analyze --server with -f: the files join that cluster\'s live config; a plain URL names the cluster by host:port', async () => {
  const dr = join(files.path, 'dr.yaml');
  writeFileSync(dr, ['apiVersion: networking.istio.io/v1', 'kind: DestinationRule', 'metadata: {name: helloworld, namespace: sample}', 'spec:', '  host: helloworld', '  subsets: [{name: v9, labels: {version: v9}}]'].join('\n'));
  const fixed = await runCli(['analyze', '--server', `cluster-1=${api(c1)}`, '--token', c1.cp.adminToken, '--ca-file', rootOf(c1), '-f', dr]);
  assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
  assert.match(fixed.stdout, /no problems found in 1 cluster/);

  const plain = await runCli(['analyze', '--server', api(c1), '--token', c1.cp.adminToken, '--ca-file', rootOf(c1), '-o', 'json']);
  assert.equal(plain.code, 1);
  assert.deepEqual([...new Set((JSON.parse(plain.stdout) as Array<{ cluster: string }>).map((f) => f.cluster))], [new URL(api(c1)).host]);
});

test('analyze --server: a server that refuses the token or cannot be reached is named, nothing is analyzed, exit 1', async () => {
  const dead = `https://127.0.0.1:${await freePort()}`;
  const r = await runCli(['analyze', '--server', `cluster-1=${api(c1)}`, '--server', `cluster-2=${api(c2)}`, '--server', `cluster-3=${dead}`, '--token', c1.cp.adminToken, '--token', 'not-a-token', '--token', 'x', '--ca-file', rootOf(c1)]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /cannot read 2 clusters:/);
  assert.match(r.stderr, new RegExp(`cluster-2 \\(${api(c2).replace(/[.]/g, '\\.')}\\): rejected the token \\(401 Unauthorized\\): check the --token given for this server`));
  assert.match(r.stderr, new RegExp(`cluster-3 \\(${dead.replace(/[.]/g, '\\.')}\\): .*unreachable`));
  assert.doesNotMatch(r.stderr, /cluster-1 \(/);

  const wrongCa = await runCli(['analyze', '--server', `cluster-3=${api(c3)}`, '--token', c3.cp.adminToken, '--ca-file', rootOf(c1)]);
  assert.equal(wrongCa.code, 1);
  assert.match(wrongCa.stderr, /cannot read a cluster:\n.*cluster-3 \(https:\/\/[^)]+\): TLS failure .*check the --ca-file given for this server/);
});

test('analyze --server: credentials that do not pair with the servers are a usage error (exit 2)', async () => {
  const r = await runCli(['analyze', '--server', `a=${api(c1)}`, '--server', `b=${api(c2)}`, '--server', `c=${api(c3)}`, '--token', 't1', '--token', 't2']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--token: give it once \(for every server\) or once per --server in the same order: got 2 for 3 servers/);
  const twice = await runCli(['analyze', '--server', `a=${api(c1)}`, '--server', `a=${api(c2)}`]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /--server: cluster "a" is given twice/);
  const bad = await runCli(['analyze', '--server', 'cluster-1=not a url']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--server: expected NAME=URL or URL/);
});
