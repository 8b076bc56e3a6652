import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { requestThroughSidecar } from '../../src/lab/checks.js';
import { accessLog, crossmesh, eventually, labFixture, labStatus, processesOf } from './lab-helpers.js';

/**
 * The default topology in loopback isolation, through the real CLI: `up -d` runs its checks, then S3's
 * assertions from both sides, the path the access logs show, a pod killed and started again, and `down`
 * leaving nothing behind.
 */
test('default lab, loopback: helloworld answers from both clusters through the east-west gateways; kill/start; down leaves nothing', async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d']);
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /check "helloworld from cluster-1".*\n(.*\n)*? {2}ok/);
    assert.match(up.stdout, /check "helloworld from cluster-2".*\n(.*\n)*? {2}ok/);

    const status = await labStatus(lab.dir);
    assert.deepEqual(status.clusters.map((c) => [c.name, c.network]), [['cluster-1', 'network1'], ['cluster-2', 'network2']]);
    for (const c of status.clusters) assert.match(c.controlPlane.xds, /^[\d.]+:15010$/);
    assert.deepEqual(status.gateways.map((g) => g.cluster), ['cluster-1', 'cluster-2']);
    for (const p of status.pods) assert.deepEqual(Object.keys(p).slice(0, 8), ['name', 'cluster', 'namespace', 'app', 'version', 'ip', 'netns', 'admin']);
    assert.ok(status.pods.every((p) => p.netns === null));

    const sleep1 = status.pods.find((p) => p.cluster === 'cluster-1' && p.app === 'sleep')!;
    const gateway2 = status.gateways.find((g) => g.cluster === 'cluster-2')!;
    // 100 calls: each version's share must be at least 20%. A fair 50/50 split essentially never fails this;
    // a gross imbalance does. (20 calls with a floor of 5 failed a fair split too often on a loaded machine.)
    const replies: string[] = [];
    for (let i = 0; i < 100; i++) replies.push((await requestThroughSidecar(sleep1.ip, 'http://helloworld.sample:5000/hello')).body);
    const v1 = replies.filter((r) => r.startsWith('Hello version: v1, instance: helloworld-v1-')).length;
    const v2 = replies.filter((r) => r.startsWith('Hello version: v2, instance: helloworld-v2-')).length;
    assert.equal(v1 + v2, 100, replies.join(''));
    assert.ok(v1 >= 20 && v2 >= 20, `v1 ${v1}, v2 ${v2}`);

    // The client sidecar's log: local replies from the pod itself, remote ones from cluster-2's gateway.
    const log = await accessLog(join(lab.dir, 'logs', `cluster-1.${sleep1.name}.proxy.log.access`), (lines) => lines.filter((l) => l.path === '/hello').length >= 100);
    const hosts = new Set(log.filter((l) => l.path === '/hello').map((l) => l.upstream_host));
    assert.ok(hosts.has(gateway2.address), `gateway ${gateway2.address} in ${[...hosts].join(', ')}`);
    const hw1 = status.pods.find((p) => p.app === 'helloworld' && p.cluster === 'cluster-1')!;
    assert.ok(hosts.has(`${hw1.ip}:5000`), 'local endpoint directly');

    // S5 in small: httpbin exists only in cluster-2; the teapot comes back through the gateway.
    const teapot = await requestThroughSidecar(sleep1.ip, 'http://httpbin.sample:8000/status/418');
    assert.equal(teapot.status, 418);
    assert.match(teapot.body, /teapot/);

    // Kill cluster-2's helloworld: its endpoint is withdrawn and calls keep succeeding on v1; start it again.
    const hw2 = status.pods.find((p) => p.app === 'helloworld' && p.cluster === 'cluster-2')!;
    assert.equal((await crossmesh(lab.dir, ['lab', 'kill', `cluster-2/${hw2.name}`])).code, 0);
    const onlyV1 = await eventually(async () => {
      const bodies = await Promise.all(Array.from({ length: 6 }, () => requestThroughSidecar(sleep1.ip, 'http://helloworld.sample:5000/hello').then((r) => r.body, () => 'error')));
      return bodies.every((b) => b.startsWith('Hello version: v1'));
    }, 30_000);
    assert.ok(onlyV1, 'traffic moved to cluster-1 after cluster-2\'s helloworld stopped');
    assert.equal((await crossmesh(lab.dir, ['lab', 'start', `cluster-2/${hw2.name}`])).code, 0);
    const back = await eventually(async () => (await requestThroughSidecar(sleep1.ip, 'http://helloworld.sample:5000/hello')).body.startsWith('Hello version: v2'), 30_000, 100);
    assert.ok(back, 'v2 answers again after start');

    const down = await crossmesh(lab.dir, ['down']);
    assert.equal(down.code, 0);
    assert.match(down.stdout, /stopped \d+ processes/);
    assert.deepEqual(await processesOf(lab.dir), [], 'no process left after down');
    assert.ok(!existsSync(join(lab.dir, 'logs')) && !existsSync(join(lab.dir, 'pki')) && !existsSync(join(lab.dir, 'lab.json')), 'no file left after down');
  } finally {
    await lab.cleanup();
  }
});
