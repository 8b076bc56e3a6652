/** `crossmesh proxy` flag checks, and `proxy-config` / `proxy-status` against a live proxy and ADS server. */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSnapshotCache } from '../src/controlplane/cache/index.js';
import { proxyInfoFromNode, proxyGroupKey } from '../src/controlplane/translate/index.js';
import { createProxy } from '../src/proxy/runtime/index.js';
import type { CredentialProvider } from '../src/proxy/runtime/index.js';
import { runCli } from './helpers/cli.js';
import { resolvConfNameservers } from '../src/cli/commands/proxy.js';
import { syncState } from '../src/cli/commands/proxy-config.js';
import { createTestPki } from './proxy-certs.js';
import { eventually, startAds } from './xds-helpers.js';
import { buildMesh, fakeSidecarFactory, snapshotFor } from './proxy-runtime-helpers.js';

test('crossmesh proxy: every flag problem is named, exit 2', async () => {
  const none = await runCli(['proxy']);
  assert.equal(none.code, 2);
  for (const flag of ['--role: required', '--discovery: required', '--cluster: required', '--network: required', '--namespace: required']) assert.match(none.stderr, new RegExp(flag));
  const bad = await runCli([
    'proxy', '--role', 'ingress', '--discovery', 'istiod', '--cluster', 'c1', '--network', 'n1', '--namespace', 'Default',
    '--labels', 'app=x,oops', '--ip', '10.0.0', '--app-port', '70000', '--token', 't', '--token-file', 'f', '--interception', 'tproxy', '--locality', 'a/b/c/d', '--dns-capture', 'off',
  ]);
  assert.equal(bad.code, 2);
  for (const expected of [
    '--role: must be sidecar or eastwest-gateway (got "ingress")',
    '--discovery: expected HOST:PORT (got "istiod")',
    '--namespace: "Default" is not a DNS label',
    '--labels: "oops" is not key=value',
    '--ip: "10.0.0" is not an IP address',
    '--app-port: expected a port 0..65535 (got "70000")',
    '--token and --token-file: give one, not both',
    '--interception: must be redirect or none (got "tproxy")',
    '--locality: expected region/zone/subzone (got "a/b/c/d")',
    '--dns-capture: must be true or false (got "off")',
  ]) assert.ok(bad.stderr.includes(expected), `${expected} in ${bad.stderr}`);
  const tls = await runCli(['proxy', '--role', 'sidecar', '--discovery', 'istiod:15012', '--cluster', 'c1', '--network', 'n1', '--namespace', 'ns']);
  assert.equal(tls.code, 2);
  assert.match(tls.stderr, /--ca-root: required with a join token or TLS/);
  assert.match(tls.stderr, /TLS to the control plane presents the workload certificate/);
  const gwCapture = await runCli(['proxy', '--role', 'eastwest-gateway', '--discovery', 'cp:15010', '--cluster', 'c1', '--network', 'n1', '--namespace', 'ns', '--capture']);
  assert.match(gwCapture.stderr, /--capture: only a sidecar captures traffic/);
});

