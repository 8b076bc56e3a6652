import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { canUseNetns } from '../helpers/netns.js';
import { accessLog, crossmesh, eventually, labFixture, labStatus, processesOf } from './lab-helpers.js';

/** The system's curl inside a pod's network namespace: status code and body. */
function curl(netns: string, url: string): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', netns, 'curl', '-sS', '-m', '5', '-w', '\n%{http_code}', url], (err, stdout, stderr) => {
      const lines = stdout.split('\n');
      const status = Number(lines.pop());
      resolve({ status, body: lines.join('\n'), ...(err ? { error: stderr.trim() } : {}) });
    });
  });
}

/**
 * Scenarios S2 and S5 in netns isolation: two clusters on two networks, every pod a network namespace,
 * traffic captured by iptables and names resolved by the sidecar, so the system's real curl is the client.
 */
test('default lab, netns: captured curl across networks through east-west gateways; networks separate; gateway refuses plaintext and non-mesh TLS; remote-only httpbin; down removes every namespace', { skip: !canUseNetns() && 'needs root, ip and iptables' }, async () => {
  const lab = labFixture();
  let prefix = '';
  try {
    const up = await crossmesh(lab.dir, ['up', '-d', '--isolation', 'netns']);
    assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
    prefix = (JSON.parse(readFileSync(join(lab.dir, 'lab.json'), 'utf8')) as { netnsPrefix: string }).netnsPrefix;
    const status = await labStatus(lab.dir);
    const pod = (cluster: string, app: string) => status.pods.find((p) => p.cluster === cluster && p.app === app)!;
    const sleep1 = pod('cluster-1', 'sleep');
    const hw2 = pod('cluster-2', 'helloworld');
    const gw2 = status.gateways.find((g) => g.cluster === 'cluster-2')!;
    const [host, port] = gw2.address.split(':');
    assert.ok(sleep1.netns, 'pods live in network namespaces');

    // S2: the same call from an unmodified client reaches both clusters.
    const replies = await Promise.all(Array.from({ length: 20 }, () => curl(sleep1.netns!, 'http://helloworld.sample:5000/hello')));
    assert.ok(replies.every((r) => r.status === 200), JSON.stringify(replies.filter((r) => r.status !== 200)));
    assert.ok(replies.some((r) => r.body.includes('version: v1')) && replies.some((r) => r.body.includes('version: v2')), 'both versions answer');

    // Networks really are separate: cluster-2's pod address is unreachable from cluster-1.
    const direct = await curl(sleep1.netns!, `http://${hw2.ip}:5000/hello`);
    assert.notEqual(direct.status, 200, `direct cross-network call must fail, got ${direct.status} ${direct.body}`);

    // The gateway refuses plaintext, and TLS from a client without a mesh certificate never reaches the app.
    // The client is the machine itself, on the segment where gateways have their public addresses (a pod's
    // own curl would be captured by its sidecar and never reach the gateway as plaintext).
    const plaintext = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile('curl', ['-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${gw2.address}/hello`], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr })),
    );
    assert.equal(plaintext.stdout, '000', `plaintext to 15443 gets no HTTP answer: ${JSON.stringify(plaintext)}`);
    assert.match(plaintext.stderr, /Empty reply from server|Connection reset by peer|Recv failure/);
    // … and logged by the gateway, as `crossmesh lab logs` shows it: an access-log line with NR and no SNI.
    const gwLogs = async () => (await crossmesh(lab.dir, ['lab', 'logs', `cluster-2/${gw2.name}`])).stdout;
    const refusal = await eventually(async () => {
      const lines = (await gwLogs()).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      return lines.find((l) => l.response_flags === 'NR' && 'requested_server_name' in l && !l.requested_server_name);
    }, 10_000);
    assert.ok(refusal, `the gateway logged the plaintext connection:\n${await gwLogs()}`);
    assert.equal(refusal.upstream_host, null);
    assert.equal(refusal.downstream_local_address.split(':').pop(), port);
    const tlsOutcome = await new Promise<string>((resolve) => {
      const s = tls.connect({ host, port: Number(port), servername: 'outbound_.5000_._.helloworld.sample.svc.cluster.local', rejectUnauthorized: false, ALPNProtocols: ['istio'] });
      s.setTimeout(5000, () => (s.destroy(), resolve('timeout')));
      s.on('secureConnect', () => {
        s.write('GET /hello HTTP/1.1\r\nHost: helloworld\r\n\r\n');
        s.once('data', (d) => (s.destroy(), resolve(`answered: ${d.toString().slice(0, 40)}`)));
      });
      s.on('error', (e) => resolve(`refused: ${e.message}`));
      s.on('close', () => resolve('closed'));
    });
    assert.doesNotMatch(tlsOutcome, /answered: HTTP\/1.1 200/, `non-mesh TLS through the gateway: ${tlsOutcome}`);

    // S5: httpbin exists only in cluster-2; the DNS proxy answers for it and the teapot comes back.
    const teapot = await curl(sleep1.netns!, 'http://httpbin.sample:8000/status/418');
    assert.equal(teapot.status, 418);
    assert.match(teapot.body, /teapot/);
    const clientLog = await accessLog(join(lab.dir, 'logs', `cluster-1.${sleep1.name}.proxy.log.access`), (lines) => lines.some((l) => l.path === '/status/418'));
    const line = clientLog.find((l) => l.path === '/status/418');
    assert.ok(line, 'client sidecar logged the request');
    assert.equal(line.upstream_host, gw2.address);
    assert.equal(line.upstream_cluster, 'outbound|8000||httpbin.sample.svc.cluster.local');
    assert.equal(line.response_code, 418);
    assert.equal(line.method, 'GET');

    // The gateway logs a connection when it closes: stop the client pod, then read the gateway's line.
    assert.equal((await crossmesh(lab.dir, ['lab', 'kill', `cluster-1/${sleep1.name}`])).code, 0);
    const httpbin = pod('cluster-2', 'httpbin');
    const gwLine = await eventually(async () => {
      const text = readFileSync(join(lab.dir, 'logs', `cluster-2.${gw2.name}.proxy.log.access`), 'utf8');
      return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.requested_server_name === 'outbound_.8000_._.httpbin.sample.svc.cluster.local');
    }, 15_000);
    assert.ok(gwLine, 'gateway logged the httpbin connection');
    assert.equal(gwLine.upstream_host, `${httpbin.ip}:80`);

    const down = await crossmesh(lab.dir, ['down']);
    assert.equal(down.code, 0);
    assert.deepEqual(await processesOf(lab.dir), []);
    assert.ok(!execFileSync('ip', ['netns', 'list']).toString().includes(prefix), 'no namespace left');
  } finally {
    await lab.cleanup();
    if (prefix) assert.ok(!execFileSync('ip', ['netns', 'list']).toString().includes(prefix));
  }
});
