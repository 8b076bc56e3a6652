/**
 * The sidecar data path: executes the Envoy v3 listeners, routes, clusters and endpoints the control plane
 * sends (outbound HTTP/1.1 and TCP with mTLS origination, inbound mTLS termination), as a library the
 * `crossmesh proxy` process drives.
 */
export { createSidecar } from './sidecar.js';
export type { ProxyXdsState, SidecarOptions, Sidecar, SidecarHandle, SidecarCredentials, ResourceProblem, ClusterStatus, EndpointStatus } from './types.js';
export { compileState } from './config.js';
export type { CompiledConfig } from './config.js';