test('proxy-config and proxy-status read a running proxy and control plane', async (t) => {
  const pki = await createTestPki();
  const leaf = await pki.issue({ spiffe: 'spiffe://cluster.local/ns/default/sa/sleep' });
  const creds = { certChainPem: leaf.cert, keyPem: leaf.key, rootsPem: pki.rootPem, spiffeId: 'spiffe://cluster.local/ns/default/sa/sleep' };
  const credentials: CredentialProvider = { ready: async () => creds, current: () => creds, onRotate: () => () => undefined, close: () => undefined };
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  const { factory, sidecar } = fakeSidecarFactory();
  const proxy = createProxy({
    role: 'sidecar', discoveryAddress: running.address, ip: '127.0.0.1', podName: 'sleep-1', namespace: 'default', serviceAccount: 'sleep',
    cluster: 'ack-1', network: 'network1', labels: { app: 'sleep' }, admin: { port: 0, statusPort: false }, dns: false, createSidecar: factory, credentials,
  });
  const debug = http.createServer((req, res) => {
    res.writeHead(req.url === '/debug/connections' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(running.ads.connectedProxies()));
  });
  await new Promise<void>((r) => debug.listen(0, '127.0.0.1', r));
  t.after(async () => {
    await proxy.close();
    running.stop();
    debug.close();
  });
  const s = snapshotFor(proxy.node, buildMesh(18080));
  cache.setSnapshot(s.group, s.snapshot);
  const { admin } = await proxy.start();
  await proxy.whenReady();
  assert.equal(sidecar.options?.credentials()?.spiffeId, creds.spiffeId);
  const url = `http://127.0.0.1:${admin!.port}`;

  const listeners = await runCli(['proxy-config', 'listeners', url]);
  assert.equal(listeners.code, 0, listeners.stderr);
  for (const name of s.resources.listeners.keys()) assert.ok(listeners.stdout.includes(name), name);
  const clusters = await runCli(['proxy-config', 'clusters', url, '-o', 'json']);
  assert.deepEqual((JSON.parse(clusters.stdout) as Array<{ name: string }>).map((c) => c.name).sort(), [...s.resources.clusters.keys()].sort());
  const endpoints = await runCli(['proxy-config', 'endpoints', url]);
  assert.match(endpoints.stdout, /127\.0\.0\.1:80\s+HEALTHY\s+OK\s+outbound\|80\|\|sleep\.default\.svc\.cluster\.local/);
  const routes = await runCli(['proxy-config', 'routes', url, '-o', 'yaml']);
  assert.match(routes.stdout, /virtual_hosts:/);
  const secret = await runCli(['proxy-config', 'secret', url]);
  assert.match(secret.stdout, /^default\s+O=crossmesh test\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep\s+\d{4}-/m);
  assert.match(secret.stdout, /^ROOTCA\s+CN=crossmesh test root/m);
  const secretJson = await runCli(['proxy-config', 'secret', url, '-o', 'json']);
  assert.ok(!secretJson.stdout.includes('PRIVATE KEY') && !secretJson.stdout.includes(leaf.key.split('\n')[1]!), 'never the key');
  const unknown = await runCli(['proxy-config', 'bogus', url]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown kind "bogus"/);
  const down = await runCli(['proxy-config', 'clusters', 'http://127.0.0.1:1']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1\/config_dump/);

  const status = await runCli(['proxy-status', '--server', `http://127.0.0.1:${(debug.address() as AddressInfo).port}`]);
  assert.equal(status.code, 0, status.stderr);
  const row = status.stdout.split('\n').find((l) => l.startsWith(proxy.node.id))!;
  assert.ok(row, status.stdout);
  assert.match(row, new RegExp(`SYNCED \\(${s.snapshot.version('type.googleapis.com/envoy.config.cluster.v3.Cluster')!.slice(0, 12)}\\)`));
  assert.equal((row.match(/SYNCED/g) ?? []).length, 5, row);
  const statusJson = JSON.parse((await runCli(['proxy-status', '--server', `http://127.0.0.1:${(debug.address() as AddressInfo).port}`, '-o', 'json'])).stdout) as Array<{ types: Record<string, { state: string }> }>;
  assert.equal(statusJson[0]!.types.LDS!.state, 'SYNCED');
});

