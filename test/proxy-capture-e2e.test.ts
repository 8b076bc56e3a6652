/**
 * `crossmesh proxy --capture` inside a network namespace, configured over ADS: an unchanged client runs
 * `GET http://helloworld.sample:5000/hello`; its DNS query is captured to the proxy's DNS proxy (answered
 * from NDS), its connection to the VIP is captured to 15001 and routed by the real sidecar to the app.
 * The same over IPv6: a connection to an IPv6 address outside the mesh is captured by ip6tables and passed
 * through to its original destination, and DNS sent to an IPv6 resolver is answered by the DNS proxy.
 * SIGTERM exits 0 and removes the iptables and ip6tables rules. The namespace is always deleted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { originalDstSupport } from '../src/proxy/capture/index.js';
import { nodeIn, testPrefix } from './helpers/netns.js';

const run = promisify(execFile);

function skipReason(): string | false {
  const support = originalDstSupport();
  if (!support.ok) return support.reason;
  if (process.getuid?.() !== 0) return 'needs root for ip netns and iptables';
  for (const tool of ['ip', 'iptables', 'ip6tables']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  return false;
}

const dist = (p: string): string => JSON.stringify(new URL(`../src/${p}`, import.meta.url).href);

// Inside the namespace: the app on 10.99.2.2:5000 and an ADS server that serves each proxy what
// generateForProxy makes for it. helloworld's workload is plaintext, so one sidecar suffices.
const controlPlaneScript = `
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { buildClusterRegistry, allocateVips } from ${dist('registry/index.js')};
import { aggregate } from ${dist('controlplane/aggregate/index.js')};
import { createSnapshot, createSnapshotCache } from ${dist('controlplane/cache/index.js')};
import { createAdsServer } from ${dist('controlplane/server/index.js')};
import { generateForProxy, proxyInfoFromNode, proxyGroupKey } from ${dist('controlplane/translate/index.js')};
import { TYPE_URLS, encodeResource } from ${dist('xds/index.js')};
const app = http.createServer((req, res) => { req.resume(); res.end('hello from the app, path ' + req.url); });
await new Promise((r) => app.listen(5000, '10.99.2.2', r));
// Outside the mesh, on IPv6: says who called, so the test sees the connection went through the proxy.
const v6 = (await import('node:net')).createServer((s) => s.end('v6 app saw ' + s.remoteAddress));
await new Promise((r) => v6.listen(7000, 'fd00::2:2', r));
const svc = (name, port, portName = 'http') => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'sample' }, spec: { selector: { app: name }, ports: [{ name: portName, port, targetPort: port }] } });
const we = (name, address, labels, sa) => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: 'sample' }, spec: { address, labels, serviceAccount: sa } });
const registry = buildClusterRegistry({ clusterId: 'c1', network: 'n1', locality: 'r1/z1' }, [
  svc('helloworld', 5000), we('helloworld-1', '10.99.2.2', { app: 'helloworld', 'security.istio.io/tlsMode': 'disabled' }, 'helloworld'),
  svc('sleep', 80), we('sleep-1', '10.99.1.1', { app: 'sleep' }, 'sleep'),
]);
const view = aggregate([registry], { localCluster: 'c1' });
const vips = allocateVips([...view.services.keys()]);
const cache = createSnapshotCache();
const ads = createAdsServer({
  cache,
  nodeGroup: (node) => {
    const proxy = proxyInfoFromNode(node);
    const group = proxyGroupKey(proxy);
    const r = generateForProxy({ view, config: { virtualServices: [], destinationRules: [], gateways: [] }, mesh: { trustDomain: 'cluster.local', domainSuffix: 'cluster.local' }, proxy, vipOf: (s) => vips.get(s.hostname) });
    const pack = (t, m) => [...m.values()].map((v) => encodeResource(t, v));
    cache.setSnapshot(group, createSnapshot({
      [TYPE_URLS.cluster]: pack(TYPE_URLS.cluster, r.clusters), [TYPE_URLS.endpoint]: pack(TYPE_URLS.endpoint, r.endpoints),
      [TYPE_URLS.listener]: pack(TYPE_URLS.listener, r.listeners), [TYPE_URLS.route]: pack(TYPE_URLS.route, r.routes),
      [TYPE_URLS.nameTable]: [encodeResource(TYPE_URLS.nameTable, r.nameTable)],
    }));
    return group;
  },
});
const server = new grpc.Server();
ads.register(server);
const port = await new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
console.log(JSON.stringify({ ready: true, ads: port, vip: vips.get('helloworld.sample.svc.cluster.local') }));
`;

async function waitFor(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 15_000): Promise<RegExpExecArray> {
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}:\n${text}`)), timeoutMs);
    const on = (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.on('exit', (code) => reject(new Error(`${what}: exited with ${code}:\n${text}`)));
  });
}

describe('crossmesh proxy --capture in a network namespace', { skip: skipReason() }, () => {
  const ns = testPrefix('e2e');
  const etc = `/etc/netns/${ns}`;
  const children: ChildProcess[] = [];
  const accessLog: string[] = [];
  let proxy: ChildProcess;
  let proxyLog = '';
  let exited: Promise<number | null>;
  let started: { ads: number; vip: string };
  const records = (): Record<string, unknown>[] => accessLog.map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', '10.99.0.1/16', 'dev', 'lo']);
    // A pod has a default route; without one, a VIP (240.240.x) is unreachable before iptables sees it.
    await run('ip', ['-n', ns, 'route', 'add', 'default', 'dev', 'lo']);
    await run('ip', ['-n', ns, '-6', 'addr', 'add', 'fd00::1:1/128', 'dev', 'lo', 'nodad']);
    await run('ip', ['-n', ns, '-6', 'addr', 'add', 'fd00::2:2/128', 'dev', 'lo', 'nodad']);
    await run('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'dev', 'lo']);
    await mkdir(etc, { recursive: true });
    await writeFile(`${etc}/resolv.conf`, 'nameserver 10.99.0.53\nsearch sample.svc.cluster.local svc.cluster.local cluster.local\noptions timeout:1 attempts:2\n');

    const cp = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', controlPlaneScript], { stdio: ['ignore', 'pipe', 'pipe'], cwd: new URL('../..', import.meta.url).pathname });
    children.push(cp);
    started = JSON.parse((await waitFor(cp, /\{"ready":true[^\n]*\}/, 'control plane'))[0]) as { ads: number; vip: string };

    const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
    proxy = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, 'proxy', '--role', 'sidecar', '--discovery', `127.0.0.1:${started.ads}`, '--cluster', 'c1', '--network', 'n1',
      '--namespace', 'sample', '--service-account', 'sleep', '--labels', 'app=sleep', '--ip', '10.99.1.1', '--pod', 'sleep-1', '--capture', '--dns-upstream', '127.0.0.1:1'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CROSSMESH_LOG_FORMAT: 'json' } });
    children.push(proxy);
    proxy.stderr!.on('data', (d: Buffer) => (proxyLog += d.toString()));
    proxy.stdout!.on('data', (d: Buffer) => accessLog.push(...d.toString().split('\n').filter(Boolean)));
    exited = new Promise<number | null>((resolve) => proxy.on('exit', (code) => resolve(code)));
    await waitFor(proxy, /"msg":"proxy ready"/, 'proxy ready');
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await rm(etc, { recursive: true, force: true });
    const { stdout } = await run('ip', ['netns', 'list']);
    assert.ok(!stdout.includes(ns), 'namespace removed');
  });

  test('an unchanged client reaches helloworld.sample:5000 through DNS and TCP capture', async () => {
    const client = await nodeIn(ns, `
const http = require('node:http');
const dns = require('node:dns');
dns.lookup('helloworld.sample', { family: 4 }, (e, address) => {
  http.get('http://helloworld.sample:5000/hello', (res) => { let b = ''; res.on('data', (c) => b += c); res.on('end', () => console.log(JSON.stringify({ address: e ? e.code : address, status: res.statusCode, body: b }))); })
    .on('error', (err) => console.log(JSON.stringify({ address: e ? e.code : address, error: err.code })));
});`, 15_000);
    const out = JSON.parse(client.stdout || '{}') as { address?: string; status?: number; body?: string; error?: string };
    assert.deepEqual(out, { address: started.vip, status: 200, body: 'hello from the app, path /hello' }, `${client.stderr}\n${proxyLog}`);
    const record = records().find((r) => r.path === '/hello');
    assert.equal(record?.upstream_cluster, 'outbound|5000||helloworld.sample.svc.cluster.local');
    assert.equal(record?.upstream_host, '10.99.2.2:5000');
  });

  test('IPv6: a connection to an IPv6 address is captured and passed through to its original destination; DNS to an IPv6 resolver is answered', async () => {
    assert.doesNotMatch(proxyLog, /IPv6 is not captured/);
    const client = await nodeIn(ns, `
const net = require('node:net');
const dns = require('node:dns');
const resolver = new dns.Resolver({ timeout: 1000, tries: 2 });
resolver.setServers(['[fd00::53]']);
resolver.resolve4('helloworld.sample.svc.cluster.local', (e, addresses) => {
  const s = net.connect({ host: 'fd00::2:2', port: 7000 });
  let b = '';
  s.on('data', (c) => (b += c));
  s.on('close', () => console.log(JSON.stringify({ dns: e ? e.code : addresses, body: b })));
  s.on('error', (err) => (b = err.code));
});`, 15_000);
    const out = JSON.parse(client.stdout || '{}') as { dns?: string[] | string; body?: string };
    assert.deepEqual(out.dns, [started.vip], `${client.stderr}\n${proxyLog}`);
    assert.match(out.body ?? '', /^v6 app saw fd00::/, `${client.stderr}\n${proxyLog}`);
    const record = records().find((r) => r.upstream_host === '[fd00::2:2]:7000');
    assert.ok(record, `an access-log record for the IPv6 connection:\n${accessLog.join('\n')}`);
    assert.equal(record.upstream_cluster, 'PassthroughCluster');
    assert.equal(record.downstream_local_address, '[fd00::2:2]:7000', 'the original IPv6 destination was recovered');
    assert.equal(record.response_flags, '-');
  });

  test('SIGTERM exits 0 and removes the iptables and ip6tables rules', async () => {
    for (const tool of ['iptables', 'ip6tables']) {
      const { stdout: during } = await run('ip', ['netns', 'exec', ns, tool, '-t', 'nat', '-S']);
      assert.match(during, /CROSSMESH_OUTPUT/, tool);
    }
    proxy.kill('SIGTERM');
    assert.equal(await exited, 0, proxyLog);
    for (const tool of ['iptables', 'ip6tables']) {
      const { stdout: after } = await run('ip', ['netns', 'exec', ns, tool, '-t', 'nat', '-S']);
      assert.doesNotMatch(after, /CROSSMESH/, `${tool} rules removed on exit`);
    }
  });
});
