import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSupervisor, isProcessAlive as isAlive, readProcessState, stopRecordedProcesses } from './supervisor.js';

test('supervisor: starts, logs, records and stops processes with their children', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-sup-'));
  try {
    const sup = createSupervisor({ stateDir: dir });
    // The parent starts a grandchild; stopping the parent's group must stop both.
    const script = `console.log('hello from ' + process.pid); const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], {stdio:'ignore'}); console.log('child ' + c.pid); setInterval(()=>{},1000)`;
    const p = sup.start({ name: 'c1/app', command: process.execPath, args: ['-e', script], logFile: join(dir, 'app.log') });
    let log = '';
    for (let i = 0; i < 100 && !log.includes('child '); i++) {
      await new Promise((r) => setTimeout(r, 20));
      log = readFileSync(join(dir, 'app.log'), 'utf8');
    }
    const grandchild = Number(/child (\d+)/.exec(log)![1]);
    assert.match(log, new RegExp(`hello from ${p.record.pid}`));
    assert.deepEqual(readProcessState(dir).map((r) => r.name), ['c1/app']);
    await sup.stop('c1/app');
    assert.equal(isAlive(p.record.pid), false);
    for (let i = 0; i < 50 && isAlive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(isAlive(grandchild), false, 'grandchild stopped with its group');
    assert.deepEqual(readProcessState(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('supervisor: another process stops recorded processes, escalating to SIGKILL for ones ignoring SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-sup-'));
  try {
    const sup = createSupervisor({ stateDir: dir });
    const stubborn = sup.start({ name: 'stubborn', command: process.execPath, args: ['-e', "process.on('SIGTERM',()=>{}); setInterval(()=>{},1000)"], logFile: join(dir, 's.log') });
    await new Promise((r) => setTimeout(r, 300));
    const stopped = await stopRecordedProcesses(dir, 300);
    assert.equal(stopped, 1);
    assert.ok(['SIGKILL', 137].includes(await stubborn.exited as never));
    assert.deepEqual(readProcessState(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
