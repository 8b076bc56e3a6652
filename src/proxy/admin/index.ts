/** The proxy's admin API (15000) and readiness endpoint (15021), Envoy- and Istio-shaped. */
export { createAdminServer, LOG_LEVELS } from './server.js';
export type { AdminServer, AdminServerOptions, AdminProviders, AdminLogLevel } from './server.js';
export { buildConfigDump, dumpJson, CONFIG_DUMP_TYPES } from './config-dump.js';
export type { ConfigDumpInput } from './config-dump.js';
export { renderClustersText, renderClustersJson } from './clusters.js';
