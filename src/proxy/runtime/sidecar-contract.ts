/**
 * The contract between the proxy's process core (this folder) and the sidecar data path
 * (src/proxy/sidecar/). Until src/proxy/sidecar/types.ts lands, this is a copy of its declarations;
 * the runtime only ever talks to a Sidecar through these.
 */
import type net from 'node:net';
import type { Clock, Logger } from '../../shared/index.js';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from '../../xds/index.js';
import type { AccessLogRecord, MeshMetrics } from '../telemetry/index.js';

/** The xDS resources a proxy runs, by resource name: always the full set of each type. */
export interface ProxyXdsState {
  listeners: ReadonlyMap<string, Listener>;
  clusters: ReadonlyMap<string, Cluster>;
  routes: ReadonlyMap<string, RouteConfiguration>;
  endpoints: ReadonlyMap<string, ClusterLoadAssignment>;
}

/** The workload's mTLS material as the sidecar presents and verifies it. */
export interface SidecarCredentials {
  certChainPem: string;
  keyPem: string;
  rootsPem: string;
  spiffeId: string;
}

export interface SidecarOptions {
  /** The current credentials; undefined until the first certificate arrived. */
  credentials: () => SidecarCredentials | undefined;
  identity: { cluster: string; namespace: string; workload: string; network: string };
  accessLog?: (record: AccessLogRecord) => void;
  metrics?: MeshMetrics;
  logger?: Logger;
  clock?: Clock;
  /** Where a transparently captured connection was going; undefined when it was not redirected. */
  originalDestination?: (socket: net.Socket) => { address: string; port: number } | undefined;
}

/** One problem with one resource of an applied state; the runtime NACKs the type it belongs to. */
export interface SidecarProblem {
  typeUrl: string;
  name: string;
  message: string;
}

export interface ClusterEndpointStatus {
  address: string;
  port: number;
  health: string;
  ejected: boolean;
  activeRequests: number;
  locality: string;
  priority: number;
}

export interface ClusterStatus {
  name: string;
  endpoints: ClusterEndpointStatus[];
}

/** The data path: apply() swaps in a full state without dropping live connections. */
export interface Sidecar {
  apply(state: ProxyXdsState): { problems: SidecarProblem[] };
  /** The credentials() function now returns new material; new handshakes must use it. */
  credentialsChanged(): void;
  clusterStatus(): ClusterStatus[];
  close(): Promise<void>;
}

export type SidecarFactory = (options: SidecarOptions) => Sidecar;
