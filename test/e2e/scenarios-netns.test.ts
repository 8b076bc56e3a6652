import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabState } from '../../src/lab/state.js';
import { canUseNetns } from '../helpers/netns.js';
import { accessLog, crossmesh, eventually, labFixture, labStatus } from './lab-helpers.js';

const examples = new URL('../../../examples/', import.meta.url).pathname;
const skip = !canUseNetns() && 'needs root, ip and iptables';

function inPod(netns: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile('ip', ['netns', 'exec', netns, ...args], { maxBuffer: 8 << 20 }, (_e, stdout) => resolve(stdout)));
}

test('S1: one network, two clusters: nodeapp1 balances over both versions, nodeapp2 only in cluster-2, no gateway on the path', { skip }, async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--isolation', 'netns', '--topology', join(examples, 's1-single-network', 'topology.yaml')]);
    // The topology's checks: 100 calls, each version at least 30%; nodeapp2 answers from cluster-2.
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const status = await labStatus(lab.dir);
    const nodeapp3 = status.pods.find((p) => p.app === 'nodeapp3')!;
    const v2 = status.pods.find((p) => p.cluster === 'cluster-2' && p.app === 'nodeapp1')!;
    assert.equal(status.gateways.length, 0);
    const body = await inPod(nodeapp3.netns!, ['curl', '-sS', 'http://nodeapp2/']);
    assert.match(body, /Service 2: version 1\.0/);
    const nodeapp1 = (l: any) => l.upstream_cluster === 'outbound|80||nodeapp1.default.svc.cluster.local';
    const log = await accessLog(join(lab.dir, 'logs', `cluster-1.${nodeapp3.name}.proxy.log.access`), (lines) => lines.filter(nodeapp1).length >= 100);
    const hosts = new Set(log.filter(nodeapp1).map((l) => l.upstream_host));
    assert.ok(hosts.has(`${v2.ip}:9000`), `cluster-2's pod itself is the upstream: ${[...hosts].join(', ')}`);
    assert.ok([...hosts].every((h) => !String(h).endsWith(':15443')), 'no gateway on the path');
  } finally {
    await lab.cleanup();
  }
});

test('S2: two networks: the same calls as S1 through the east-west gateways; a direct cross-network connection fails', { skip }, async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--isolation', 'netns', '--topology', join(examples, 's2-two-networks', 'topology.yaml')]);
    // The topology's checks: nodeapp1 over both versions (each at least 30% of 100), nodeapp2 from cluster-2.
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const status = await labStatus(lab.dir);
    const nodeapp3 = status.pods.find((p) => p.app === 'nodeapp3')!;
    const v2 = status.pods.find((p) => p.cluster === 'cluster-2' && p.app === 'nodeapp1')!;
    const gw2 = status.gateways.find((g) => g.cluster === 'cluster-2')!;
    const nodeapp1 = (l: any) => l.upstream_cluster === 'outbound|80||nodeapp1.default.svc.cluster.local';
    const log = await accessLog(join(lab.dir, 'logs', `cluster-1.${nodeapp3.name}.proxy.log.access`), (lines) => lines.filter(nodeapp1).length >= 100);
    const hosts = new Set(log.filter(nodeapp1).map((l) => l.upstream_host));
    assert.ok(hosts.has(gw2.address), `cluster-2 is reached through its gateway ${gw2.address}: ${[...hosts].join(', ')}`);
    assert.ok(!hosts.has(`${v2.ip}:9000`), 'never the remote pod directly');
    const direct = await inPod(nodeapp3.netns!, ['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${v2.ip}:9000/`]);
    assert.notEqual(direct.trim(), '200', 'the networks really are separate');
  } finally {
    await lab.cleanup();
  }
});

