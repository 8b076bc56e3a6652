/**
 * Small builders for resource fragments that every producer writes the same way. They return plain
 * objects (types.ts) to pack with encodeResource; they carry no mesh policy.
 */
import { EXTENSION_TYPE_URLS } from './type-urls.js';
import { ISTIO_ALPN, SDS_DEFAULT_SECRET, SDS_ROOT_SECRET } from './naming.js';
import type {
  Cluster,
  ClusterLoadAssignment,
  ConfigSource,
  HealthStatus,
  Listener,
  ListenerFilter,
  Locality,
  NetworkFilter,
  RouteConfiguration,
  TransportSocket,
  TypedConfig,
  VirtualHost,
} from './types.js';

/** "Fetch this over the same ADS stream", the only config source crossmesh uses. */
export function adsConfigSource(): ConfigSource {
  return { ads: {}, resource_api_version: 'V3' };
}

export function typed(typeUrl: string, fields: Record<string, unknown> = {}): TypedConfig {
  return { '@type': typeUrl, ...fields };
}

export function routerFilter(): { name: string; typed_config: TypedConfig } {
  return { name: 'envoy.filters.http.router', typed_config: typed(EXTENSION_TYPE_URLS.router) };
}

/** An HTTP connection manager network filter whose routes come by RDS under `routeConfigName`. */
export function httpConnectionManagerFilter(routeConfigName: string, statPrefix = routeConfigName): NetworkFilter {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typed(EXTENSION_TYPE_URLS.httpConnectionManager, {
      stat_prefix: statPrefix,
      rds: { config_source: adsConfigSource(), route_config_name: routeConfigName },
      http_filters: [routerFilter()],
    }),
  };
}

export function tcpProxyFilter(cluster: string, statPrefix = cluster): NetworkFilter {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: typed(EXTENSION_TYPE_URLS.tcpProxy, { stat_prefix: statPrefix, cluster }),
  };
}

export function tlsInspectorFilter(): ListenerFilter {
  return { name: 'envoy.filters.listener.tls_inspector', typed_config: typed(EXTENSION_TYPE_URLS.tlsInspector) };
}

export function httpInspectorFilter(): ListenerFilter {
  return { name: 'envoy.filters.listener.http_inspector', typed_config: typed(EXTENSION_TYPE_URLS.httpInspector) };
}

export function originalDstFilter(): ListenerFilter {
  return { name: 'envoy.filters.listener.original_dst', typed_config: typed(EXTENSION_TYPE_URLS.originalDst) };
}

/**
 * A proxyless gRPC listener: named `<fqdn>:<port>` (what the client asks LDS for), holding an
 * HttpConnectionManager that fetches `routeConfigName` by RDS.
 */
export function apiListener(name: string, routeConfigName: string): Listener {
  return {
    name,
    api_listener: {
      api_listener: typed(EXTENSION_TYPE_URLS.httpConnectionManager, {
        rds: { config_source: adsConfigSource(), route_config_name: routeConfigName },
        http_filters: [routerFilter()],
      }),
    },
  };
}

/** A route configuration whose virtual hosts send every path to one cluster each. */
export function simpleRouteConfiguration(name: string, hosts: Array<{ domains: string[]; cluster: string }>): RouteConfiguration {
  const virtual_hosts: VirtualHost[] = hosts.map((h, i) => ({
    name: `${h.domains[0] ?? 'vh'}-${i}`,
    domains: h.domains,
    routes: [{ match: { prefix: '' }, route: { cluster: h.cluster } }],
  }));
  return { name, virtual_hosts };
}

export interface EdsClusterOptions {
  /** EDS service name when it differs from the cluster name. */
  serviceName?: string;
  lbPolicy?: Cluster['lb_policy'];
  connectTimeoutMs?: number;
  transportSocket?: TransportSocket;
}

/** A cluster whose endpoints come by EDS over ADS. */
export function edsCluster(name: string, options: EdsClusterOptions = {}): Cluster {
  const ms = options.connectTimeoutMs ?? 10_000;
  const cluster: Cluster = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource(), ...(options.serviceName ? { service_name: options.serviceName } : {}) },
    connect_timeout: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 },
    lb_policy: options.lbPolicy ?? 'ROUND_ROBIN',
  };
  if (options.transportSocket) cluster.transport_socket = options.transportSocket;
  return cluster;
}

/**
 * Istio-style upstream mTLS: SNI, Istio ALPN, workload cert and root from SDS over ADS. With `identities`,
 * the peer must also present one of those SPIFFE IDs (Envoy's SAN match on the combined validation context).
 */
export function istioUpstreamTls(sni: string, alpn: readonly string[] = ISTIO_ALPN, identities: readonly string[] = []): TransportSocket {
  const root = { name: SDS_ROOT_SECRET, sds_config: adsConfigSource() };
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: typed(EXTENSION_TYPE_URLS.upstreamTlsContext, {
      sni,
      common_tls_context: {
        alpn_protocols: [...alpn],
        tls_certificate_sds_secret_configs: [{ name: SDS_DEFAULT_SECRET, sds_config: adsConfigSource() }],
        ...(identities.length
          ? {
              combined_validation_context: {
                default_validation_context: { match_typed_subject_alt_names: identities.map((id) => ({ san_type: 'URI', matcher: { exact: id } })) },
                validation_context_sds_secret_config: root,
              },
            }
          : { validation_context_sds_secret_config: root }),
      },
    }),
  };
}

export interface EndpointInput {
  address: string;
  port: number;
  weight?: number;
  health?: HealthStatus;
  /** Becomes filter_metadata["istio"] (e.g. workload name, cluster id). */
  istioMetadata?: Record<string, string>;
  /** Becomes filter_metadata["envoy.transport_socket_match"].tlsMode: which of a cluster's transport sockets applies. */
  tlsMode?: 'istio' | 'disabled';
}

/** String-valued google.protobuf.Struct, as protobufjs's well-known types spell it (camelCase Value fields). */
function stringStruct(values: Record<string, string>): { fields: Record<string, { stringValue: string }> } {
  return { fields: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { stringValue: v }])) };
}

export interface LocalityInput {
  locality: Locality;
  endpoints: EndpointInput[];
  /** Defaults to the sum of the endpoints' weights, so localities balance by endpoint count. */
  weight?: number;
  priority?: number;
}

/** A ClusterLoadAssignment where every locality carries a weight (gRPC clients drop unweighted ones). */
export function clusterLoadAssignment(clusterName: string, localities: LocalityInput[]): ClusterLoadAssignment {
  return {
    cluster_name: clusterName,
    endpoints: localities
      .filter((l) => l.endpoints.length > 0)
      .map((l) => ({
        locality: l.locality,
        load_balancing_weight: { value: l.weight ?? l.endpoints.reduce((s, e) => s + (e.weight ?? 1), 0) },
        ...(l.priority ? { priority: l.priority } : {}),
        lb_endpoints: l.endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          health_status: e.health ?? 'HEALTHY',
          ...(e.weight !== undefined ? { load_balancing_weight: { value: e.weight } } : {}),
          ...(e.istioMetadata || e.tlsMode
            ? {
                metadata: {
                  filter_metadata: {
                    ...(e.tlsMode ? { 'envoy.transport_socket_match': stringStruct({ tlsMode: e.tlsMode }) } : {}),
                    ...(e.istioMetadata ? { istio: stringStruct(e.istioMetadata) } : {}),
                  },
                },
              }
            : {}),
        })),
      })),
  };
}
