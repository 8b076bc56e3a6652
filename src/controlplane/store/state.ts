import { randomUUID } from 'node:crypto';
import type { Resource } from '../../api/types.js';
import { resourceRef } from '../../api/types.js';
import type { Problem } from '../../shared/errors.js';
import { ValidationError } from '../../shared/errors.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { AlreadyExistsError, ConflictError, NotFoundError, RevisionGoneError } from './errors.js';
import { formatKey, isCoreNamespace, keyOf, keyString, parseKindFilter } from './keys.js';
import { parseLabelSelector } from './label-selector.js';
import type {
  ApplyMode,
  ApplyOutcome,
  ListResult,
  ResourceKey,
  StoreWatch,
  WatchEvent,
  WatchEventType,
} from './types.js';

/** One committed change as it is logged: enough to replay it exactly. */
export interface Change {
  type: WatchEventType;
  object: Resource;
}

/** What prepare*() reads: a state at some revision. */
export interface StateView {
  revision(): number;
  get(key: string): Resource | undefined;
  entries(): Iterable<[string, Resource]>;
}

/** Committed state plus staged transactions; reads see the staged ones, the store itself is untouched. */
export class Overlay implements StateView {
  private readonly staged = new Map<string, Resource | null>();
  private rev: number;

  constructor(private readonly base: StateView) {
    this.rev = base.revision();
  }

  revision(): number {
    return this.rev;
  }

  get(key: string): Resource | undefined {
    const s = this.staged.get(key);
    return s === null ? undefined : (s ?? this.base.get(key));
  }

  *entries(): Iterable<[string, Resource]> {
    for (const [k, o] of this.base.entries()) if (!this.staged.has(k)) yield [k, o];
    for (const [k, o] of this.staged) if (o) yield [k, o];
  }

  stage(txn: PreparedTxn): void {
    if (txn.changes.length === 0) return;
    for (const c of txn.changes) this.staged.set(keyString(keyOf(c.object)), c.type === 'DELETED' ? null : c.object);
    this.rev = txn.revision;
  }
}

/** A transaction computed against the current state but not yet committed. */
export interface PreparedTxn {
  revision: number;
  changes: Change[];
  outcomes: ApplyOutcome[];
}

export interface StateOptions {
  clock: Clock;
  logger: Logger;
  /** How many events are kept for watchers that resume; older resumes get RevisionGoneError. */
  historyLimit?: number;
  newUid?: () => string;
}

/**
 * The in-memory heart shared by both stores: objects, revision, event history and watchers. prepare*() computes a
 * transaction without changing anything (so the file store can make it durable first); commit() applies it.
 */
export class StoreState {
  private readonly objects = new Map<string, Resource>();
  private rev = 0;
  private history: WatchEvent[] = [];
  private historyStart = 0;
  private readonly watchers = new Set<(e: WatchEvent) => void>();
  private readonly historyLimit: number;
  private readonly newUid: () => string;

  constructor(private readonly opts: StateOptions) {
    this.historyLimit = opts.historyLimit ?? 10_000;
    this.newUid = opts.newUid ?? randomUUID;
  }

  /** The committed state, as prepare*() sees it by default. */
  private readonly committed: StateView = {
    revision: () => this.rev,
    get: (k) => this.objects.get(k),
    entries: () => this.objects.entries(),
  };

  /** A view that starts as the committed state and absorbs prepared-but-uncommitted transactions. */
  overlay(): Overlay {
    return new Overlay(this.committed);
  }

  revision(): number {
    return this.rev;
  }

  oldestWatchableRevision(): number {
    return this.historyStart;
  }

  /** Every object, for snapshots. */
  all(): Resource[] {
    return [...this.objects.values()];
  }

  /** Loads a snapshot into an empty state; watchers can resume only from its revision on. */
  load(revision: number, objects: readonly Resource[]): void {
    for (const o of objects) this.objects.set(keyString(keyOf(o)), deepFreeze(o));
    this.rev = revision;
    this.historyStart = revision;
  }

  get(key: ResourceKey): Resource | undefined {
    return this.objects.get(keyString(key));
  }

  list(kind?: string, namespace?: string, labelSelector?: string): ListResult {
    const kf = parseKindFilter(kind);
    const sel = parseLabelSelector(labelSelector);
    const items: [string, Resource][] = [];
    for (const [k, o] of this.objects) {
      if (!matchesFilter(o, kf, namespace) || !sel.matches(o.metadata.labels)) continue;
      items.push([k, o]);
    }
    items.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return { revision: this.rev, items: items.map(([, o]) => o) };
  }

