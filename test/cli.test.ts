import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { runCli } from './helpers/cli.js';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

test('version prints the package version as text and as JSON', async () => {
  const text = await runCli(['version']);
  assert.equal(text.code, 0);
  assert.match(text.stdout, new RegExp(`^crossmesh ${pkg.version.replace(/\./g, '\\.')} `));
  const json = await runCli(['version', '--output', 'json']);
  assert.equal(JSON.parse(json.stdout).crossmesh, pkg.version);
});

test('an unknown subcommand is a usage error with exit code 2 and one line on stderr', async () => {
  const r = await runCli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('a bad --output value is a usage error naming the option', async () => {
  const r = await runCli(['version', '--output', 'xml']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'crossmesh: --output: must be one of table, json, yaml (got "xml")\n');
});

test('--help works for the program and every subcommand', async () => {
  const top = await runCli(['--help']);
  assert.equal(top.code, 0);
  const commandsSection = top.stdout.split('Commands:')[1] ?? '';
  const names = [...commandsSection.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  assert.ok(names.includes('version'));
  for (const name of names) {
    const sub = await runCli([name, '--help']);
    assert.equal(sub.code, 0, `${name} --help`);
    assert.match(sub.stdout, new RegExp(`Usage: crossmesh ${name}`));
  }
});

test('the installed bin runs as a real process', async () => {
  const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [bin, 'version', '-o', 'yaml']);
  assert.match(stdout, new RegExp(`crossmesh: ${pkg.version.replace(/\./g, '\\.')}`));
});
