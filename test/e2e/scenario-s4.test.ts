import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabState } from '../../src/lab/state.js';
import { requestThroughSidecar } from '../../src/lab/checks.js';
import { crossmesh, eventually, labFixture, labStatus } from './lab-helpers.js';

const examples = new URL('../../../examples/', import.meta.url).pathname;

/** `count` calls, `gapMs` apart: how many failed, and the versions that answered. */
async function calls(ip: string, count: number, gapMs = 0): Promise<{ errors: number; v1: number; v2: number }> {
  const out = { errors: 0, v1: 0, v2: 0 };
  for (let i = 0; i < count; i++) {
    const r = await requestThroughSidecar(ip, 'http://helloworld.sample:5000/hello').catch(() => ({ status: 0, body: '' }));
    if (r.status !== 200) out.errors++;
    else if (r.body.includes('version: v1')) out.v1++;
    else if (r.body.includes('version: v2')) out.v2++;
    if (gapMs) await new Promise((res) => setTimeout(res, gapMs));
  }
  return out;
}

test('S4: locality keeps calls in the caller\'s region; failover when its endpoints die and back when they return; 90/10 canary across clusters; losing a whole cluster', async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--topology', join(examples, 's4-failover', 'topology.yaml')]);
    assert.equal(up.code, 0, `up failed (its check wants cluster-2's calls to stay on v2):\n${up.stdout}\n${up.stderr}`);
    const status = await labStatus(lab.dir);
    const sleep = (c: string) => status.pods.find((p) => p.cluster === c && p.app === 'sleep')!.ip;
    const hw2 = status.pods.find((p) => p.cluster === 'cluster-2' && p.app === 'helloworld')!;

    // Kill cluster-2's helloworld: cluster-2's calls fail over to cluster-1 with at most a short burst of errors.
    assert.equal((await crossmesh(lab.dir, ['lab', 'kill', `cluster-2/${hw2.name}`])).code, 0);
    const during = await calls(sleep('cluster-2'), 40, 50);
    assert.ok(during.errors <= 3, `errors during failover: ${JSON.stringify(during)}`);
    assert.ok(during.v1 >= 35, `calls went to cluster-1: ${JSON.stringify(during)}`);

    // It comes back: traffic returns to the caller's region once the endpoint is healthy again.
    assert.equal((await crossmesh(lab.dir, ['lab', 'start', `cluster-2/${hw2.name}`])).code, 0);
    const back = await eventually(async () => (await calls(sleep('cluster-2'), 5)).v2 === 5, 40_000, 500);
    assert.ok(back, 'traffic returned to cluster-2');

    // Canary across clusters: v1 lives in cluster-1, v2 in cluster-2; 90/10 measured over 1000 calls.
    assert.equal((await crossmesh(lab.dir, ['lab', 'apply', 'cluster-1', '-f', join(examples, 's4-failover', 'canary-90-10.yaml')])).code, 0);
    const settled = await eventually(async () => {
      const probe = await calls(sleep('cluster-1'), 50);
      return probe.v1 > 35 && probe.v2 > 0;
    }, 20_000, 500);
    assert.ok(settled, 'the VirtualService reached cluster-1\'s sidecar');
    const split = await calls(sleep('cluster-1'), 1000);
    const pct = (100 * split.v1) / (split.v1 + split.v2);
    assert.equal(split.errors, 0);
    assert.ok(pct >= 85 && pct <= 95, `v1 share ${pct.toFixed(1)}% (${JSON.stringify(split)})`);
    const state = JSON.parse(readFileSync(join(lab.dir, 'lab.json'), 'utf8')) as LabState;
    const removed = await crossmesh(lab.dir, ['delete', 'virtualservice', 'helloworld', '-n', 'sample', '--server', state.clusters[0]!.controlPlane.api, '--token', state.tokens['cluster-1']!, '--ca-file', state.rootCert]);
    assert.equal(removed.code, 0, removed.stderr);

    // The whole of cluster-2 goes away (control plane, pods): cluster-1's callers keep succeeding.
    await eventually(async () => (await calls(sleep('cluster-1'), 10)).v2 > 0, 20_000, 500);
    assert.equal((await crossmesh(lab.dir, ['lab', 'kill', 'cluster-2'])).code, 0);
    const after = await calls(sleep('cluster-1'), 40, 50);
    assert.ok(after.errors <= 3, `errors after losing cluster-2: ${JSON.stringify(after)}`);
    assert.ok(after.v1 >= 35);
  } finally {
    await lab.cleanup();
  }
});
