/** Immutable upstream settings the sidecar compiles from CDS/EDS; the runtime in this folder executes them. */

/** TLS to originate to one endpoint: SNI, ALPN, and the URI SANs the peer must present (any one of them). */
export interface UpstreamTls {
  sni: string;
  alpn: readonly string[];
  sans: ReadonlyArray<{ exact?: string | undefined; prefix?: string | undefined }>;
}

export interface OutlierSettings {
  consecutive5xx: number;
  enforcing5xx: number;
  consecutiveGateway: number;
  enforcingGateway: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
}

export interface ClusterSettings {
  name: string;
  type: 'STATIC' | 'EDS' | 'ORIGINAL_DST';
  lbPolicy: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'CLUSTER_PROVIDED';
  connectTimeoutMs: number;
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  /** explicit_http_config.http2_protocol_options: requests go upstream as HTTP/2 streams. */
  http2: boolean;
  outlier?: OutlierSettings | undefined;
  /** Percent of healthy hosts below which a priority balances over all its hosts; 0 disables panic. */
  panicThreshold: number;
  ringSize: number;
  /** First match on the endpoint's `envoy.transport_socket_match` metadata wins; null = plaintext. */
  tlsMatches: ReadonlyArray<{ match: Record<string, unknown>; tls: UpstreamTls | null }>;
  defaultTls: UpstreamTls | null;
  service?: { host: string; name: string; namespace: string } | undefined;
}

export interface EndpointSpec {
  address: string;
  port: number;
  /** Envoy HealthStatus name. */
  health: string;
  weight: number;
  transportMatch: Record<string, unknown>;
  /** Istio's `name;namespace;…;cluster` workload metadata, for telemetry. */
  workload?: string | undefined;
  cluster?: string | undefined;
}

export interface LocalityGroup {
  /** `region/zone/subzone`. */
  locality: string;
  priority: number;
  weight: number;
  endpoints: EndpointSpec[];
}
