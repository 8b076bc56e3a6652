/**
 * Transparent capture in a real network namespace: installCapture's iptables rules send an unmodified
 * client's TCP to 15001 (where originalDestination recovers the VIP it dialled) and its DNS to the DNS
 * proxy on 15053 (which answers a mesh name from a name table), while the proxy's own traffic (gid 1337)
 * is left alone. The rules are gone after remove(); the namespace is always deleted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { originalDstSupport } from '../src/proxy/capture/index.js';
import { installCapture, PROXY_GID } from '../src/proxy/runtime/index.js';
import { silentLogger } from '../src/shared/index.js';
import { nodeIn, testPrefix } from './helpers/netns.js';

const run = promisify(execFile);

function skipReason(): string | false {
  const support = originalDstSupport();
  if (!support.ok) return support.reason;
  if (process.getuid?.() !== 0) return 'needs root for ip netns and iptables';
  for (const tool of ['ip', 'iptables', 'ip6tables', 'setpriv']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  return false;
}

const VIP = '10.99.3.7';
const FQDN = 'helloworld.sample.svc.cluster.local';

// The "proxy" inside the namespace, running with gid 1337: a DNS proxy over a name table, a 15001
// listener that reports what it recovered, and a dial of its own that must not be captured.
const proxyScript = (dnsUrl: string, captureUrl: string): string => `
import net from 'node:net';
import { createDnsProxy, createNameTableLookup } from ${JSON.stringify(dnsUrl)};
import { originalDestination } from ${JSON.stringify(captureUrl)};
const lookup = createNameTableLookup({ table: { ${JSON.stringify(FQDN)}: { ips: [${JSON.stringify(VIP)}], shortname: 'helloworld', namespace: 'sample' } } });
const dns = createDnsProxy({ port: 15053, host: '127.0.0.1', lookup, upstreams: [], searchDomains: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'] });
await dns.listen();
const server = net.createServer((s) => {
  const r = originalDestination(s);
  console.log(JSON.stringify({ captured: r.ok ? { address: r.address, port: r.port, redirected: r.redirected } : r }));
  s.end('captured');
});
await new Promise((r) => server.listen(15001, '0.0.0.0', r));
const inbound = net.createServer((s) => {
  const r = originalDestination(s);
  console.log(JSON.stringify({ inbound: r.ok ? { address: r.address, port: r.port, redirected: r.redirected } : r }));
  s.end('inbound-captured');
});
await new Promise((r) => inbound.listen(15006, '0.0.0.0', r));
const status = net.createServer((s) => s.end('status'));
await new Promise((r) => status.listen(15021, '0.0.0.0', r));
process.stdin.on('data', () => {
  const c = net.connect(9, '10.99.0.1');
  c.on('connect', () => { console.log(JSON.stringify({ self: 'connected' })); c.destroy(); });
  c.on('error', (e) => console.log(JSON.stringify({ self: e.code })));
});
console.log('ready');
`;

const clientScript = `
const dns = require('node:dns');
const net = require('node:net');
const out = {};
const dial = (host, port) => new Promise((res) => { const c = net.connect(port, host); let d = ''; c.on('data', (b) => d += b); c.on('close', () => res(d)); c.on('error', (e) => res(e.code)); });
(async () => {
  out.fqdn = await new Promise((res) => dns.lookup(${JSON.stringify(FQDN)}, { family: 4 }, (e, a) => res(e ? e.code : a)));
  out.short = await new Promise((res) => dns.lookup('helloworld.sample', { family: 4 }, (e, a) => res(e ? e.code : a)));
  out.viaName = await dial(out.fqdn, 5000);
  out.viaIp = await dial('10.99.4.4', 8080);
  out.loopback = await dial('127.0.0.1', 9);
  console.log(JSON.stringify(out));
})();
`;

test('transparent capture in a network namespace: outbound TCP to 15001 and inbound to 15006 with the original destination, DNS to 15053', { skip: skipReason() }, async () => {
  const ns = testPrefix('cap');
  const peer = testPrefix('peer');
  const etc = `/etc/netns/${ns}`;
  let proxy: ChildProcess | undefined;
  try {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', '10.99.0.1/16', 'dev', 'lo']);
    // A second namespace on a veth pair, to send inbound traffic from outside.
    await run('ip', ['netns', 'add', peer]);
    await run('ip', ['-n', ns, 'link', 'add', 'cm0', 'type', 'veth', 'peer', 'name', 'cm1', 'netns', peer]);
    await run('ip', ['-n', ns, 'addr', 'add', '10.98.0.1/24', 'dev', 'cm0']);
    await run('ip', ['-n', peer, 'addr', 'add', '10.98.0.2/24', 'dev', 'cm1']);
    await run('ip', ['-n', ns, 'link', 'set', 'cm0', 'up']);
    await run('ip', ['-n', peer, 'link', 'set', 'cm1', 'up']);
    await mkdir(etc, { recursive: true });
    await writeFile(`${etc}/resolv.conf`, 'nameserver 10.99.0.53\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions timeout:1 attempts:1\n');

    const capture = await installCapture({ netns: ns, proxyGid: PROXY_GID });
    const script = proxyScript(new URL('../src/proxy/dns/index.js', import.meta.url).href, new URL('../src/proxy/capture/index.js', import.meta.url).href);
    const lines: string[] = [];
    proxy = spawn('ip', ['netns', 'exec', ns, 'setpriv', `--regid=${PROXY_GID}`, '--clear-groups', process.execPath, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      proxy!.stdout!.on('data', (d: Buffer) => {
        lines.push(...d.toString().split('\n').filter(Boolean));
        if (lines.includes('ready')) resolve();
      });
      proxy!.on('exit', (code) => reject(new Error(`proxy helper exited with ${code}`)));
    });

    const client = await nodeIn(ns, clientScript, 10_000);
    assert.equal(client.code, 0, client.stderr);
    const out = JSON.parse(client.stdout) as Record<string, string>;
    assert.equal(out.fqdn, VIP, 'the mesh name resolved through the captured DNS');
    assert.equal(out.short, VIP, 'name.namespace resolves too');
    assert.equal(out.viaName, 'captured');
    assert.equal(out.viaIp, 'captured');
    assert.equal(out.loopback, 'ECONNREFUSED', '127.0.0.1 is never captured');
    const captured = lines.filter((l) => l.startsWith('{"captured"')).map((l) => (JSON.parse(l) as { captured: { address: string; port: number; redirected: boolean } }).captured);
    assert.deepEqual(captured, [
      { address: VIP, port: 5000, redirected: true },
      { address: '10.99.4.4', port: 8080, redirected: true },
    ]);

    // Inbound: from the other namespace, any port goes to 15006 with its destination recovered; 15021 does not.
    const inbound = await nodeIn(peer, `
const net = require('node:net');
const dial = (port) => new Promise((res) => { const c = net.connect(port, '10.98.0.1'); let d = ''; c.on('data', (b) => d += b); c.on('close', () => res(d)); c.on('error', (e) => res(e.code)); });
(async () => console.log(JSON.stringify([await dial(8080), await dial(15021)])))();
`, 10_000);
    assert.deepEqual(JSON.parse(inbound.stdout), ['inbound-captured', 'status'], inbound.stderr);
    const inboundSeen = lines.filter((l) => l.startsWith('{"inbound"')).map((l) => (JSON.parse(l) as { inbound: unknown }).inbound);
    assert.deepEqual(inboundSeen, [{ address: '10.98.0.1', port: 8080, redirected: true }]);

    // The proxy's own connections (gid 1337) leave uncaptured: nothing listens on 10.99.0.1:9.
    proxy.stdin!.write('go\n');
    const self = await new Promise<string>((resolve) => {
      const check = () => {
        const l = lines.find((x) => x.startsWith('{"self"'));
        if (l) resolve((JSON.parse(l) as { self: string }).self);
        else setTimeout(check, 10);
      };
      check();
    });
    assert.equal(self, 'ECONNREFUSED');

    const { stdout: rules } = await run('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-S']);
    assert.match(rules, /-A CROSSMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN/);
    assert.equal(capture.ipv6.captured, true, 'the namespace has IPv6, so ip6tables mirrors the rules');
    const { stdout: rules6 } = await run('ip', ['netns', 'exec', ns, 'ip6tables', '-t', 'nat', '-S']);
    assert.match(rules6, /-A CROSSMESH_OUTPUT -d ::1\/128 -j RETURN/);
    assert.match(rules, /-A CROSSMESH_INBOUND -p tcp -m tcp --dport 15000:15099 -j RETURN/);
    assert.match(rules, /-A PREROUTING -p tcp -j CROSSMESH_INBOUND/);
    await capture.remove();
    const { stdout: after } = await run('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-S']);
    assert.doesNotMatch(after, /CROSSMESH/);
    const { stdout: after6 } = await run('ip', ['netns', 'exec', ns, 'ip6tables', '-t', 'nat', '-S']);
    assert.doesNotMatch(after6, /CROSSMESH/);
  } finally {
    proxy?.kill('SIGKILL');
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await run('ip', ['netns', 'del', peer]).catch(() => undefined);
    await rm(etc, { recursive: true, force: true });
    const { stdout } = await run('ip', ['netns', 'list']);
    assert.ok(!stdout.includes(ns) && !stdout.includes(peer), 'namespaces removed');
  }
});

test('a namespace with IPv6 switched off is captured IPv4-only, said in one log line, and cleaned up', { skip: skipReason() }, async () => {
  const ns = testPrefix('no6');
  const warnings: string[] = [];
  const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
  try {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['netns', 'exec', ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6']);
    const capture = await installCapture({ netns: ns, proxyGid: PROXY_GID, logger });
    assert.deepEqual(capture.ipv6, { captured: false, reason: 'IPv6 is disabled in this network namespace (net.ipv6.conf.all.disable_ipv6=1)' });
    assert.deepEqual(warnings, ['IPv6 is not captured (IPv4 only): IPv6 is disabled in this network namespace (net.ipv6.conf.all.disable_ipv6=1)']);
    const { stdout: v4 } = await run('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-S']);
    assert.match(v4, /-A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001/);
    const { stdout: v6 } = await run('ip', ['netns', 'exec', ns, 'ip6tables', '-t', 'nat', '-S']);
    assert.doesNotMatch(v6, /CROSSMESH/);
    await capture.remove();
    const { stdout: after } = await run('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', '-S']);
    assert.doesNotMatch(after, /CROSSMESH/);
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
});
