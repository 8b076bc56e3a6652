/**
 * The whole loop with the real control plane: `crossmesh proxy` as a process joins with a join token, gets
 * its certificate from the control plane's CA, takes its config over TLS xDS (15012-style), becomes ready,
 * and `proxy-config secret` / `proxy-status` show its certificate and its sync state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { eventually, service, startClusters, workloadEntry } from './helpers/mesh.js';

test('crossmesh proxy joins a real control plane with a token over TLS xDS; proxy-config and proxy-status see it', async (t) => {
  const mesh = await startClusters([{ name: 'cluster-1', network: 'vpc-1', locality: 'r1/z1' }]);
  t.after(() => mesh.stop());
  const cp = mesh.clusters[0]!.cp;
  await cp.store.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } },
    service('sample', 'helloworld', 5000),
    workloadEntry('sample', 'hw-1', '127.202.1.2', { app: 'helloworld' }, 'helloworld'),
    service('sample', 'sleep', 80),
    workloadEntry('sample', 'sleep-1', '127.202.1.1', { app: 'sleep' }, 'sleep'),
  ]);
  const tokenFile = join(mesh.dir, 'token');
  const rootFile = join(mesh.dir, 'root.pem');
  writeFileSync(tokenFile, cp.ca.createJoinToken({ namespace: 'sample', serviceAccount: 'sleep', ttlSeconds: 600 }) + '\n');
  writeFileSync(rootFile, cp.ca.rootsPem());

  const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    [bin, 'proxy', '--role', 'sidecar', '--discovery', cp.addresses().xdsTls, '--xds-tls', '--ca-address', cp.addresses().xdsTls, '--ca-root', rootFile, '--token-file', tokenFile,
      '--cluster', 'cluster-1', '--network', 'vpc-1', '--namespace', 'sample', '--service-account', 'sleep', '--labels', 'app=sleep', '--ip', '127.202.1.1', '--pod', 'sleep-1',
      '--interception', 'none', '--admin-port', '0', '--status-port', '0', '--dns-port', '0', '--dns-upstream', '127.0.0.1:1'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CROSSMESH_LOG_FORMAT: 'json' } },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));

  const admin = await eventually(() => /"admin":"([^"]+)"/.exec(stderr)?.[1], 10_000);
  // Without capture every listener binds the workload address (several proxies may share a host).
  const status = /"status":"([^"]+)"/.exec(stderr)![1];
  await eventually(async () => (await fetch(`http://${status}/healthz/ready`)).status === 200 || undefined, 10_000).catch((err: unknown) => {
    throw new Error(`not ready: ${String(err)}\n${stderr}`);
  });

  const secret = await runCli(['proxy-config', 'secret', `http://${admin}`]);
  assert.equal(secret.code, 0, secret.stderr);
  assert.match(secret.stdout, /^default\s.*URI:spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/m, 'the certificate the CA issued for the token');
  const clusters = await runCli(['proxy-config', 'clusters', `http://${admin}`]);
  assert.match(clusters.stdout, /outbound\|5000\|\|helloworld\.sample\.svc\.cluster\.local\s+EDS\s+(yes|auto)\s/);
  assert.match(clusters.stdout, /BlackHoleCluster\s+STATIC\s+no\s/);
  const endpoints = await runCli(['proxy-config', 'endpoints', `http://${admin}`]);
  assert.match(endpoints.stdout, /127\.202\.1\.2:5000\s+HEALTHY\s+OK\s+outbound\|5000\|\|helloworld\.sample\.svc\.cluster\.local/);

  const row = await eventually(async () => {
    const r = await runCli(['proxy-status', '--server', cp.addresses().admin]);
    return r.stdout.split('\n').find((l) => l.startsWith('sidecar~127.202.1.1~sleep-1.sample') && (l.match(/SYNCED/g) ?? []).length === 5);
  }, 10_000);
  assert.match(row!, /cluster-1/);

  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
});
