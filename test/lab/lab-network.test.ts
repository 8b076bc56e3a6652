import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { createLabNetwork, destroyLabNamespaces } from '../../src/lab/netns/index.js';
import { canUseNetns, connectScript, nodeIn, startNodeIn, testPrefix } from '../helpers/netns.js';

const listen = (port: number) => `require('net').createServer(s=>{s.on('error',()=>{});s.end('hi')}).listen(${port},'0.0.0.0',()=>console.log('ready'))`;

test('lab network: same network reaches directly, other networks only through public addresses, destroy leaves nothing', { skip: !canUseNetns() && 'needs root and ip netns' }, async () => {
  const prefix = testPrefix('ln');
  // Its own internet segment (TEST-NET-3), so a lab started by another test at the same time cannot collide.
  const lab = await createLabNetwork({ prefix, hostAccess: true, internetPrefix: '203.0.113' });
  const servers: Array<{ kill(signal?: NodeJS.Signals): boolean }> = [];
  try {
    await lab.addNetwork('vpc-1');
    await lab.addNetwork('vpc-2');
    const a1 = await lab.addHost('a1', 'vpc-1');
    const a2 = await lab.addHost('a2', 'vpc-1');
    const b1 = await lab.addHost('b1', 'vpc-2');
    const gw2 = await lab.addHost('gw2', 'vpc-2', { publicAddress: true });
    assert.ok(gw2.publicAddress);

    for (const h of [a2, b1, gw2]) servers.push(await startNodeIn(h.namespace, listen(7000)));

    const from = async (ns: string, host: string) => (await nodeIn(ns, connectScript(host, 7000))).stdout.trim();
    assert.equal(await from(a1.namespace, a2.address), 'ok', 'same network, private address');
    assert.notEqual(await from(a1.namespace, b1.address), 'ok', 'another network, private address');
    assert.notEqual(await from(a1.namespace, gw2.address), 'ok', "the gateway's private address");
    assert.equal(await from(a1.namespace, gw2.publicAddress!), 'ok', "the gateway's public address");
    assert.equal(await from(b1.namespace, gw2.address), 'ok', 'the gateway from its own network');
    const fromHost = await new Promise<string>((resolve) => {
      const sock = connect(7000, gw2.publicAddress!);
      sock.setTimeout(1500, () => { sock.destroy(); resolve('ETIMEDOUT'); });
      sock.on('connect', () => { sock.destroy(); resolve('ok'); });
      sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(fromHost, 'ok', "the machine itself reaches the gateway's public address");
  } finally {
    for (const s of servers) s.kill('SIGKILL');
    await lab.destroy();
  }
  const left = execFileSync('ip', ['netns', 'list']).toString();
  assert.ok(!left.includes(prefix), `namespaces left behind: ${left}`);
  // The kernel tears a deleted namespace down asynchronously; its veth pair goes with it shortly after.
  const veth = `h${prefix}`.slice(0, 15);
  for (let i = 0; i < 40 && execFileSync('ip', ['-o', 'link']).toString().includes(veth); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!execFileSync('ip', ['-o', 'link']).toString().includes(veth), 'host veth removed with the lab');
});

test('lab network: destroy also removes namespaces a crashed run left behind', { skip: !canUseNetns() && 'needs root and ip netns' }, async () => {
  const prefix = testPrefix('lc');
  execFileSync('ip', ['netns', 'add', `${prefix}-orphan`]);
  const removed = await destroyLabNamespaces(prefix);
  assert.deepEqual(removed, [`${prefix}-orphan`]);
  assert.ok(!execFileSync('ip', ['netns', 'list']).toString().includes(prefix));
});
