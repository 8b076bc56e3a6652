import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { createFileStore } from '../src/controlplane/store/index.js';
import { expectedAfter } from './helpers/store-crash-ops.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'store-child.js');
const root = mkdtempSync(join(tmpdir(), 'crossmesh-store-crash-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs the child until it has acknowledged `acks` more transactions, then SIGKILLs it mid-stream. */
function runAndKill(dir: string, acks: number, compactBytes: number, concurrency: number): Promise<{ lastAck: number; ready: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(compactBytes), String(concurrency)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let lastAck = -1;
    let ready = -1;
    let count = 0;
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [word, num] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (word === 'ready') ready = Number(num);
        if (word === 'ack') {
          lastAck = Math.max(lastAck, Number(num));
          if (++count === acks) p.kill('SIGKILL');
        }
      }
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} ${signal}: ${stderr}`));
      else resolve({ lastAck, ready });
    });
  });
}

it('every acknowledged transaction survives kill -9, repeatedly, with compaction and group commit in the mix', async () => {
  const dir = join(root, 'data');
  let lastRecovered = 0;
  for (const [round, acks] of [40, 90, 7, 150, 60].entries()) {
    const { lastAck, ready } = await runAndKill(dir, acks, round % 2 === 0 ? 3000 : 64 * 1024, round % 3 === 1 ? 1 : 8);
    assert.equal(ready, lastRecovered, 'the child reopened exactly what the test recovered');
    const store = await createFileStore({ dir });
    try {
      const rev = store.revision();
      assert.ok(rev >= lastAck, `round ${round}: recovered revision ${rev} < acknowledged ${lastAck}`);
      const items = store.list('ServiceEntry', 'crash').items;
      const actual = new Map(items.map((o) => [o.metadata.name, (o.spec as { n: number }).n]));
      assert.deepEqual(actual, expectedAfter(rev), `round ${round}: state is exactly the first ${rev} transactions`);
      for (const o of items) assert.ok(Number(o.metadata.resourceVersion) <= rev);
      lastRecovered = rev;
    } finally {
      await store.close();
    }
  }
});
