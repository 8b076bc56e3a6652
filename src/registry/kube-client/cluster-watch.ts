import type { Resource } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { KubeClient, TypeRef } from './client.js';
import { createInformer } from './informer.js';
import type { Informer, InformerEvent, SyncState } from './informer.js';

export interface ClusterWatchOptions {
  client: KubeClient;
  /** The kinds to follow, e.g. Services, WorkloadEntries, Namespaces. */
  types: readonly TypeRef[];
  namespace?: string;
  clock?: Clock;
  logger?: Logger;
  backoff?: { initialMs?: number; maxMs?: number };
  idleTimeoutMs?: number;
  /** Every change of every type, in order per type. */
  onEvent: (type: TypeRef, e: InformerEvent) => void;
  /** The combined state changed. */
  onState?: (s: SyncState) => void;
}

/** Several informers on one cluster with one combined sync state: what a remote-cluster controller needs. */
export interface ClusterWatch {
  start(): void;
  stop(): void;
  /** `error` if any type is in error (the first one's code and reason), else `syncing` if any is, else `synced`. */
  state(): SyncState;
  /** Per-type states, in the order of `types`. */
  states(): SyncState[];
  items(type: TypeRef): Resource[];
}

const same = (a: TypeRef, b: TypeRef): boolean => a.apiVersion === b.apiVersion && a.kind === b.kind;

export function combineStates(states: readonly SyncState[]): SyncState {
  const err = states.find((s) => s.status === 'error');
  if (err) return err;
  if (states.some((s) => s.status === 'syncing')) return { status: 'syncing' };
  const versions = states.map((s) => (s.status === 'synced' ? s.resourceVersion : ''));
  // Our servers share one revision across kinds; the highest is how far the whole cluster is seen.
  const highest = versions.reduce((a, b) => (Number(b) > Number(a) ? b : a), versions[0] ?? '');
  return { status: 'synced', resourceVersion: highest };
}

export function watchCluster(opts: ClusterWatchOptions): ClusterWatch {
  let last: SyncState = { status: 'syncing' };
  const informers: Informer[] = [];
  const report = (): void => {
    const now = combineStates(informers.map((i) => i.state()));
    const changed = now.status !== last.status || (now.status === 'error' && last.status === 'error' && now.reason !== last.reason);
    last = now;
    if (changed) opts.onState?.(now);
  };
  for (const type of opts.types) {
    informers.push(
      createInformer({
        client: opts.client,
        type,
        namespace: opts.namespace,
        clock: opts.clock,
        logger: opts.logger,
        backoff: opts.backoff,
        idleTimeoutMs: opts.idleTimeoutMs,
        onEvent: (e) => opts.onEvent(type, e),
        onState: report,
      }),
    );
  }
  return {
    start: () => informers.forEach((i) => i.start()),
    stop: () => informers.forEach((i) => i.stop()),
    state: () => combineStates(informers.map((i) => i.state())),
    states: () => informers.map((i) => i.state()),
    items(type) {
      const idx = opts.types.findIndex((t) => same(t, type));
      return idx < 0 ? [] : informers[idx]!.items();
    },
  };
}
