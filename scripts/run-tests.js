#!/usr/bin/env node
// Runs the compiled test files with node's test runner.
//   node scripts/run-tests.js [--only unit|e2e] [filter…]
// unit: tests next to the code (dist/src) and cross-component tests (dist/test) outside test/e2e, two files
// at a time. e2e: the lab scenarios under dist/test/e2e, one file at a time: every lab uses the same fixed
// addresses (loopback 127.x, the netns lab's segment for the machine), so two labs must never overlap.
// Without --only, unit tests run first, then e2e.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
let only = 'all';
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = args[++i];
  else filters.push(args[i]);
}

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const isE2e = (f) => relative('dist', f).startsWith(join('test', 'e2e'));
const files = walk('dist', [])
  .filter((f) => only === 'all' || (only === 'e2e' ? isE2e(f) : !isE2e(f)))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found under dist/ (did the build run?)');
  process.exit(1);
}

function run(batch, concurrency) {
  if (batch.length === 0) return 0;
  const result = spawnSync(
    process.execPath,
    ['--enable-source-maps', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...batch],
    { stdio: 'inherit' },
  );
  return result.status ?? 1;
}

const unitStatus = run(files.filter((f) => !isE2e(f)), 2);
const e2eStatus = run(files.filter(isE2e), 1);
process.exit(unitStatus || e2eStatus);
