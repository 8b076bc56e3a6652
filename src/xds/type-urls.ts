/** Type URLs of the resources crossmesh serves over ADS, as Envoy and gRPC xDS clients expect them. */
const PREFIX = 'type.googleapis.com/';

export const TYPE_URLS = {
  listener: `${PREFIX}envoy.config.listener.v3.Listener`,
  route: `${PREFIX}envoy.config.route.v3.RouteConfiguration`,
  cluster: `${PREFIX}envoy.config.cluster.v3.Cluster`,
  endpoint: `${PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  secret: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
  nameTable: `${PREFIX}istio.networking.nds.v1.NameTable`,
} as const;

/**
 * Istio's workload health report: a proxy sends a DiscoveryRequest of this type (error_detail set when
 * unhealthy); the control plane answers nothing and marks the auto-registered WorkloadEntry.
 */
export const HEALTH_INFO_TYPE_URL = 'type.googleapis.com/istio.v1.HealthInformation';

export type ResourceKind = keyof typeof TYPE_URLS;
export type ResourceTypeUrl = (typeof TYPE_URLS)[ResourceKind];

/** Type URLs of messages nested in resources' typed_config fields. */
export const EXTENSION_TYPE_URLS = {
  httpConnectionManager: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  tcpProxy: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  router: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  upstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  downstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  rawBuffer: `${PREFIX}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer`,
  tlsInspector: `${PREFIX}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`,
  httpInspector: `${PREFIX}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector`,
  originalDst: `${PREFIX}envoy.extensions.filters.listener.original_dst.v3.OriginalDst`,
  httpProtocolOptions: `${PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
  fileAccessLog: `${PREFIX}envoy.extensions.access_loggers.file.v3.FileAccessLog`,
} as const;

/**
 * Order in which a stream sends several changed types: clusters before their endpoints, listeners
 * before their routes, so a proxy never references a resource it cannot have yet (Envoy's warming rules).
 * Types not listed go last, in type URL order.
 */
export const PUSH_ORDER: readonly string[] = [
  TYPE_URLS.cluster,
  TYPE_URLS.endpoint,
  TYPE_URLS.listener,
  TYPE_URLS.route,
  TYPE_URLS.secret,
  TYPE_URLS.nameTable,
];

/** Sort key for PUSH_ORDER; smaller is sent first. */
export function pushRank(typeUrl: string): number {
  const i = PUSH_ORDER.indexOf(typeUrl);
  return i === -1 ? PUSH_ORDER.length : i;
}

/**
 * Types whose SotW subscription may be a wildcard (an initial request with no names or "*") and whose
 * every response carries the full set. The others are only ever sent by name.
 */
const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URLS.listener, TYPE_URLS.cluster, TYPE_URLS.nameTable]);

export function isWildcardType(typeUrl: string): boolean {
  return WILDCARD_TYPES.has(typeUrl);
}

/** The fully qualified message name in a type URL (the part after the last '/'). */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}
