/**
 * Snapshots per node group behind a one-shot watch interface, after go-control-plane's SotW cache.
 *
 * The xDS server asks `watch(group, typeUrl, names, knownVersion, cb)`; the cache answers once, as soon
 * as the group's snapshot has a version of that type other than `knownVersion` (possibly at once, inside
 * the call), then forgets the watch. The server opens a new watch when the proxy ACKs or NACKs.
 */
import { ValidationError, formatProblem, silentLogger } from '../../shared/index.js';
import type { Logger } from '../../shared/index.js';
import { TYPE_URLS, isWildcardType, pushRank } from '../../xds/index.js';
import type { Any } from '../../xds/index.js';
import { createSnapshot } from './snapshot.js';
import { checkSnapshotConsistency } from './consistency.js';
import type { Snapshot, TypeInput, TypePatch } from './snapshot.js';

/** What a watch is answered with: the version and the subscribed resources that exist, by name order. */
export interface WatchResponse {
  typeUrl: string;
  version: string;
  resources: ReadonlyArray<{ name: string; resource: Any }>;
}

/** `names` undefined: wildcard (every resource of the type). An empty list subscribes to nothing. */
export type WatchCallback = (response: WatchResponse) => void;

export interface SnapshotCacheOptions {
  logger?: Logger;
  /**
   * Run checkSnapshotConsistency on every snapshot set: `warn` logs the problems and serves the snapshot
   * anyway, `reject` throws a ValidationError and keeps the previous one. Off by default: it decodes
   * clusters, listeners and routes on each set, endpoint-only updates included.
   */
  consistency?: 'off' | 'warn' | 'reject';
}

/** Change listeners run after a group's snapshot was replaced and its watches answered. */
export type SnapshotListener = (group: string, snapshot: Snapshot | undefined) => void;

export interface SnapshotCache {
  /**
   * Replaces a group's snapshot and answers every watch whose type changed version, in push order.
   * With `consistency: 'reject'` an inconsistent snapshot throws ValidationError and changes nothing.
   */
  setSnapshot(group: string, snapshot: Snapshot): void;
  getSnapshot(group: string): Snapshot | undefined;
  /** Forgets a group's snapshot; its open watches stay open until a snapshot comes. */
  clearSnapshot(group: string): void;
  /**
   * EDS fast path: replaces only the endpoint resources of a group (creating an endpoint-only snapshot
   * when there is none); other types keep their versions and are not pushed. Returns the new snapshot.
   */
  setEndpoints(group: string, endpoints: TypeInput): Snapshot;
  /** EDS fast path for a few services: adds, replaces or removes single ClusterLoadAssignments. */
  patchEndpoints(group: string, patch: TypePatch): Snapshot;
  groups(): string[];
  /** Registers a one-shot watch; returns its cancel function. */
  watch(group: string, typeUrl: string, names: readonly string[] | undefined, knownVersion: string | undefined, cb: WatchCallback): () => void;
  /** Number of open watches, for metrics and tests. */
  watchCount(): number;
  onChange(listener: SnapshotListener): () => void;
}

interface Watch {
  id: number;
  group: string;
  typeUrl: string;
  names: readonly string[] | undefined;
  knownVersion: string | undefined;
  cb: WatchCallback;
}

export function createSnapshotCache(options: SnapshotCacheOptions = {}): SnapshotCache {
  const logger = options.logger ?? silentLogger;
  const snapshots = new Map<string, Snapshot>();
  const watches = new Map<string, Map<number, Watch>>();
  const listeners = new Set<SnapshotListener>();
  let nextId = 1;

  function respond(snapshot: Snapshot, w: Watch): boolean {
    const typed = snapshot.get(w.typeUrl);
    if (!typed || typed.version === w.knownVersion) return false;
    const resources: Array<{ name: string; resource: Any }> = [];
    if (w.names === undefined) {
      for (const [name, resource] of typed.resources) resources.push({ name, resource });
    } else {
      for (const name of [...new Set(w.names)].sort()) {
        const resource = typed.resources.get(name);
        if (resource) resources.push({ name, resource });
      }
    }
    try {
      w.cb({ typeUrl: w.typeUrl, version: typed.version, resources });
    } catch (err) {
      // One stream's failure must not keep the others from their push.
      logger.error('watch callback failed', { group: w.group, typeUrl: w.typeUrl, error: (err as Error).message });
    }
    return true;
  }

  function set(group: string, snapshot: Snapshot): void {
    const mode = options.consistency ?? 'off';
    if (mode !== 'off') {
      const problems = checkSnapshotConsistency(snapshot);
      if (problems.length && mode === 'reject') throw new ValidationError(problems.map((p) => ({ ...p, resource: `${group}: ${p.resource}` })));
      for (const p of problems) logger.warn('inconsistent snapshot', { group, problem: formatProblem(p) });
    }
    snapshots.set(group, snapshot);
    const open = watches.get(group);
    if (open && open.size) {
      const due = [...open.values()]
        .filter((w) => {
          const v = snapshot.version(w.typeUrl);
          return v !== undefined && v !== w.knownVersion;
        })
        .sort((a, b) => pushRank(a.typeUrl) - pushRank(b.typeUrl) || a.id - b.id);
      for (const w of due) {
        open.delete(w.id);
        respond(snapshot, w);
      }
      if (open.size === 0) watches.delete(group);
    }
    for (const l of listeners) l(group, snapshot);
  }

  return {
    setSnapshot: set,
    getSnapshot: (group) => snapshots.get(group),
    clearSnapshot(group) {
      snapshots.delete(group);
      for (const l of listeners) l(group, undefined);
    },
    setEndpoints(group, endpoints) {
      const current = snapshots.get(group);
      const next = current ? current.withType(TYPE_URLS.endpoint, endpoints) : createSnapshot({ [TYPE_URLS.endpoint]: endpoints });
      set(group, next);
      return next;
    },
    patchEndpoints(group, patch) {
      const next = (snapshots.get(group) ?? createSnapshot()).patchType(TYPE_URLS.endpoint, patch);
      set(group, next);
      return next;
    },
    groups: () => [...snapshots.keys()].sort(),
    watch(group, typeUrl, names, knownVersion, cb) {
      // A wildcard request for a type that is only ever named subscribes to nothing.
      const effective = names === undefined && !isWildcardType(typeUrl) ? [] : names;
      const w: Watch = { id: nextId++, group, typeUrl, names: effective, knownVersion, cb };
      const snapshot = snapshots.get(group);
      if (snapshot && respond(snapshot, w)) return () => {};
      let open = watches.get(group);
      if (!open) watches.set(group, (open = new Map()));
      open.set(w.id, w);
      return () => {
        const m = watches.get(group);
        m?.delete(w.id);
        if (m && m.size === 0) watches.delete(group);
      };
    },
    watchCount: () => [...watches.values()].reduce((n, m) => n + m.size, 0),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
