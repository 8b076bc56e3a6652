import type { Resource } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { silentLogger } from '../../shared/log.js';
import type { KubeClient, TypeRef } from './client.js';
import { KubeClientError } from './errors.js';

/** Discovery updates as data: `reset` replaces everything the consumer had (initial list and every relist). */
export type InformerEvent = { type: 'reset'; items: Resource[] } | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Resource };

/**
 * `syncing`: listing for the first time. `synced`: the cache is complete (set before the `reset` event is delivered)
 * and a watch is live, being resumed, or being re-listed after 410. `error`: the last attempt failed; `code` is a KubeClientError code and `reason` says what to fix.
 * The cache is kept in every state: what to do with stale data is the consumer's decision.
 */
export type SyncState =
  | { status: 'syncing' }
  | { status: 'synced'; resourceVersion: string }
  | { status: 'error'; code: string; reason: string; since: number };

export interface InformerOptions {
  client: KubeClient;
  type: TypeRef;
  namespace?: string;
  labelSelector?: string;
  clock?: Clock;
  logger?: Logger;
  /** Retry delays grow from initialMs (default 250) ×2 per failure up to maxMs (default 30 s), with ±20% jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  random?: () => number;
  /** A watch silent for this long is treated as dead (default 60 s; servers send bookmarks every 15 s). */
  idleTimeoutMs?: number;
  /** Called for every change, in order, never concurrently. */
  onEvent: (e: InformerEvent) => void;
  /** Called whenever the sync state changes. */
  onState?: (s: SyncState) => void;
}

/** List + watch of one type with resume, relist on 410 and backoff. Callbacks only fire between start() and stop(). */
export interface Informer {
  start(): void;
  stop(): void;
  state(): SyncState;
  /** The current cache (complete once synced). */
  items(): Resource[];
}

const keyOf = (o: Resource): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export function createInformer(opts: InformerOptions): Informer {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const random = opts.random ?? Math.random;
  const initial = opts.backoff?.initialMs ?? 250;
  const max = opts.backoff?.maxMs ?? 30_000;
  const cache = new Map<string, Resource>();
  let state: SyncState = { status: 'syncing' };
  let running = false;
  let abort: AbortController | undefined;
  let wake: (() => void) | undefined;
  let timer: { cancel(): void } | undefined;

  const setState = (s: SyncState): void => {
    const prev = state;
    // A repeated identical error keeps its original `since`; a new resourceVersion alone is no state change.
    if (s.status === 'error' && prev.status === 'error' && s.reason === prev.reason) return;
    state = s;
    if (s.status === prev.status && s.status !== 'error') return;
    if (s.status === 'error') logger.warn('informer: sync failed', { server: opts.client.target.server, kind: opts.type.kind, code: s.code, reason: s.reason });
    opts.onState?.(state);
  };
  const emit = (e: InformerEvent): void => {
    if (!running) return;
    try {
      opts.onEvent(e);
    } catch (err) {
      // A consumer bug must not stall the watch (or replay the event forever).
      logger.error('informer: onEvent threw; continuing', { kind: opts.type.kind, error: String(err) });
    }
  };
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      timer = clock.setTimeout(resolve, ms);
    });

  async function run(): Promise<void> {
    let rv: string | undefined;
    let failures = 0;
    while (running) {
      const startedAt = clock.now();
      try {
        if (rv === undefined) {
          // Once synced, a relist (after 410) keeps reporting synced: the cache stays complete, only a bit old.
          const list = await opts.client.list(opts.type, { namespace: opts.namespace, labelSelector: opts.labelSelector });
          if (!running) return;
          cache.clear();
          for (const o of list.items) cache.set(keyOf(o), o);
          rv = list.resourceVersion;
          // State first, so a consumer that checks state() while handling the reset sees the cache as complete.
          setState({ status: 'synced', resourceVersion: rv });
          failures = 0;
          emit({ type: 'reset', items: list.items });
        }
        abort = new AbortController();
        let delivered = false;
        await opts.client.watch(opts.type, {
          namespace: opts.namespace,
          labelSelector: opts.labelSelector,
          resourceVersion: rv,
          idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
          signal: abort.signal,
          onOpen: () => {
            failures = 0;
            setState({ status: 'synced', resourceVersion: rv! });
          },
          onEvent: (e) => {
            if (!running) return;
            delivered = true;
            rv = e.object.metadata.resourceVersion;
            if (e.type === 'BOOKMARK') return;
            if (e.type === 'DELETED') cache.delete(keyOf(e.object));
            else cache.set(keyOf(e.object), e.object);
            emit({ type: e.type, object: e.object });
            if (state.status === 'synced') state = { status: 'synced', resourceVersion: rv! };
          },
        });
        // A stream that ends at once without news is throttled so a misbehaving server cannot spin us.
        if (!delivered && clock.now() - startedAt < 1000) await sleep(initial);
      } catch (err) {
        if (!running) return;
        const e = err instanceof KubeClientError ? err : new KubeClientError('E_KUBE_INTERNAL', (err as Error).message, { cause: err });
        if (e.code === 'E_KUBE_GONE') {
          logger.info('informer: resourceVersion expired; relisting', { server: opts.client.target.server, kind: opts.type.kind, resourceVersion: rv });
          rv = undefined;
          continue;
        }
        setState({ status: 'error', code: e.code, reason: e.message, since: clock.now() });
        const base = Math.min(max, initial * 2 ** failures);
        failures = Math.min(failures + 1, 30);
        await sleep(base * (0.8 + 0.4 * random()));
      }
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      run().catch((err: unknown) => logger.error('informer: stopped unexpectedly', { error: String(err) }));
    },
    stop() {
      running = false;
      abort?.abort();
      timer?.cancel();
      wake?.();
    },
    state: () => state,
    items: () => [...cache.values()],
  };
}