  /** `view` lets a writer prepare several transactions ahead of committing them (group commit). */
  prepareApply(resources: readonly Resource[], mode: ApplyMode, view: StateView = this.committed): PreparedTxn {
    checkShape(resources);
    const base = view.revision();
    const revision = base + 1;
    const changes: Change[] = [];
    const outcomes: ApplyOutcome[] = [];
    for (const input of resources) {
      const key = keyOf(input);
      const ref = formatKey(key);
      const existing = view.get(keyString(key));
      if (mode === 'create' && existing) throw new AlreadyExistsError(ref);
      if (mode === 'update' && !existing) throw new NotFoundError(ref);
      const wantRv = input.metadata.resourceVersion;
      if (wantRv !== undefined && wantRv !== '' && wantRv !== existing?.metadata.resourceVersion) {
        throw new ConflictError(
          ref,
          existing
            ? `resourceVersion ${wantRv} is stale (stored: ${existing.metadata.resourceVersion}); get the object again and retry`
            : `resourceVersion ${wantRv} given but the object does not exist`,
        );
      }
      const next = normalize(input);
      if (existing && canonical(stripServerFields(existing)) === canonical(stripServerFields(next))) {
        outcomes.push({ resource: existing, action: 'unchanged' });
        continue;
      }
      const meta = next.metadata;
      meta.resourceVersion = String(revision);
      meta.uid = existing?.metadata.uid ?? this.newUid();
      meta.creationTimestamp =
        existing?.metadata.creationTimestamp ?? new Date(this.opts.clock.now()).toISOString().replace(/\.\d+Z$/, 'Z');
      const specChanged = !existing || canonical(specPart(existing)) !== canonical(specPart(next));
      meta.generation = (existing?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
      const frozen = deepFreeze(next);
      changes.push({ type: existing ? 'MODIFIED' : 'ADDED', object: frozen });
      outcomes.push({ resource: frozen, action: existing ? 'configured' : 'created' });
    }
    // Unchanged objects keep their old version; report the revision the caller can watch from.
    return { revision: changes.length > 0 ? revision : base, changes, outcomes };
  }

  prepareDelete(keys: readonly ResourceKey[], view: StateView = this.committed): PreparedTxn {
    const base = view.revision();
    const revision = base + 1;
    const doomed = new Map<string, Resource>();
    for (const key of keys) {
      const k = keyString(key);
      const existing = view.get(k);
      if (existing) doomed.set(k, existing);
      // Contents go even when the Namespace object itself was never created (universal mode does not require it).
      if (isCoreNamespace(key)) {
        for (const [ok, o] of view.entries()) {
          if (o.metadata.namespace === key.name) doomed.set(ok, o);
        }
      }
    }
    // Namespaced objects go first so a watcher never sees a namespace vanish before its contents.
    const ordered = [...doomed.values()].sort((a, b) => Number(a.kind === 'Namespace') - Number(b.kind === 'Namespace'));
    const changes: Change[] = ordered.map((o) => ({
      type: 'DELETED',
      object: deepFreeze({ ...structuredClone(o), metadata: { ...structuredClone(o.metadata), resourceVersion: String(revision) } }),
    }));
    return { revision: changes.length > 0 ? revision : base, changes, outcomes: [] };
  }

  /** Applies a prepared (or replayed) transaction and tells watchers. */
  commit(revision: number, changes: readonly Change[]): void {
    if (changes.length === 0) return;
    const events: WatchEvent[] = [];
    for (const c of changes) {
      const k = keyString(keyOf(c.object));
      const previous = this.objects.get(k);
      const object = Object.isFrozen(c.object) ? c.object : deepFreeze(c.object);
      if (c.type === 'DELETED') this.objects.delete(k);
      else this.objects.set(k, object);
      events.push(previous ? { type: c.type, object, revision, previous } : { type: c.type, object, revision });
    }
    this.rev = revision;
    this.history.push(...events);
    this.trimHistory();
    for (const e of events) {
      for (const w of [...this.watchers]) {
        if (this.watchers.has(w)) this.deliver(w, e);
      }
    }
  }

  watch(fromRevision: number, cb: (e: WatchEvent) => void): StoreWatch {
    if (fromRevision < this.historyStart) throw new RevisionGoneError(fromRevision, this.historyStart);
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.revision <= fromRevision) lo = mid + 1;
      else hi = mid;
    }
    let cancelled = false;
    const w = (e: WatchEvent): void => {
      if (!cancelled) cb(e);
    };
    for (const e of this.history.slice(lo)) this.deliver(w, e);
    this.watchers.add(w);
    return {
      cancel: () => {
        cancelled = true;
        this.watchers.delete(w);
      },
    };
  }

  private deliver(w: (e: WatchEvent) => void, e: WatchEvent): void {
    try {
      w(e);
    } catch (err) {
      this.opts.logger.error('store watcher threw; ignoring', { error: String(err) });
    }
  }

  private trimHistory(): void {
    const excess = this.history.length - this.historyLimit;
    if (excess <= 0) return;
    // Trim in bulk to keep pushes amortised O(1).
    const drop = Math.max(excess, Math.floor(this.historyLimit / 4));
    const dropped = this.history.slice(0, drop);
    this.history = this.history.slice(drop);
    this.historyStart = Math.max(this.historyStart, dropped[dropped.length - 1]!.revision);
  }
}