test('S3: helloworld from both sides; deleting namespace sample in both clusters removes its endpoints from every proxy', { skip }, async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--isolation', 'netns', '--topology', join(examples, 's3-helloworld', 'topology.yaml')]);
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const state = JSON.parse(readFileSync(join(lab.dir, 'lab.json'), 'utf8')) as LabState;
    const sleeps = state.pods.filter((p) => p.app === 'sleep');
    assert.equal(sleeps.length, 2);

    const deleted = Date.now();
    for (const c of state.clusters) {
      const r = await crossmesh(lab.dir, ['delete', 'namespace', 'sample', '--server', c.controlPlane.api, '--token', state.tokens[c.name]!, '--ca-file', state.rootCert]);
      assert.equal(r.code, 0, r.stderr);
    }
    // Every control plane's view and every sidecar's runtime config lose helloworld's endpoints.
    for (const c of state.clusters) {
      const gone = await eventually(async () => {
        const eps = (await (await fetch(`${c.controlPlane.admin}/debug/endpointz`)).json()) as Record<string, unknown>;
        return !Object.keys(eps).some((k) => k.startsWith('helloworld.sample.'));
      }, 15_000);
      assert.ok(gone, `${c.name} still lists helloworld endpoints`);
    }
    for (const s of sleeps) {
      const gone = await eventually(async () => {
        const dump = JSON.parse(await inPod(s.netns!, ['curl', '-s', 'http://127.0.0.1:15000/clusters?format=json'])) as { cluster_statuses: Array<{ name: string; host_statuses: unknown[] }> };
        return dump.cluster_statuses.filter((c) => c.name.endsWith('|helloworld.sample.svc.cluster.local')).every((c) => c.host_statuses.length === 0);
      }, 15_000);
      assert.ok(gone, `${s.cluster}/${s.name} still has helloworld endpoints`);
    }
    assert.ok(Date.now() - deleted < 20_000, 'within seconds');
  } finally {
    await lab.cleanup();
  }
});

test('S5: httpbin only in ack-2 behind two gateway replicas: the teapot through either replica, both carrying traffic', { skip }, async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--isolation', 'netns', '--topology', join(examples, 's5-mesh-proxy', 'topology.yaml')]);
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const status = await labStatus(lab.dir);
    const sleep = status.pods.find((p) => p.app === 'sleep')!;
    const httpbin = status.pods.find((p) => p.app === 'httpbin')!;
    assert.equal(status.gateways.length, 2);
    for (let i = 0; i < 30; i++) {
      const out = await inPod(sleep.netns!, ['curl', '-sS', '-w', '\n%{http_code}', 'http://httpbin:8000/status/418']);
      assert.match(out, /teapot[^]*\n418$/);
    }
    const clientLog = await accessLog(join(lab.dir, 'logs', `ack-1.${sleep.name}.proxy.log.access`), (lines) => lines.filter((l) => l.path === '/status/418').length >= 35);
    const used = new Set(clientLog.filter((l) => l.path === '/status/418').map((l) => l.upstream_host));
    assert.deepEqual([...used].sort(), status.gateways.map((g) => g.address).sort(), 'calls spread over both gateway replicas');
    for (const l of clientLog.filter((x) => x.path === '/status/418')) {
      assert.equal(l.upstream_cluster, 'outbound|8000||httpbin.default.svc.cluster.local');
      assert.equal(l.response_code, 418);
    }
    // Gateways log a connection when it closes: stop the client, then each replica has lines of its own.
    assert.equal((await crossmesh(lab.dir, ['lab', 'kill', `ack-1/${sleep.name}`])).code, 0);
    for (const g of status.gateways) {
      const line = await eventually(async () => {
        const text = readFileSync(join(lab.dir, 'logs', `ack-2.${g.name}.proxy.log.access`), 'utf8').trim();
        return text ? text.split('\n').map((l) => JSON.parse(l)).find((l) => l.requested_server_name === 'outbound_.8000_._.httpbin.default.svc.cluster.local') : undefined;
      }, 15_000);
      assert.ok(line, `${g.name} carried httpbin traffic`);
      assert.equal(line.upstream_host, `${httpbin.ip}:80`);
    }
  } finally {
    await lab.cleanup();
  }
});
