#!/usr/bin/env node
// Builds native/original_dst.cc (the SO_ORIGINAL_DST addon transparent capture needs) at install time.
// Never fails the install: without a compiler or headers crossmesh still works, only transparent capture
// reports that the addon is missing. Order: node-gyp (bundled with npm) against local headers when they
// exist, then a direct g++ call (N-API needs no link step against node), then give up with a warning.
//   CROSSMESH_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'Release', 'original_dst.node');
const say = (msg) => process.stderr.write(`crossmesh native: ${msg}\n`);

if (process.platform !== 'linux') {
  say(`skipped on ${process.platform}: original-destination recovery exists only on Linux`);
  process.exit(0);
}
if (process.env.CROSSMESH_SKIP_NATIVE === '1') {
  say('skipped (CROSSMESH_SKIP_NATIVE=1)');
  process.exit(0);
}

/** Directories shaped like a node install prefix, i.e. holding include/node/node_api.h. */
function localNodeDir() {
  const candidates = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..'), '/usr', '/usr/local'];
  return candidates.find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
}

function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

const nodedir = localNodeDir();
const gyp = nodeGypScript();
const failures = [];
if (gyp) {
  const r = run(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])]);
  if (r.ok && existsSync(out)) {
    say(`built ${out} with node-gyp`);
    process.exit(0);
  }
  failures.push(`node-gyp: ${r.output.split('\n').slice(-3).join(' | ')}`);
} else {
  failures.push('node-gyp: not found next to npm');
}
if (nodedir) {
  mkdirSync(dirname(out), { recursive: true });
  const cxx = process.env.CXX || 'g++';
  const r = run(cxx, ['-shared', '-fPIC', '-O2', '-DNAPI_VERSION=3', '-DNODE_GYP_MODULE_NAME=original_dst',
    `-I${join(nodedir, 'include', 'node')}`, join(root, 'native', 'original_dst.cc'), '-o', out]);
  if (r.ok) {
    say(`built ${out} with ${cxx}`);
    process.exit(0);
  }
  failures.push(`${cxx}: ${r.output.split('\n').slice(-3).join(' | ')}`);
} else {
  failures.push('no local node headers (include/node/node_api.h) for a direct compile');
}
say('could not build the original-destination addon; transparent capture (iptables REDIRECT) will be unavailable.');
for (const f of failures) say(`  ${f}`);
process.exit(0);
