import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Resource } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { CrossmeshError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { silentLogger } from '../../shared/log.js';
import { StoreClosedError, StoreCorruptError } from './errors.js';
import { lockDir } from './lock.js';
import type { DirLock } from './lock.js';
import { StoreState } from './state.js';
import type { Overlay, PreparedTxn } from './state.js';
import type { ApplyOptions, ApplyResult, DeleteResult, ResourceKey, Store } from './types.js';
import { MAGIC, decodeLog, encodeRecord } from './wal.js';

export interface FileStoreOptions {
  /** Data directory; created if missing. */
  dir: string;
  clock?: Clock;
  logger?: Logger;
  /** Compact the log into a snapshot once it grows past this many bytes (default 8 MiB). */
  compactBytes?: number;
  /** Also compact a non-empty log this often (default 10 min; 0 disables), so restarts replay little. */
  compactEveryMs?: number;
  historyLimit?: number;
}

/** A Store that also offers on-demand compaction (tests and `/debug` use it). */
export interface FileStore extends Store {
  /** Writes a snapshot of the current state and starts a fresh log; serialised with writes. */
  compact(): Promise<void>;
  /** Bytes in the current log (for metrics). */
  logBytes(): number;
}

/** A write failed half-way; the store refuses further writes rather than guess what is on disk. */
export class StoreWriteError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_STORE_WRITE', message, options);
  }
}

