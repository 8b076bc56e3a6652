import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIntermediateCa, generateRootCa, writeCacerts } from '../src/ca/index.js';
import { createKubeClient } from '../src/registry/kube-client/index.js';
import { TYPE_URLS, createAdsClient } from '../src/xds/index.js';
import { eventually, freePort, service, tempDir, workloadEntry } from './helpers/mesh.js';

const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
const CLUSTER = 'outbound|5000||helloworld.sample.svc.cluster.local';

test('kill -9 of a control plane mid-apply loses no acknowledged resource, and proxies resync after restart', async () => {
  const dir = tempDir('cm-crash-');
  const root = await generateRootCa();
  writeCacerts(join(dir.path, 'cacerts'), await generateIntermediateCa({ root, cluster: 'cluster-1' }));
  const ports = { xds: await freePort(), tls: await freePort(), admin: await freePort(), api: await freePort() };
  const args = [
    bin, 'control-plane', '--cluster', 'cluster-1', '--network', 'vpc-1', '--data', join(dir.path, 'data'), '--cacerts', join(dir.path, 'cacerts'),
    '--xds-port', String(ports.xds), '--xds-tls-port', String(ports.tls), '--admin-port', String(ports.admin), '--api-port', String(ports.api),
  ];
  const start = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const up = await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`control plane exited: ${stderr}`);
      return fetch(`http://127.0.0.1:${ports.admin}/ready`).then((r) => r.ok, () => false);
    }, 15_000);
    assert.ok(up, `control plane ready: ${stderr}`);
    return child;
  };

  let cp = await start();
  const ads = createAdsClient({
    address: `127.0.0.1:${ports.xds}`,
    node: { id: 'sidecar~10.9.0.1~sleep.sample~sample.svc.cluster.local', metadata: { CLUSTER_ID: 'cluster-1', NETWORK: 'vpc-1', NAMESPACE: 'sample' } },
    backoff: { initialMs: 50, maxMs: 500 },
  });
  let endpoints = 0;
  ads.subscribe(TYPE_URLS.cluster, () => undefined);
  ads.subscribe(TYPE_URLS.endpoint, (u) => {
    endpoints = ((u.resources.get(CLUSTER) as any)?.endpoints ?? []).reduce((n: number, l: any) => n + (l.lb_endpoints?.length ?? 0), 0);
  }, [CLUSTER]);

  const token = readFileSync(join(dir.path, 'data', 'admin-token'), 'utf8').trim();
  const client = createKubeClient({ server: `https://127.0.0.1:${ports.api}`, token, ca: root.certPem });
  try {
    await client.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }, service('sample', 'helloworld', 5000)]);
    const acknowledged: string[] = [];
    let killed = false;
    const writer = (async () => {
      for (let i = 0; !killed; i++) {
        const name = `hw-${i}`;
        try {
          await client.apply([workloadEntry('sample', name, `10.1.${i >> 8}.${i & 255}`, { app: 'helloworld' })]);
          acknowledged.push(name);
        } catch {
          return;
        }
      }
    })();
    await eventually(() => acknowledged.length >= 20, 15_000);
    cp.kill('SIGKILL');
    killed = true;
    await writer;
    await new Promise((r) => cp.once('exit', r));

    cp = await start();
    const stored = new Set((await client.list({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry' }, { namespace: 'sample' })).items.map((r) => r.metadata.name));
    const lost = acknowledged.filter((n) => !stored.has(n));
    assert.deepEqual(lost, [], `acknowledged but lost after kill -9: ${lost.join(', ')}`);
    // The proxy reconnects by itself and is sent every stored endpoint again.
    assert.ok(await eventually(() => endpoints >= acknowledged.length, 15_000), `proxy resynced: ${endpoints} endpoints, ${acknowledged.length} acknowledged`);
  } finally {
    ads.close();
    client.close();
    cp.kill('SIGKILL');
    dir.cleanup();
  }
});
