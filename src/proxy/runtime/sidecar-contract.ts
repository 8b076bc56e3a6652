/**
 * The contract between the proxy's process core (this folder) and the sidecar data path
 * (src/proxy/sidecar/types.ts, which owns it). The runtime only talks to a Sidecar through these; the
 * aliases keep the names this folder's API was written with.
 */
import type { EndpointStatus, ResourceProblem, SidecarHandle, SidecarOptions } from '../sidecar/types.js';

export type { ClusterStatus, ProxyXdsState, Sidecar, SidecarHandle, SidecarCredentials, SidecarOptions } from '../sidecar/types.js';
export type SidecarProblem = ResourceProblem;
export type ClusterEndpointStatus = EndpointStatus;
/** Makes the data path; the runtime's default is src/proxy/sidecar's createSidecar. */
export type SidecarFactory = (options: SidecarOptions) => SidecarHandle;
