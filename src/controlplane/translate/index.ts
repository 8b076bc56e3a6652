/** Translation: the mesh model and Istio config in, Envoy v3 resources for one proxy out. Pure functions. */
export {
  generateForProxy,
  generateEndpointsForProxy,
  generateOutboundClusters,
  generateProxyOwnResources,
  identitySignature,
  outboundClustersKey,
} from './generate.js';
export type { GenerateInput, ProxyResources } from './generate.js';
export { proxyInfoFromNode, proxyGroupKey } from './proxy-info.js';
export type { ProxyInfo, ProxyRole } from './proxy-info.js';
export type * from './config.js';
export { createConfigIndex, effectivePolicy } from './config-index.js';
export type { NameTable } from './name-table.js';
export { protoDuration } from './durations.js';
