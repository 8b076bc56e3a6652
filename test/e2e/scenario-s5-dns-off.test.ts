import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { canUseNetns } from '../helpers/netns.js';
import { crossmesh, labFixture, labStatus } from './lab-helpers.js';

const examples = new URL('../../../examples/', import.meta.url).pathname;

function inPod(netns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('ip', ['netns', 'exec', netns, ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr })),
  );
}

// With DNS capture on, the same call answers 418 (scenarios-netns.test.ts, S5).
test('S5 with the DNS proxy off: httpbin exists only in ack-2, so sleep in ack-1 cannot resolve it (curl exit 6); port 53 is not captured', { skip: !canUseNetns() && 'needs root, ip and iptables' }, async () => {
  const lab = labFixture();
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--isolation', 'netns', '--topology', join(examples, 's5-mesh-proxy', 'topology-dns-off.yaml')]);
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    const status = await labStatus(lab.dir);
    const sleep = status.pods.find((p) => p.app === 'sleep')!;

    const call = await inPod(sleep.netns!, ['curl', '-sS', '-m', '20', 'http://httpbin:8000/status/418']);
    assert.equal(call.code, 6, `curl exit code (6: could not resolve host): ${call.code} ${call.stderr}`);
    assert.match(call.stderr, /Could not resolve host: httpbin/);

    const rules = await inPod(sleep.netns!, ['iptables', '-t', 'nat', '-S']);
    assert.match(rules.stdout, /-A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001/, 'TCP is still captured');
    assert.doesNotMatch(rules.stdout, /--dport 53/, 'DNS is not redirected to 15053');
    const dnsProxy = await inPod(sleep.netns!, ['ss', '-Hlun', 'sport = :15053']);
    assert.equal(dnsProxy.code, 0, dnsProxy.stderr);
    assert.equal(dnsProxy.stdout.trim(), '', 'no DNS proxy listens');
  } finally {
    await lab.cleanup();
  }
});
