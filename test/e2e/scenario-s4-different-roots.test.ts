import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { requestThroughSidecar } from '../../src/lab/checks.js';
import { accessLog, crossmesh, labFixture, labStatus } from './lab-helpers.js';

const examples = new URL('../../../examples/', import.meta.url).pathname;

test('S4, different roots: cluster-2 has a root of its own; cluster-1\'s call to it fails at the TLS handshake, the access log names the certificate problem, analyze reports CM0003', async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--topology', join(examples, 's4-failover', 'topology-different-roots.yaml')]);
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /2 roots \(mesh, cluster-2-root\)/);
    const status = await labStatus(lab.dir);
    const sleep = status.pods.find((p) => p.cluster === 'cluster-1' && p.app === 'sleep')!;

    // The endpoint is known (the control planes share it), but the workloads do not trust each other.
    const reply = await requestThroughSidecar(sleep.ip, 'http://helloworld.sample:5000/hello');
    assert.equal(reply.status, 503, reply.body);
    assert.match(reply.body, /upstream connect error .* transport failure reason: .*certificate/i);
    const log = await accessLog(join(lab.dir, 'logs', `cluster-1.${sleep.name}.proxy.log.access`), (lines) => lines.some((l) => l.path === '/hello'));
    const line = log.find((l) => l.path === '/hello');
    assert.ok(line, 'the client sidecar logged the call');
    assert.equal(line.response_code, 503);
    assert.match(line.response_flags, /\bUF\b/);
    assert.equal(line.upstream_cluster, 'outbound|5000||helloworld.sample.svc.cluster.local');
    assert.match(String(line.upstream_transport_failure_reason), /certificate/i);

    const analyzed = await crossmesh(lab.dir, ['analyze', '--lab']);
    assert.equal(analyzed.code, 1, analyzed.stdout + analyzed.stderr);
    for (const cluster of ['cluster-1', 'cluster-2']) {
      assert.match(analyzed.stdout, new RegExp(`Error \\[CM0003\\] \\(cluster ${cluster}\\) ${cluster}: clusters do not share a root CA \\(\\{cluster-[12]\\} vs \\{cluster-[12]\\}\\)`));
    }
  } finally {
    await lab.cleanup();
  }
});
