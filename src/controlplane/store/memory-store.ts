import type { Resource } from '../../api/types.js';
import { systemClock } from '../../shared/clock.js';
import type { Clock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/log.js';
import type { Logger } from '../../shared/log.js';
import { StoreClosedError } from './errors.js';
import { StoreState } from './state.js';
import type { ApplyOptions, ApplyResult, DeleteResult, ResourceKey, Store } from './types.js';

export interface MemoryStoreOptions {
  clock?: Clock;
  logger?: Logger;
  historyLimit?: number;
  newUid?: () => string;
}

/** A Store that keeps nothing across restarts; for tests and `crossmesh up` throwaway labs. */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const state = new StoreState({
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    historyLimit: options.historyLimit,
    newUid: options.newUid,
  });
  let closed = false;
  // Writes are async for parity with the file store: callers must not rely on synchronous commits.
  const run = async <T>(fn: () => T): Promise<T> => {
    await Promise.resolve();
    if (closed) throw new StoreClosedError();
    return fn();
  };
  return {
    get: (key) => state.get(key),
    list: (kind, namespace, labelSelector) => state.list(kind, namespace, labelSelector),
    apply: (resources: readonly Resource[], opts: ApplyOptions = {}) =>
      run((): ApplyResult => {
        const txn = state.prepareApply(resources, opts.mode ?? 'apply');
        if (opts.dryRun) return { revision: state.revision(), outcomes: txn.outcomes };
        state.commit(txn.revision, txn.changes);
        return { revision: txn.revision, outcomes: txn.outcomes };
      }),
    delete: (keys: readonly ResourceKey[]) =>
      run((): DeleteResult => {
        const txn = state.prepareDelete(keys);
        state.commit(txn.revision, txn.changes);
        return { revision: txn.revision, deleted: txn.changes.map((c) => c.object) };
      }),
    watch: (from, cb) => state.watch(from, cb),
    revision: () => state.revision(),
    oldestWatchableRevision: () => state.oldestWatchableRevision(),
    close: async () => {
      closed = true;
    },
  };
}
