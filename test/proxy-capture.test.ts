import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { originalDestination, originalDstSupport } from '../src/proxy/capture/index.js';

const run = promisify(execFile);
const support = originalDstSupport();

function netnsCapable(): string | undefined {
  if (!support.ok) return support.reason;
  if (process.getuid?.() !== 0) return 'needs root for ip netns and iptables';
  for (const tool of ['ip', 'iptables', 'ip6tables']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

test('on a plain loopback connection the result is a value: not redirected, or the local address itself', { skip: support.ok ? false : support.reason }, async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const s = await accepted;
    const r = originalDestination(s);
    if (r.ok) {
      assert.equal(r.redirected, false);
      assert.equal(r.port, s.localPort);
    } else {
      assert.equal(r.error, 'not-redirected');
    }
    s.destroy();
    client.destroy();
    await new Promise((res) => s.once('close', res));
    const closed = originalDestination(s);
    assert.ok(!closed.ok && closed.error === 'no-fd');
  } finally {
    server.close();
  }
});

// Inside the namespace: a dual-stack listener on 15001 (the sidecar's outbound capture port), and clients
// dialling addresses that only iptables REDIRECT sends there; the listener reports what it recovered.
const childScript = (moduleUrl: string): string => `
import net from 'node:net';
import { originalDestination } from ${JSON.stringify(moduleUrl)};
const results = [];
const server = net.createServer((s) => { results.push({ local: s.localAddress, r: originalDestination(s) }); s.end(); });
server.listen(15001, '::', async () => {
  for (const [host, port] of [['10.99.0.1', 80], ['10.99.0.1', 8080], ['fd00::99', 5000]]) {
    await new Promise((res, rej) => { const c = net.connect(port, host); c.on('close', res); c.on('error', rej); c.resume(); });
  }
  while (results.length < 3) await new Promise((r) => setTimeout(r, 5));
  process.stdout.write(JSON.stringify(results));
  server.close();
});
`;

test('inside a network namespace, iptables REDIRECT to 15001 and the original destination comes back', { skip: netnsCapable() ?? false }, async () => {
  const ns = `cm-capture-${process.pid}`;
  const inNs = (cmd: string, ...args: string[]) => run('ip', ['netns', 'exec', ns, cmd, ...args]);
  await run('ip', ['netns', 'add', ns]);
  try {
    await inNs('ip', 'link', 'set', 'lo', 'up');
    await inNs('ip', 'addr', 'add', '10.99.0.1/32', 'dev', 'lo');
    await inNs('ip', '-6', 'addr', 'add', 'fd00::99/128', 'dev', 'lo', 'nodad');
    await inNs('iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.99.0.1', '-j', 'REDIRECT', '--to-ports', '15001');
    await inNs('ip6tables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', 'fd00::99', '-j', 'REDIRECT', '--to-ports', '15001');
    const moduleUrl = new URL('../src/proxy/capture/index.js', import.meta.url).href;
    const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', childScript(moduleUrl)], { timeout: 15_000 });
    const results = JSON.parse(stdout) as { local: string; r: { ok: boolean; address?: string; port?: number; family?: number; redirected?: boolean } }[];
    assert.deepEqual(
      results.map((x) => x.r),
      [
        { ok: true, address: '10.99.0.1', port: 80, family: 4, redirected: true },
        { ok: true, address: '10.99.0.1', port: 8080, family: 4, redirected: true },
        { ok: true, address: 'fd00::99', port: 5000, family: 6, redirected: true },
      ],
    );
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
  const { stdout } = await run('ip', ['netns', 'list']);
  assert.ok(!stdout.includes(ns), 'the namespace is gone');
});