/** A gateway process fed by a test ADS server: plaintext connections to it are refused (and logged). */
async function gatewayProcess(t: TestContext, accessLog: string, cwd: string) {
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  t.after(() => running.stop());
  const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'proxy', '--role', 'eastwest-gateway', '--discovery', running.address, '--cluster', 'ack-2', '--network', 'network2',
    '--namespace', 'istio-system', '--service-account', 'istio-eastwestgateway', '--labels', 'istio=eastwestgateway', '--ip', '127.0.0.1', '--pod', 'ewgw-1',
    '--admin-port', '0', '--status-port', '0', '--gateway-port', '0', '--locality', 'region-2/zone-b', '--access-log', accessLog], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CROSSMESH_LOG_FORMAT: 'json' } });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));
  const connected = await eventually('proxy connected', () => running.ads.connectedProxies()[0], 10_000);
  const s = snapshotFor(connected.node, buildMesh(18080));
  cache.setSnapshot(s.group, s.snapshot);
  const status = await eventually('listening log', () => /"status":"[^"]*:(\d+)"/.exec(out.stderr)?.[1], 10_000);
  const ready = async (): Promise<number> => new Promise((resolve) => http.get(`http://127.0.0.1:${status}/healthz/ready`, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', () => resolve(0)));
  for (let i = 0; i < 200 && (await ready()) !== 200; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await ready(), 200);
  const refuse = (n: number): Promise<void[]> => {
    const gatewayPort = /"gateway":"[^"]*:(\d+)"/.exec(out.stderr)![1];
    return Promise.all(
      Array.from({ length: n }, () =>
        new Promise<void>((resolve) => {
          const c = net.connect(Number(gatewayPort), '127.0.0.1', () => c.write('GET / HTTP/1.1\r\n\r\n'));
          c.on('close', () => resolve());
          c.on('error', () => undefined);
        }),
      ),
    );
  };
  return { node: connected.node, out, refuse, stop: async () => (child.kill('SIGTERM'), await exited) };
}

test('crossmesh proxy as a process: becomes ready from the control plane, SIGTERM drains and exits 0', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'crossmesh-proxy-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const accessLog = join(dir, 'access.log');
  const gw = await gatewayProcess(t, accessLog, dir);
  assert.equal(gw.node.id, 'router~127.0.0.1~ewgw-1.istio-system~istio-system.svc.cluster.local');
  assert.deepEqual(gw.node.locality, { region: 'region-2', zone: 'zone-b' });
  // Plaintext connections to the gateway are refused and logged to --access-log. SIGTERM follows the last
  // one at once: the access log is batched per event-loop turn, and the drain must still write every line.
  const refused = 40;
  await gw.refuse(refused);
  assert.equal(await gw.stop(), 0, gw.out.stderr);
  assert.match(gw.out.stderr, /"msg":"proxy stopped"/);
  const lines = (await readFile(accessLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, refused);
  assert.ok(lines.every((l) => l.response_flags === 'NR'));
});

test('crossmesh proxy --access-log off: no access log anywhere (not on stdout, no file named off)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'crossmesh-proxy-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const gw = await gatewayProcess(t, 'off', dir);
  await gw.refuse(5);
  assert.equal(await gw.stop(), 0, gw.out.stderr);
  assert.doesNotMatch(gw.out.stdout, /response_flags/);
  assert.deepEqual(await readdir(dir), []);
});

test('proxy helpers: resolv.conf nameservers; sync state per type', () => {
  assert.deepEqual(resolvConfNameservers('# c\nnameserver 10.0.0.10\nsearch a.b\nnameserver fe80::1%eth0\nnameserver bogus\n  nameserver 1.1.1.1 \n'), ['10.0.0.10', 'fe80::1%eth0', '1.1.1.1']);
  assert.equal(syncState(undefined), 'NOT_SENT');
  assert.equal(syncState({ typeUrl: 't', sentVersion: 'v2', ackedVersion: 'v2', sync: 'STALE' }), 'STALE', "the control plane's verdict wins");
  assert.equal(syncState({ typeUrl: 't', sentVersion: 'v2', ackedVersion: 'v2' }), 'SYNCED');
  assert.equal(syncState({ typeUrl: 't', sentVersion: 'v2', ackedVersion: 'v1' }), 'STALE');
  assert.equal(syncState({ typeUrl: 't', sentVersion: 'v2', ackedVersion: 'v1', lastNack: { version: 'v1', message: 'bad' } }), 'NACKED');
});
