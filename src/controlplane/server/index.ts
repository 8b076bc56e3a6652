/**
 * The control plane's xDS server: ADS state of the world over gRPC on top of the snapshot cache, and
 * the debouncer that batches config changes into pushes.
 */
export { createAdsServer } from './ads-server.js';
export type { AdsServer, AdsServerOptions, AdsServerStats } from './ads-server.js';
export type { AdsServerHooks, ConnectedProxy, NackInfo, TypeStatus } from './ads-stream.js';
export { createDebouncer } from './debounce.js';
export type { DebouncedBatch, Debouncer, DebouncerOptions } from './debounce.js';
