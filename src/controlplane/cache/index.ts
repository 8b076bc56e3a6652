/**
 * The control plane's snapshot cache: immutable, versioned snapshots per proxy group, and the watch
 * interface the xDS server uses. It knows resources only as packed Anys, never how they were made.
 */
export { createSnapshot, contentVersion, SnapshotError } from './snapshot.js';
export type { Snapshot, TypeInput, TypePatch, TypeResources } from './snapshot.js';
export { createSnapshotCache } from './snapshot-cache.js';
export type { SnapshotCache, SnapshotCacheOptions, SnapshotListener, WatchCallback, WatchResponse } from './snapshot-cache.js';
export { checkSnapshotConsistency } from './consistency.js';
