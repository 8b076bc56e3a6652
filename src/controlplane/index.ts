/** The control plane: one per cluster. Its public face for the CLI and the lab. */
export { startControlPlane, ControlPlaneError, DEFAULT_PORTS, LABEL_API_TOKEN } from './control-plane.js';
export type { ControlPlane, ControlPlaneOptions, ControlPlaneAddresses } from './control-plane.js';
export { ANNOTATION_CLUSTER, LABEL_MULTICLUSTER, SYSTEM_NAMESPACE } from './remote-clusters.js';
export type { RemoteClusterStatus } from './remote-clusters.js';
export { infoForKind, kindForPlural, knownKinds } from './api-server/index.js';
export type { KindInfo } from './api-server/index.js';
