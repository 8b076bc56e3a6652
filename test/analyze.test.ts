import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/mesh.js';

const fixtures = new URL('../../test/fixtures/valid/', import.meta.url).pathname;

test('crossmesh analyze: the valid samples are clean; a missing subset is an error and exits 1', async () => {
  const clean = await runCli(['analyze', '-f', join(fixtures, 'helloworld.yaml')]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.match(clean.stdout, /no problems found in 1 cluster/);

  const dir = tempDir('cm-analyze-');
  try {
    writeFileSync(join(dir.path, 'vs.yaml'), [
      'apiVersion: networking.istio.io/v1', 'kind: VirtualService', 'metadata: {name: hw, namespace: sample}',
      'spec:', '  hosts: [helloworld]', '  http:', '  - route:', '    - destination: {host: helloworld, subset: v9}',
    ].join('\n'));
    const bad = await runCli(['analyze', '-f', join(fixtures, 'helloworld.yaml'), '-f', join(dir.path, 'vs.yaml')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /Error \[IST0101\] \(VirtualService sample\/hw\) cluster-1: Referenced host\+subset in destinationrule not found: "helloworld\.sample\.svc\.cluster\.local\+v9"/);
    const json = await runCli(['analyze', '-f', join(dir.path, 'vs.yaml'), '-o', 'json']);
    assert.ok((JSON.parse(json.stdout) as Array<{ code: string }>).some((f) => f.code === 'IST0101'));
  } finally {
    dir.cleanup();
  }
});

test('crossmesh analyze --cacerts: different roots are reported before traffic fails', async () => {
  const dir = tempDir('cm-analyze-');
  try {
    for (const [root, clusters] of [['root-a', ['c1', 'c2']], ['root-b', ['c3']]] as const) {
      assert.equal((await runCli(['ca', 'root', '--out', join(dir.path, root)])).code, 0);
      for (const c of clusters) assert.equal((await runCli(['ca', 'intermediate', '--root', join(dir.path, root), '--cluster', c, '--out', join(dir.path, c)])).code, 0);
    }
    const shared = await runCli(['analyze', '--cacerts', `c1=${join(dir.path, 'c1')}`, '--cacerts', `c2=${join(dir.path, 'c2')}`]);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    const split = await runCli(['analyze', '--cacerts', `c1=${join(dir.path, 'c1')}`, '--cacerts', `c3=${join(dir.path, 'c3')}`]);
    assert.equal(split.code, 1);
    assert.match(split.stdout, /\[CM0003\].*do not share a root CA/);
  } finally {
    dir.cleanup();
  }
});
