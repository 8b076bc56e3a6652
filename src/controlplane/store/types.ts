import type { Resource } from '../../api/types.js';

/** Identity of a stored object. The API version is not part of it: `v1alpha3` and `v1` name the same object. */
export interface ResourceKey {
  /** API group, `''` for the core group (`apiVersion: v1`). */
  group: string;
  kind: string;
  /** `''` for cluster-scoped objects. */
  namespace: string;
  name: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, as committed. For DELETED, `object` is the last state with the deleting revision as resourceVersion. */
export interface WatchEvent {
  type: WatchEventType;
  object: Resource;
  /** The revision of the transaction that made this change. */
  revision: number;
  /** For MODIFIED and DELETED: the state before the change (lets filtered watchers see objects leave their selector). */
  previous?: Resource;
}

export type ApplyMode =
  /** Create or replace (kubectl apply, HTTP PUT). */
  | 'apply'
  /** Fail with AlreadyExistsError if any object exists (HTTP POST). */
  | 'create'
  /** Fail with NotFoundError if any object is missing. */
  | 'update';

export interface ApplyOptions {
  mode?: ApplyMode;
  /** Check everything and report outcomes, but commit nothing. */
  dryRun?: boolean;
}

export interface ApplyOutcome {
  /** The object as stored (with resourceVersion, uid, creationTimestamp, generation). */
  resource: Resource;
  action: 'created' | 'configured' | 'unchanged';
}

export interface ApplyResult {
  /** The store revision after the transaction (unchanged when every object was unchanged). */
  revision: number;
  outcomes: ApplyOutcome[];
}

export interface DeleteResult {
  revision: number;
  /** Every object removed, including those removed because their Namespace was deleted. */
  deleted: Resource[];
}

export interface ListResult {
  /** The revision the list is consistent with: watch from it to follow changes without a gap. */
  revision: number;
  items: Resource[];
}

/** A registered watch; cancel() stops delivery at once (no callback after it returns). */
export interface StoreWatch {
  cancel(): void;
}

/**
 * The control plane's resource store.
 * - Objects returned are deeply frozen snapshots; never mutate them.
 * - apply() and delete() are each one all-or-nothing transaction with one new revision shared by every object it
 *   changes; transactions are serialised in call order. A resolved promise means the change is durable (for the
 *   file store: fsynced) and already visible to get/list/watch.
 * - Deleting a core `Namespace` key deletes every object in that namespace in the same transaction (even when no
 *   Namespace object exists).
 * - watch(from, cb) delivers, synchronously and in revision order, every event with revision > from: first the
 *   retained history, during the call, then each new transaction right after it commits. It throws
 *   RevisionGoneError when events after `from` are no longer retained (relist, then watch from the list revision).
 */
export interface Store {
  get(key: ResourceKey): Resource | undefined;
  /**
   * `kind` is `Kind` (any group) or `Kind.group` (e.g. `Gateway.networking.istio.io`, `Service.` for the core
   * group); `namespace` undefined means all namespaces; labelSelector uses Kubernetes syntax (`app=a,tier!=db`).
   */
  list(kind?: string, namespace?: string, labelSelector?: string): ListResult;
  apply(resources: readonly Resource[], options?: ApplyOptions): Promise<ApplyResult>;
  /** Missing keys are ignored (they appear in no result). */
  delete(keys: readonly ResourceKey[]): Promise<DeleteResult>;
  watch(fromRevision: number, cb: (event: WatchEvent) => void): StoreWatch;
  /** The revision of the last committed transaction (0 for an empty, new store). */
  revision(): number;
  /** Events after this revision are retained for watch; watching from an older one throws RevisionGoneError. */
  oldestWatchableRevision(): number;
  /** Waits for in-flight transactions, then releases files and locks. Later writes reject with StoreClosedError. */
  close(): Promise<void>;
}
