import { copyFileSync, existsSync, symlinkSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createFileStore, StoreCorruptError, StoreLockedError } from '../src/controlplane/store/index.js';
import type { FileStore } from '../src/controlplane/store/index.js';
import { createLogger } from '../src/shared/log.js';
import { svc } from './helpers/store-contract.js';
import { fakeClock } from './helpers/fake-clock.js';

const root = mkdtempSync(join(tmpdir(), 'crossmesh-store-file-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ json: true, write: (l) => lines.push(l) }) };
}

/** A store with `count` single-object transactions, closed; returns its dir and the log's record end offsets. */
async function seeded(count: number): Promise<{ dir: string; ends: number[] }> {
  const dir = join(root, `d${n++}`);
  const store = await createFileStore({ dir });
  const ends: number[] = [];
  for (let i = 1; i <= count; i++) {
    await store.apply([svc(`s${i}`, 'default', { i: String(i) })]);
    ends.push(store.logBytes());
  }
  await store.close();
  return { dir, ends };
}

async function reopen(dir: string, logger = capture().logger): Promise<FileStore> {
  return createFileStore({ dir, logger });
}

const names = (s: FileStore): string[] => s.list('Service').items.map((o) => o.metadata.name).sort();

describe('file store recovery', () => {
  it('keeps state across a clean reopen, including watch history since the snapshot', async () => {
    const { dir } = await seeded(3);
    const s = await reopen(dir);
    try {
      assert.equal(s.revision(), 3);
      assert.deepEqual(names(s), ['s1', 's2', 's3']);
      const seen: number[] = [];
      s.watch(0, (e) => seen.push(e.revision)).cancel();
      assert.deepEqual(seen, [1, 2, 3]);
    } finally {
      await s.close();
    }
  });

  it('a torn tail record is logged with its offset, truncated, and writing continues after it', async () => {
    const { dir, ends } = await seeded(5);
    const log = join(dir, 'wal.log');
    truncateSync(log, ends[4]! - 7);
    const cap = capture();
    let s = await reopen(dir, cap.logger);
    assert.equal(s.revision(), 4);
    assert.deepEqual(names(s), ['s1', 's2', 's3', 's4']);
    const warn = cap.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === 'warn');
    assert.ok(warn, 'the torn tail is reported');
    assert.equal(warn.offset, ends[3]);
    assert.match(String(warn.reason), /torn record/);
    assert.equal(statSync(log).size, ends[3]);
    await s.apply([svc('after')]);
    await s.close();
    s = await reopen(dir);
    assert.equal(s.revision(), 5);
    assert.deepEqual(names(s), ['after', 's1', 's2', 's3', 's4']);
    await s.close();
  });

  it('a torn record header (a few bytes of the next record) is dropped', async () => {
    const { dir, ends } = await seeded(2);
    appendFileSync(join(dir, 'wal.log'), Buffer.from([0, 0, 1]));
    const s = await reopen(dir);
    assert.equal(s.revision(), 2);
    assert.equal(statSync(join(dir, 'wal.log')).size, ends[1]);
    await s.close();
  });

  it('flipped bytes fail the checksum: the last good state before them is used', async () => {
    const { dir, ends } = await seeded(5);
    const log = join(dir, 'wal.log');
    const buf = readFileSync(log);
    buf[ends[2]! + 20]! ^= 0x55; // inside record 4's payload
    writeFileSync(log, buf);
    const cap = capture();
    const s = await reopen(dir, cap.logger);
    assert.equal(s.revision(), 3);
    assert.deepEqual(names(s), ['s1', 's2', 's3']);
    assert.ok(cap.lines.some((l) => l.includes('checksum mismatch') && l.includes(`"offset":${ends[2]}`)));
    await s.close();
  });

  it('a corrupted length field or a damaged file header never crashes the store', async () => {
    const a = await seeded(3);
    const buf = readFileSync(join(a.dir, 'wal.log'));
    buf.writeUInt32BE(0xfffffff0, a.ends[1]!);
    writeFileSync(join(a.dir, 'wal.log'), buf);
    let s = await reopen(a.dir);
    assert.equal(s.revision(), 2);
    await s.close();

    const b = await seeded(2);
    truncateSync(join(b.dir, 'wal.log'), 3);
    s = await reopen(b.dir);
    assert.equal(s.revision(), 0);
    await s.apply([svc('fresh')]);
    await s.close();
    s = await reopen(b.dir);
    assert.deepEqual(names(s), ['fresh']);
    await s.close();
  });

  it('replays snapshot + log, skipping log records a crash mid-compaction left behind', async () => {
    const { dir } = await seeded(4);
    copyFileSync(join(dir, 'wal.log'), join(root, 'old-wal'));
    let s = await reopen(dir);
    await s.compact();
    await s.apply([svc('s5')]);
    await s.close();
    s = await reopen(dir);
    assert.equal(s.revision(), 5);
    assert.equal(s.oldestWatchableRevision(), 4, 'history starts at the snapshot');
    await s.close();
    // As if the process died after renaming the snapshot but before swapping in the new log.
    const snapOnly = join(root, `d${n++}`);
    const t = await createFileStore({ dir: snapOnly });
    for (let i = 1; i <= 4; i++) await t.apply([svc(`s${i}`, 'default', { i: String(i) })]);
    await t.compact();
    await t.close();
    copyFileSync(join(root, 'old-wal'), join(snapOnly, 'wal.log'));
    s = await reopen(snapOnly);
    assert.equal(s.revision(), 4);
    assert.deepEqual(names(s), ['s1', 's2', 's3', 's4']);
    await s.close();
  });

  it('refuses a damaged snapshot with a clear error rather than starting empty', async () => {
    const { dir } = await seeded(2);
    const s = await reopen(dir);
    await s.compact();
    await s.close();
    const snap = join(dir, 'snapshot.json');
    const buf = readFileSync(snap);
    buf[buf.length - 5]! ^= 0x01;
    writeFileSync(snap, buf);
    await assert.rejects(reopen(dir), (err: unknown) => err instanceof StoreCorruptError && /snapshot\.json.*checksum/.test(err.message));
    assert.equal(existsSync(join(dir, 'LOCK')), false, 'the failed open released the lock');
  });

  it('compaction during concurrent writes loses nothing', async () => {
    const dir = join(root, `d${n++}`);
    const s = await createFileStore({ dir, compactBytes: 2000 });
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 120; i++) {
      writes.push(s.apply([svc(`k${i % 30}`, 'default', { round: String(i) })]));
      if (i % 17 === 0) writes.push(s.compact());
    }
    await Promise.all(writes);
    const before = JSON.stringify(s.list().items);
    assert.ok(s.logBytes() < 2000 + 1000);
    await s.close();
    const again = await reopen(dir);
    assert.equal(again.revision(), 120);
    assert.equal(JSON.stringify(again.list().items), before);
    await again.close();
  });
});

