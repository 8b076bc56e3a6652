import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { runCli } from './helpers/cli.js';

const valid = fileURLToPath(new URL('../../test/fixtures/valid/', import.meta.url));
const invalid = fileURLToPath(new URL('../../test/fixtures/invalid/', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/crossmesh.js', import.meta.url));

interface Report {
  valid: boolean;
  files: string[];
  resources: Array<{ file: string; kind: string; apiVersion: string; namespace?: string; name: string }>;
  problems: Array<{ file?: string; resource?: string; path?: string; message: string }>;
}

test('each valid fixture is accepted on its own, with a summary counting its resources', async () => {
  const counts: Record<string, number> = {
    'helloworld.yaml': 3,
    'sleep.yaml': 3,
    'httpbin.json': 3,
    'expose-services.yaml': 1,
    'helloworld-routing.yaml': 2,
    'remote-secret.yaml': 1,
    'mesh.yaml': 4,
    'external.yaml': 3,
  };
  for (const [file, n] of Object.entries(counts)) {
    const r = await runCli(['validate', '-f', file], { cwd: valid });
    assert.equal(r.stderr, '', file);
    assert.equal(r.code, 0, file);
    assert.equal(r.stdout, `${n} resource${n === 1 ? '' : 's'} in 1 file ${n === 1 ? 'is' : 'are'} valid\n`);
  }
});

test('the valid directory is read recursively, files sorted, and every kind the issue names is present', async () => {
  const r = await runCli(['validate', '-f', '.', '-o', 'json'], { cwd: valid });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.valid, true);
  assert.ok(report.files.includes(join('topology', 'two-networks.yaml')));
  const topLevel = readdirSync(valid).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  assert.deepEqual(report.files.filter((f) => !f.includes('/')), topLevel);
  const kinds = new Set(report.resources.map((x) => x.kind));
  for (const k of ['Namespace', 'Service', 'ServiceAccount', 'Secret', 'Deployment', 'VirtualService', 'DestinationRule', 'Gateway', 'ServiceEntry', 'WorkloadEntry', 'WorkloadGroup', 'PeerAuthentication', 'AuthorizationPolicy', 'MeshConfig', 'Topology']) {
    assert.ok(kinds.has(k), `no ${k} among the valid fixtures`);
  }
  // Omitted namespaces default to "default"; cluster-scoped kinds have none.
  assert.equal(report.resources.find((x) => x.kind === 'Deployment' && x.name === 'sleep')?.namespace, 'default');
  assert.equal(report.resources.find((x) => x.kind === 'Namespace')?.namespace, undefined);
});

test('the issue\'s example: a weight out of range is reported exactly as documented', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossmesh-validate-'));
  try {
    const routing = readFileSync(join(valid, 'helloworld-routing.yaml'), 'utf8').replace('weight: 10', 'weight: 101');
    writeFileSync(join(dir, 'vs.yaml'), routing);
    const r = await runCli(['validate', '-f', 'vs.yaml'], { cwd: dir });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.ok(lines.includes('vs.yaml: VirtualService/sample/helloworld: spec.http[1].route[1].weight: must be an integer 0..100'), r.stderr);
    assert.ok(lines.includes('vs.yaml: VirtualService/sample/helloworld: spec.http[1].route: weights must sum to 100 (got 191)'), r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-f and --filename repeat, and - reads stdin', async () => {
  const stdin = readFileSync(join(valid, 'expose-services.yaml'), 'utf8');
  const r = await runCli(['validate', '-f', 'helloworld.yaml', '--filename', 'sleep.yaml', '-f', '-'], { cwd: valid, stdin });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '7 resources in 3 files are valid\n');
  const bad = await runCli(['validate', '-f', '-'], { stdin: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad}\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^<stdin>: Namespace\/Bad: metadata\.name: must be a DNS-1123 label/);
});

test('problems from several files are all reported, in the order the files were given', async () => {
  const r = await runCli(['validate', '-f', 'vs-weight-sum.yaml', '-f', 'missing.yaml', '-f', 'dr-missing-host.yaml'], { cwd: invalid });
  assert.equal(r.code, 1);
  assert.deepEqual(r.stderr.trim().split('\n'), [
    'vs-weight-sum.yaml: VirtualService/sample/helloworld: spec.http[0].route: weights must sum to 100 (got 95)',
    'missing.yaml: no such file or directory',
    'dr-missing-host.yaml: DestinationRule/sample/helloworld: spec.host: required',
  ]);
});

test('--output json and yaml describe problems as data (and stderr still lists them)', async () => {
  const json = await runCli(['validate', '-f', 'vs-unknown-field.yaml', '-o', 'json'], { cwd: invalid });
  assert.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as Report;
  assert.equal(report.valid, false);
  assert.deepEqual(report.problems, [
    {
      file: 'vs-unknown-field.yaml',
      resource: 'VirtualService/sample/helloworld',
      path: 'spec.http[0].route[0].weigth',
      message: 'unknown field "weigth" (did you mean "weight"?)',
    },
  ]);
  assert.equal(json.stderr.trim().split('\n').length, 1);
  const yaml = await runCli(['validate', '-f', 'mesh.yaml', '--output', 'yaml'], { cwd: valid });
  assert.equal(yaml.code, 0);
  const data = parseYaml(yaml.stdout) as Report;
  assert.deepEqual(
    data.resources.map((x) => x.kind),
    ['Namespace', 'MeshConfig', 'PeerAuthentication', 'AuthorizationPolicy'],
  );
});

test('usage mistakes exit 2; empty input exits 1', async () => {
  const none = await runCli(['validate']);
  assert.equal(none.code, 2);
  assert.equal(none.stderr, 'crossmesh: validate: at least one -f/--filename is required\n');
  const badOutput = await runCli(['validate', '-f', 'x', '-o', 'xml']);
  assert.equal(badOutput.code, 2);
  const empty = await runCli(['validate', '-f', '-'], { stdin: '# nothing here\n---\n' });
  assert.equal(empty.code, 1);
  assert.equal(empty.stderr, 'no resources found in the input\n');
});

test('the real binary exits 0 for valid input and 1 with one line per problem, never a stack trace', async () => {
  const ok = await runBin(['validate', '-f', valid]);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /^\d+ resources in \d+ files are valid\n$/);
  const bad = await runBin(['validate', '-f', invalid]);
  assert.equal(bad.code, 1);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
  for (const line of bad.stderr.trim().split('\n')) assert.ok(line.startsWith(invalid), line);
});

function runBin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
