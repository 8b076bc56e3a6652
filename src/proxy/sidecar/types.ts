/**
 * The contract between the sidecar data path and the `crossmesh proxy` process that feeds it: decoded xDS
 * resources in, per-resource problems out (the caller NACKs those), plus hooks for certificates and admin.
 */
import type net from 'node:net';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from '../../xds/index.js';
import type { AccessLogRecord } from '../telemetry/index.js';
import type { MeshMetrics } from '../telemetry/index.js';
import type { Logger } from '../../shared/log.js';
import type { Clock } from '../../shared/clock.js';

/** Decoded resources, by resource name. */
export interface ProxyXdsState {
  listeners: ReadonlyMap<string, Listener>;
  clusters: ReadonlyMap<string, Cluster>;
  routes: ReadonlyMap<string, RouteConfiguration>;
  endpoints: ReadonlyMap<string, ClusterLoadAssignment>;
}

/** The workload's current certificate, key, trusted roots and identity. */
export interface SidecarCredentials {
  certChainPem: string;
  keyPem: string;
  rootsPem: string;
  spiffeId: string;
}

export interface SidecarOptions {
  /** Current credentials; may change (rotation). Undefined while none have been issued yet. */
  credentials: () => SidecarCredentials | undefined;
  /** For telemetry labels. */
  identity: { cluster: string; namespace: string; workload: string; network: string };
  accessLog?: (record: AccessLogRecord) => void;
  metrics?: MeshMetrics;
  logger?: Logger;
  clock?: Clock;
  /** Resolves the original destination of a captured connection (transparent mode). */
  originalDestination?: (socket: net.Socket) => { address: string; port: number } | undefined;
}

/** One problem found in one resource; the caller NACKs it. */
export interface ResourceProblem {
  typeUrl: string;
  name: string;
  message: string;
}

export interface EndpointStatus {
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
  endpoints: EndpointStatus[];
}

export interface Sidecar {
  /**
   * Validates and applies a full state; returns problems per resource (the caller NACKs those) and keeps
   * the last good config for rejected ones. Listeners are bound/unbound as the config says (bind_to_port
   * false listeners are only reachable through virtualOutbound's original-destination hand-off). Live
   * connections survive updates.
   */
  apply(state: ProxyXdsState): { problems: ResourceProblem[] };
  /** Called on certificate rotation: new connections use the new credentials, existing ones stay up. */
  credentialsChanged(): void;
  /** For admin: endpoint health, outlier ejections, active connections per cluster. */
  clusterStatus(): ClusterStatus[];
  close(): Promise<void>;
}

/** What createSidecar returns: the contract above plus what tests and admin may want to know. */
export interface SidecarHandle extends Sidecar {
  /** Resolves once every bind apply() started has finished: bound listener name → address (port 0 resolved). */
  listening(): Promise<Map<string, { address: string; port: number }>>;
}
