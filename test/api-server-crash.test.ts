import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../src/api/types.js';
import { createKubeClient } from '../src/registry/kube-client/index.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'api-child.js');
const root = mkdtempSync(join(tmpdir(), 'crossmesh-api-crash-'));
const TOKEN = 'crash-test-token';
const running = new Set<ChildProcess>();
after(() => {
  for (const p of running) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function startChild(dir: string): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, dir, TOKEN], { stdio: ['ignore', 'pipe', 'inherit'] });
    running.add(proc);
    proc.on('exit', () => running.delete(proc));
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening (\S+)\n/.exec(buf);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`api child exited early (${code})`)));
  });
}

const pair = (i: number): Resource[] =>
  ['a', 'b'].map((side) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: `item-${i}-${side}`, namespace: 'crash' },
    spec: { hosts: [`item-${i}.example.com`], i },
  }));

it('a control plane killed with kill -9 mid-apply restarts with every acknowledged resource', async () => {
  const dir = join(root, 'data');
  const acked = new Set<number>();
  let next = 0;
  for (let round = 0; round < 3; round++) {
    const { proc, url } = await startChild(dir);
    const client = createKubeClient({ server: url, token: TOKEN });
    const exited = new Promise((r) => proc.once('exit', r));
    const stopAt = acked.size + 30 + round * 20;
    // Four writers keep applies in flight so the kill lands mid-transaction.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (proc.exitCode === null && proc.signalCode === null) {
          const i = next++;
          try {
            await client.apply(pair(i));
            acked.add(i);
            if (acked.size >= stopAt) proc.kill('SIGKILL');
          } catch {
            return; // the server died under this request: not acknowledged
          }
        }
      }),
    );
    await exited;
    client.close();

    const { proc: check, url: url2 } = await startChild(dir);
    const reader = createKubeClient({ server: url2, token: TOKEN });
    try {
      const items = (await reader.list({ apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry' }, { namespace: 'crash' })).items;
      const names = new Set(items.map((o) => o.metadata.name));
      for (const i of acked) assert.ok(names.has(`item-${i}-a`) && names.has(`item-${i}-b`), `acknowledged apply ${i} survived round ${round}`);
      for (let i = 0; i < next; i++) assert.equal(names.has(`item-${i}-a`), names.has(`item-${i}-b`), `apply ${i} is all-or-nothing`);
    } finally {
      reader.close();
      const gone = new Promise((r) => check.once('exit', r));
      check.kill('SIGKILL');
      await gone;
    }
  }
});
