#!/usr/bin/env node
// Runs the compiled test files with node's test runner.
//   node scripts/run-tests.js [--only unit|e2e] [filter…]
// unit: tests next to the code (dist/src) and cross-component tests (dist/test) outside test/e2e.
// e2e: the lab scenarios under dist/test/e2e. Without --only, both run.
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

const files = walk('dist', [])
  .filter((f) => {
    const e2e = relative('dist', f).startsWith(join('test', 'e2e'));
    return only === 'all' || (only === 'e2e' ? e2e : !e2e);
  })
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found under dist/ (did the build run?)');
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