/** One queued transaction. */
interface Job {
  prepare: (view: Overlay) => PreparedTxn;
  finish: (txn: PreparedTxn, before: number) => unknown;
  dryRun: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

const SNAPSHOT = 'snapshot.json';
const LOG = 'wal.log';

/**
 * Opens (or creates) a crash-safe store in `dir`:
 * - every transaction is appended to `wal.log` as one CRC-framed record and fsynced before its promise resolves;
 *   transactions that arrive while a write is in flight share the next write and fsync (group commit);
 * - compaction writes `snapshot.json` (temp file + fsync + rename + directory fsync), then swaps in an empty log
 *   the same way;
 * - on open, the snapshot is loaded and the log replayed; a torn or corrupt record is logged with its offset and the
 *   log truncated there, keeping every transaction before it.
 */
export async function createFileStore(options: FileStoreOptions): Promise<FileStore> {
  const { dir } = options;
  const logger = options.logger ?? silentLogger;
  const compactBytes = options.compactBytes ?? 8 * 1024 * 1024;
  await mkdir(dir, { recursive: true });
  const lock = await lockDir(dir);
  try {
    const state = new StoreState({ clock: options.clock ?? systemClock, logger, historyLimit: options.historyLimit });
    await rm(join(dir, `${SNAPSHOT}.tmp`), { force: true });
    await rm(join(dir, `${LOG}.tmp`), { force: true });
    await loadSnapshot(dir, state);
    const logSize = await replayLog(dir, state, logger);
    const fh = await open(join(dir, LOG), 'a');
    const store = new FileStoreImpl(dir, state, fh, logSize, lock, logger, compactBytes);
    store.startTimer(options.clock ?? systemClock, options.compactEveryMs ?? 10 * 60 * 1000);
    return store;
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Writes `name` atomically and durably: temp file, fsync, rename, directory fsync. */
async function writeDurably(dir: string, name: string, data: Buffer): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}

interface SnapshotHeader {
  format: 1;
  revision: number;
  count: number;
  sha256: string;
}

async function loadSnapshot(dir: string, state: StoreState): Promise<void> {
  let buf: Buffer;
  try {
    buf = await readFile(join(dir, SNAPSHOT));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const nl = buf.indexOf(0x0a);
  const file = join(dir, SNAPSHOT);
  try {
    const head = JSON.parse(buf.subarray(0, nl).toString('utf8')) as SnapshotHeader;
    const body = buf.subarray(nl + 1);
    if (head.format !== 1) throw new Error(`unknown format ${String(head.format)}`);
    if (createHash('sha256').update(body).digest('hex') !== head.sha256) throw new Error('checksum mismatch');
    const objects = JSON.parse(body.toString('utf8')) as Resource[];
    if (objects.length !== head.count) throw new Error(`expected ${head.count} objects, found ${objects.length}`);
    state.load(head.revision, objects);
  } catch (err) {
    // Snapshots are renamed into place whole, so this is disk damage, not a crash: refuse to guess.
    throw new StoreCorruptError(`${file}: unreadable snapshot (${(err as Error).message}); restore it from a backup`, {
      cause: err,
    });
  }
}

async function replayLog(dir: string, state: StoreState, logger: Logger): Promise<number> {
  const path = join(dir, LOG);
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await writeDurably(dir, LOG, MAGIC);
    return MAGIC.length;
  }
  const res = decodeLog(buf, state.revision());
  for (const rec of res.records) state.commit(rec.revision, rec.changes);
  if (res.problem) {
    logger.warn('store: discarding torn or corrupt log tail; keeping every transaction before it', {
      file: path,
      offset: res.problem.offset,
      reason: res.problem.reason,
      droppedBytes: buf.length - res.goodEnd,
      revision: state.revision(),
    });
    if (res.goodEnd < MAGIC.length) {
      await writeDurably(dir, LOG, MAGIC);
      return MAGIC.length;
    }
    const fh = await open(path, 'r+');
    try {
      await fh.truncate(res.goodEnd);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  return res.goodEnd;
}

class FileStoreImpl implements FileStore {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private broken: Error | undefined;
  private pending: Job[] = [];
  private batchScheduled = false;
  private timer: { cancel(): void } | undefined;

  constructor(
    private readonly dir: string,
    private readonly state: StoreState,
    private fh: FileHandle,
    private size: number,
    private readonly lock: DirLock,
    private readonly logger: Logger,
    private readonly compactBytes: number,
  ) {}

  get(key: ResourceKey): Resource | undefined {
    return this.state.get(key);
  }

  list(kind?: string, namespace?: string, labelSelector?: string) {
    return this.state.list(kind, namespace, labelSelector);
  }

  watch(from: number, cb: Parameters<Store['watch']>[1]) {
    return this.state.watch(from, cb);
  }

  revision(): number {
    return this.state.revision();
  }

  oldestWatchableRevision(): number {
    return this.state.oldestWatchableRevision();
  }

  logBytes(): number {
    return this.size;
  }

  apply(resources: readonly Resource[], opts: ApplyOptions = {}): Promise<ApplyResult> {
    const mode = opts.mode ?? 'apply';
    return this.submit(
      (view) => this.state.prepareApply(resources, mode, view),
      (txn, before) => ({ revision: opts.dryRun ? before : txn.revision, outcomes: txn.outcomes }),
      opts.dryRun ?? false,
    );
  }

  delete(keys: readonly ResourceKey[]): Promise<DeleteResult> {
    return this.submit(
      (view) => this.state.prepareDelete(keys, view),
      (txn) => ({ revision: txn.revision, deleted: txn.changes.map((c) => c.object) }),
      false,
    );
  }

  compact(): Promise<void> {
    return this.serial(() => this.compactNow());
  }

  /** Periodic compaction; the timer is the clock's, so tests drive it. */
  startTimer(clock: Clock, everyMs: number): void {
    if (everyMs <= 0) return;
    this.timer = clock.setTimeout(() => {
      if (this.closed) return;
      if (this.size > MAGIC.length) {
        this.compact().catch((err: unknown) => this.logger.error('store: periodic compaction failed', { error: String(err) }));
      }
      this.startTimer(clock, everyMs);
    }, everyMs);
  }

  close(): Promise<void> {
    if (this.closed) return this.queue.then(() => undefined);
    this.closed = true;
    this.timer?.cancel();
    const done = this.queue.then(async () => {
      await this.fh.close();
      await this.lock.release();
    });
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Runs maintenance one at a time with the write batches, in call order; one failing does not stop the next. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Queues a transaction; transactions queued while a batch is being written go together in the next one. */
  private submit<T>(prepare: (view: Overlay) => PreparedTxn, finish: (txn: PreparedTxn, before: number) => T, dryRun: boolean): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ prepare, finish: finish as Job['finish'], dryRun, resolve: resolve as Job['resolve'], reject });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        this.queue = this.queue.then(() => this.writeBatch()).catch(() => undefined);
      }
    });
  }

  /**
   * Group commit: prepares every queued transaction in order against an overlay (each sees the ones before it),
   * appends all their records with one write and one fsync, then commits and settles them in order.
   */
  private async writeBatch(): Promise<void> {
    this.batchScheduled = false;
    const batch = this.pending.splice(0);
    try {
      await this.runBatch(batch);
    } catch (err) {
      // Only a bug gets here; never leave a caller waiting (settling a settled promise is a no-op).
      this.logger.error('store: write batch failed unexpectedly', { error: String(err) });
      for (const j of batch) j.reject(err);
    }
  }

  private async runBatch(batch: Job[]): Promise<void> {
    if (this.broken) {
      for (const j of batch) j.reject(new StoreWriteError(`store is read-only after a failed write: ${this.broken.message}`));
      return;
    }
    const overlay = this.state.overlay();
    const settled: Array<{ job: Job; txn?: PreparedTxn; before: number; error?: unknown }> = [];
    for (const job of batch) {
      const before = overlay.revision();
      try {
        const txn = job.prepare(overlay);
        if (!job.dryRun) overlay.stage(txn);
        settled.push({ job, txn, before });
      } catch (error) {
        settled.push({ job, before, error });
      }
    }
    const writes = settled.filter((s) => s.txn && !s.job.dryRun && s.txn.changes.length > 0);
    if (writes.length > 0) {
      const buf = Buffer.concat(writes.map((s) => encodeRecord({ revision: s.txn!.revision, changes: s.txn!.changes })));
      try {
        await this.fh.write(buf);
        await this.fh.datasync();
      } catch (err) {
        await this.undoPartialWrite(err as Error);
        const failure = new StoreWriteError(`writing ${join(this.dir, LOG)} failed: ${(err as Error).message}`, { cause: err });
        for (const s of settled) s.job.reject(s.error ?? failure);
        return;
      }
      this.size += buf.length;
    }
    for (const s of settled) {
      if (s.txn === undefined) {
        s.job.reject(s.error);
        continue;
      }
      if (!s.job.dryRun) this.state.commit(s.txn.revision, s.txn.changes);
      s.job.resolve(s.job.finish(s.txn, s.before));
    }
    if (this.size > this.compactBytes) {
      try {
        await this.compactNow();
      } catch (err) {
        // The transactions are durable in the log; a failed compaction only delays log trimming.
        this.logger.error('store: compaction failed; will retry after the next write', { error: (err as Error).message });
      }
    }
  }

  private async undoPartialWrite(cause: Error): Promise<void> {
    try {
      await this.fh.truncate(this.size);
      await this.fh.sync();
    } catch (err) {
      this.broken = cause;
      this.logger.error('store: cannot undo a failed log write; refusing further writes', {
        error: (err as Error).message,
      });
    }
  }

  private async compactNow(): Promise<void> {
    const objects = this.state.all();
    const body = Buffer.from(JSON.stringify(objects), 'utf8');
    const head: SnapshotHeader = {
      format: 1,
      revision: this.state.revision(),
      count: objects.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    };
    await writeDurably(this.dir, SNAPSHOT, Buffer.concat([Buffer.from(JSON.stringify(head) + '\n'), body]));
    // A crash from here on leaves the snapshot plus an old log whose records it already covers: replay skips them.
    await writeDurably(this.dir, LOG, MAGIC);
    await this.fh.close();
    this.fh = await open(join(this.dir, LOG), 'a');
    this.size = (await stat(join(this.dir, LOG))).size;
    this.logger.debug('store: compacted', { revision: head.revision, objects: head.count });
  }
}