function matchesFilter(o: Resource, kf: { kind?: string; group?: string }, namespace: string | undefined): boolean {
  if (kf.kind !== undefined && o.kind !== kf.kind) return false;
  if (kf.group !== undefined && keyOf(o).group !== kf.group) return false;
  if (namespace !== undefined && (o.metadata.namespace ?? '') !== namespace) return false;
  return true;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The store only checks what it needs to key and keep an object; semantic validation is the API server's job. */
function checkShape(resources: readonly Resource[]): void {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  resources.forEach((r, i) => {
    const at = `items[${i}]`;
    if (!isRecord(r)) {
      problems.push({ resource: at, message: 'must be an object' });
      return;
    }
    const ref = isRecord(r.metadata) && typeof r.kind === 'string' ? resourceRef(r) : at;
    if (typeof r.apiVersion !== 'string' || r.apiVersion === '') problems.push({ resource: ref, path: 'apiVersion', message: 'required' });
    if (typeof r.kind !== 'string' || r.kind === '') problems.push({ resource: ref, path: 'kind', message: 'required' });
    if (!isRecord(r.metadata)) {
      problems.push({ resource: ref, path: 'metadata', message: 'required' });
      return;
    }
    const m = r.metadata;
    if (typeof m.name !== 'string' || m.name === '') problems.push({ resource: ref, path: 'metadata.name', message: 'required' });
    else if (m.name.includes('/') || m.name.includes('\u0000')) problems.push({ resource: ref, path: 'metadata.name', message: 'must not contain "/"' });
    if (m.namespace !== undefined && typeof m.namespace !== 'string') problems.push({ resource: ref, path: 'metadata.namespace', message: 'must be a string' });
    for (const f of ['labels', 'annotations'] as const) {
      const v = m[f];
      if (v === undefined) continue;
      if (!isRecord(v) || Object.values(v).some((x) => typeof x !== 'string')) {
        problems.push({ resource: ref, path: `metadata.${f}`, message: 'must be a map of strings' });
      }
    }
    if (typeof r.apiVersion === 'string' && typeof r.kind === 'string' && typeof m.name === 'string') {
      const k = keyString(keyOf(r));
      if (seen.has(k)) problems.push({ resource: ref, message: 'appears more than once in one apply' });
      seen.add(k);
    }
  });
  if (problems.length > 0) throw new ValidationError(problems);
}

/** A JSON-clean private copy: what is stored must replay byte-for-byte from the log. */
function normalize(r: Resource): Resource {
  const copy = JSON.parse(JSON.stringify(r)) as Resource;
  if (!copy.metadata.namespace) delete copy.metadata.namespace;
  delete (copy.metadata as { managedFields?: unknown }).managedFields;
  return copy;
}

function stripServerFields(r: Resource): unknown {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, generation: _g, ...meta } = r.metadata;
  return { ...r, metadata: meta };
}

function specPart(r: Resource): unknown {
  const { metadata: _m, status: _s, ...rest } = r as Resource & { status?: unknown };
  return rest;
}

/** JSON with sorted keys, for equality regardless of key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isRecord(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
