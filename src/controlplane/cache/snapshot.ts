/**
 * Immutable, versioned snapshots: for each type URL, a version and the resources by name.
 *
 * A version is either given or derived from the content (a hash of names and bytes), so a type whose
 * resources did not change keeps its version across rebuilds and is not pushed again.
 */
import { createHash } from 'node:crypto';
import { CrossmeshError } from '../../shared/index.js';
import { resourceName } from '../../xds/index.js';
import type { Any } from '../../xds/index.js';

/** The resources of one type in a snapshot. */
export interface TypeResources {
  readonly version: string;
  /** By resource name, in name order. */
  readonly resources: ReadonlyMap<string, Any>;
}

/** An immutable set of resources for one proxy group; every method returns a new snapshot. */
export interface Snapshot {
  /** Types present, in type URL order. */
  readonly typeUrls: readonly string[];
  get(typeUrl: string): TypeResources | undefined;
  version(typeUrl: string): string | undefined;
  /** A new snapshot with one type replaced (or added); the others are shared, versions kept. */
  withType(typeUrl: string, input: TypeInput): Snapshot;
  /** A new snapshot with some resources of one type added, replaced or removed; a new version unless given. */
  patchType(typeUrl: string, patch: TypePatch): Snapshot;
  /** A new snapshot without a type. */
  withoutType(typeUrl: string): Snapshot;
}

/** Resources to add or replace (by their names) and names to remove; removals apply first. */
export interface TypePatch {
  upsert?: readonly Any[];
  remove?: readonly string[];
  version?: string;
}

/**
 * Resources of one type to put in a snapshot: a list of Anys (names read from each resource) or a map
 * by name; `version` defaults to a content hash.
 */
export type TypeInput = readonly Any[] | { version?: string; resources: readonly Any[] | ReadonlyMap<string, Any> };

export class SnapshotError extends CrossmeshError {
  constructor(message: string) {
    super('E_SNAPSHOT', message);
  }
}

export function createSnapshot(input: Record<string, TypeInput> = {}): Snapshot {
  const types = new Map<string, TypeResources>();
  for (const [typeUrl, v] of Object.entries(input)) types.set(typeUrl, buildType(typeUrl, v));
  return makeSnapshot(types);
}

function makeSnapshot(types: ReadonlyMap<string, TypeResources>): Snapshot {
  const typeUrls = Object.freeze([...types.keys()].sort());
  const snapshot: Snapshot = {
    typeUrls,
    get: (t) => types.get(t),
    version: (t) => types.get(t)?.version,
    withType(typeUrl, v) {
      const next = new Map(types);
      next.set(typeUrl, buildType(typeUrl, v));
      return makeSnapshot(next);
    },
    patchType(typeUrl, patch) {
      const resources = new Map(types.get(typeUrl)?.resources ?? []);
      for (const name of patch.remove ?? []) resources.delete(name);
      for (const any of patch.upsert ?? []) resources.set(resourceName(any), any);
      return snapshot.withType(typeUrl, patch.version !== undefined ? { version: patch.version, resources } : { resources });
    },
    withoutType(typeUrl) {
      const next = new Map(types);
      next.delete(typeUrl);
      return makeSnapshot(next);
    },
  };
  return Object.freeze(snapshot);
}

function buildType(typeUrl: string, input: TypeInput): TypeResources {
  const list = Array.isArray(input) ? (input as readonly Any[]) : undefined;
  const spec = list ? { resources: list } : (input as Exclude<TypeInput, readonly Any[]>);
  const entries: Array<[string, Any]> = [];
  if (spec.resources instanceof Map) {
    for (const [name, any] of spec.resources) entries.push([name, any]);
  } else {
    for (const any of spec.resources as readonly Any[]) entries.push([resourceName(any), any]);
  }
  const seen = new Set<string>();
  for (const [name, any] of entries) {
    if (any.type_url !== typeUrl) throw new SnapshotError(`resource ${JSON.stringify(name)} has type ${any.type_url}, expected ${typeUrl}`);
    if (seen.has(name)) throw new SnapshotError(`${typeUrl}: resource ${JSON.stringify(name)} appears twice`);
    seen.add(name);
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const resources = new Map(entries);
  const version = spec.version ?? contentVersion(entries);
  if (version === '') throw new SnapshotError(`${typeUrl}: version must not be empty`);
  return Object.freeze({ version, resources });
}

/** A short hash of names and bytes: equal content, equal version, whatever process computed it. */
export function contentVersion(entries: ReadonlyArray<readonly [string, Any]>): string {
  const h = createHash('sha256');
  for (const [name, any] of entries) {
    h.update(name).update('\0').update(String(any.value.length)).update('\0').update(any.value);
  }
  return h.digest('hex').slice(0, 16);
}
