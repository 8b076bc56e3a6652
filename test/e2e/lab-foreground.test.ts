import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, labFixture, processesOf } from './lab-helpers.js';

const samples = new URL('../../../examples/samples/', import.meta.url).pathname;

test('crossmesh up in the foreground: Ctrl-C (SIGINT) stops the mesh and leaves no process and no file', async () => {
  const lab = labFixture();
  try {
    const topology = join(lab.dir, 'topology.yaml');
    writeFileSync(topology, [
      'apiVersion: crossmesh.io/v1alpha1', 'kind: Topology', 'metadata: {name: tiny}', 'spec:', '  networks: [{name: n1}]', '  clusters:',
      '  - name: cluster-1', '    network: n1', '    locality: r1/z1', `    manifests: [${join(samples, 'helloworld-v1.yaml')}, ${join(samples, 'sleep.yaml')}]`,
      '  checks:', '  - name: hello', '    from: {cluster: cluster-1, namespace: sample, deployment: sleep}', '    request: {url: "http://helloworld.sample:5000/hello"}', '    expect: {status: 200}',
    ].join('\n'));
    const labDir = join(lab.dir, 'state');
    const child = spawn(process.execPath, [BIN, 'up', '--topology', topology], { env: { ...process.env, CROSSMESH_LAB_DIR: labDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 120 && !out.includes('press Ctrl-C'); i++) await new Promise((r) => setTimeout(r, 500));
    assert.match(out, /check "hello"[^]*ok\n/, out);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
    assert.deepEqual(await processesOf(labDir), []);
    assert.ok(!existsSync(labDir) || readdirSync(labDir).length === 0, `left in the lab directory: ${existsSync(labDir) ? readdirSync(labDir).join(', ') : ''}`);
  } finally {
    await lab.cleanup();
  }
});
