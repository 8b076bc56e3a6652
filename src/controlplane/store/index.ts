/** The control plane's embedded resource store: one Store interface, an in-memory and a crash-safe file implementation. */
export type {
  ApplyMode,
  ApplyOptions,
  ApplyOutcome,
  ApplyResult,
  DeleteResult,
  ListResult,
  ResourceKey,
  Store,
  StoreWatch,
  WatchEvent,
  WatchEventType,
} from './types.js';
export { createMemoryStore } from './memory-store.js';
export type { MemoryStoreOptions } from './memory-store.js';
export { createFileStore, StoreWriteError } from './file-store.js';
export type { FileStore, FileStoreOptions } from './file-store.js';
export {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  RevisionGoneError,
  StoreClosedError,
  StoreCorruptError,
  StoreLockedError,
} from './errors.js';
export { formatKey, groupOf, keyOf, keyString } from './keys.js';
export { parseLabelSelector, LabelSelectorError } from './label-selector.js';
export type { LabelSelector, Requirement } from './label-selector.js';
