/** The control plane's Kubernetes-style resource API (universal mode). */
export { createApiServer } from './server.js';
export type { ApiServer, ApiServerOptions, ApiServerTls } from './server.js';
export type { ApiAuth, Role, TokenEntry } from './auth.js';
export type { Validate } from './context.js';
export type { Status } from './status.js';
export { infoForKind, kindForPlural, knownKinds, pluralize } from './kinds.js';
export type { KindInfo } from './kinds.js';
