import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../shared/errors.js';
import { loadAndValidate, loadResources, loadSources, loadTopologyManifests } from './load.js';
import { isKind } from './kinds.js';

const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}}\n`;

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossmesh-load-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'directories are read recursively, only .yaml/.yml/.json, in sorted order, named as given',
  withDir(async (dir) => {
    mkdirSync(join(dir, 'm', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'm', 'b.yml'), ns('b'));
    writeFileSync(join(dir, 'm', 'a.yaml'), ns('a'));
    writeFileSync(join(dir, 'm', 'sub', 'c.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'c' } }));
    writeFileSync(join(dir, 'm', 'notes.txt'), 'not yaml: [');
    const r = await loadSources(['m'], { cwd: dir });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.files, ['m/a.yaml', 'm/b.yml', 'm/sub/c.json']);
    assert.deepEqual(r.documents.map((d) => (d.value as { metadata: { name: string } }).metadata.name), ['a', 'b', 'c']);
  }),
);

test(
  'missing paths, empty directories and failing stdin are problems, not exceptions',
  withDir(async (dir) => {
    mkdirSync(join(dir, 'empty'));
    const r = await loadSources(['nope.yaml', 'empty', '-'], {
      cwd: dir,
      readStdin: () => Promise.reject(Object.assign(new Error('boom'), { code: 'EAGAIN' })),
    });
    assert.deepEqual(r.problems, [
      { file: 'nope.yaml', message: 'no such file or directory' },
      { file: 'empty', message: 'no .yaml, .yml or .json files in this directory' },
      { file: '<stdin>', message: 'cannot read: EAGAIN' },
    ]);
  }),
);

test(
  'loadResources returns frozen resources or throws every problem at once',
  withDir(async (dir) => {
    writeFileSync(join(dir, 'ok.yaml'), ns('a') + '---\n' + ns('b'));
    const ok = await loadResources(['ok.yaml'], { cwd: dir });
    assert.equal(ok.length, 2);
    assert.ok(Object.isFrozen(ok[0]));
    writeFileSync(join(dir, 'bad.yaml'), ns('Bad') + '---\n' + ns('a'));
    await assert.rejects(loadResources(['ok.yaml', 'bad.yaml'], { cwd: dir }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.deepEqual(
        err.problems.map((p) => `${p.file}: ${p.resource}: ${p.path}`),
        ['bad.yaml: Namespace/Bad: metadata.name', 'bad.yaml: Namespace/a: metadata.name'],
      );
      return true;
    });
  }),
);

test(
  'a Topology\'s manifest files resolve against its own file and are validated per cluster',
  withDir(async (dir) => {
    mkdirSync(join(dir, 'lab'));
    mkdirSync(join(dir, 'apps'));
    writeFileSync(join(dir, 'apps', 'one.yaml'), ns('one'));
    writeFileSync(
      join(dir, 'lab', 'topo.yaml'),
      [
        'apiVersion: crossmesh.io/v1alpha1',
        'kind: Topology',
        'metadata: {name: t}',
        'spec:',
        '  networks: [{name: n1}]',
        '  clusters:',
        '  - {name: c1, network: n1, locality: r1/z1, manifests: [../apps/one.yaml, {apiVersion: v1, kind: Namespace, metadata: {name: two}}]}',
        '  - {name: c2, network: n1, locality: r2, manifests: [../apps/one.yaml, ../apps/one.yaml]}',
      ].join('\n'),
    );
    const all = await loadAndValidate(['lab/topo.yaml'], { cwd: dir });
    // c2 applies the same file twice: a duplicate within that cluster's apply.
    assert.deepEqual(
      all.problems.map((p) => `${p.file}: ${p.resource}: ${p.path}: ${p.message}`),
      ['apps/one.yaml: Namespace/one: metadata.name: duplicate resource: also defined in apps/one.yaml (document 1)'],
    );
    assert.deepEqual(all.files, ['lab/topo.yaml', 'apps/one.yaml']);
    const topo = all.resources[0]!;
    assert.ok(isKind(topo, 'Topology'));
    const loaded = await loadTopologyManifests(topo, 'lab/topo.yaml', { cwd: dir });
    assert.deepEqual(
      [...loaded.clusters].map(([c, rs]) => `${c}: ${rs.map((r) => r.metadata.name).join(',')}`),
      ['c1: two,one', 'c2: one,one'],
    );
  }),
);