describe('file store periodic compaction', () => {
  it('compacts a non-empty log on the clock, and stops its timer on close', async () => {
    const clock = fakeClock();
    const dir = join(root, `d${n++}`);
    const s = await createFileStore({ dir, clock, compactEveryMs: 60_000 });
    try {
      const empty = s.logBytes();
      clock.advance(60_000);
      await s.apply([svc('a'), svc('b')]);
      assert.ok(s.logBytes() > empty);
      assert.equal(existsSync(join(dir, 'snapshot.json')), false, 'nothing to compact before the write');
      clock.advance(60_000);
      await s.apply([]); // queued behind the periodic compaction: when it resolves, that one is done
      assert.equal(s.logBytes(), empty);
      assert.ok(existsSync(join(dir, 'snapshot.json')));
    } finally {
      await s.close();
    }
    assert.equal(clock.pending(), 0);
    const again = await createFileStore({ dir, compactEveryMs: 0 });
    assert.deepEqual(names(again), ['a', 'b']);
    await again.close();
  });
});

describe('file store lock', () => {
  it('refuses a second store on the same directory, then allows it after close', async () => {
    const dir = join(root, `d${n++}`);
    const s = await createFileStore({ dir });
    await assert.rejects(createFileStore({ dir }), (err: unknown) => err instanceof StoreLockedError && err.message.includes(dir));
    symlinkSync(dir, `${dir}-link`);
    await assert.rejects(createFileStore({ dir: `${dir}-link/.` }), StoreLockedError, 'another path to the same directory');
    await s.close();
    const t = await createFileStore({ dir });
    await t.close();
  });

  it('refuses a directory locked by another live process, takes over a dead one', async () => {
    const dir = join(root, `d${n++}`);
    await (await createFileStore({ dir })).close();
    const lock = join(dir, 'LOCK');
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: hostname(), since: 'x' }));
    await assert.rejects(createFileStore({ dir }), (err: unknown) => err instanceof StoreLockedError && err.message.includes(`process ${process.ppid}`));
    writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), since: 'x' }));
    const s = await createFileStore({ dir });
    await s.close();
  });
});
