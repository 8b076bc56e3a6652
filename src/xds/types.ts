/**
 * Minimal hand-written shapes of the Envoy v3 resources crossmesh builds and reads, as plain objects
 * with proto field names (see any.ts for the conversion rules). They cover the fields we use; anything
 * else the protos define is still accepted by encodeResource and returned by decodeResource.
 */

export interface UInt32Value {
  value: number;
}

export interface Duration {
  seconds?: number;
  nanos?: number;
}

/** A nested Any written Envoy-style: the type URL under `@type`, the message's fields beside it. */
export interface TypedConfig {
  '@type': string;
  [field: string]: unknown;
}

export interface SocketAddress {
  address: string;
  port_value?: number;
  protocol?: 'TCP' | 'UDP';
}

export interface Address {
  socket_address?: SocketAddress;
}

export interface Locality {
  region?: string;
  zone?: string;
  sub_zone?: string;
}

/**
 * google.protobuf.Struct as protobufjs represents it. Unlike every other message, its fields are camelCase:
 * protobufjs always serves struct.proto from its bundled, camelCased definition.
 */
export interface StructValue {
  fields?: Record<string, ProtoValue>;
}

export interface ProtoValue {
  nullValue?: 'NULL_VALUE';
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructValue;
  listValue?: { values?: ProtoValue[] };
}

export interface Metadata {
  filter_metadata?: Record<string, StructValue>;
}

export interface ConfigSource {
  ads?: Record<string, never>;
  resource_api_version?: 'AUTO' | 'V3';
  initial_fetch_timeout?: Duration;
}

export interface TransportSocket {
  name: string;
  typed_config?: TypedConfig;
}

// Listeners ---------------------------------------------------------------------------------------

export interface FilterChainMatch {
  destination_port?: UInt32Value;
  prefix_ranges?: Array<{ address_prefix: string; prefix_len?: UInt32Value }>;
  server_names?: string[];
  transport_protocol?: string;
  application_protocols?: string[];
}

export interface NetworkFilter {
  name: string;
  typed_config?: TypedConfig;
}

export interface FilterChain {
  name?: string;
  filter_chain_match?: FilterChainMatch;
  filters?: NetworkFilter[];
  transport_socket?: TransportSocket;
}

export interface ListenerFilter {
  name: string;
  typed_config?: TypedConfig;
}

export interface Listener {
  name: string;
  address?: Address;
  /** More addresses the same listener binds (Istio: `::` beside `0.0.0.0` for dual-stack capture). */
  additional_addresses?: Array<{ address: Address }>;
  filter_chains?: FilterChain[];
  default_filter_chain?: FilterChain;
  listener_filters?: ListenerFilter[];
  use_original_dst?: { value: boolean };
  /** Proxyless gRPC listeners carry their HttpConnectionManager here instead of filter chains. */
  api_listener?: { api_listener: TypedConfig };
  traffic_direction?: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
}

export interface HttpFilter {
  name: string;
  typed_config?: TypedConfig;
}

export interface HttpConnectionManager {
  stat_prefix?: string;
  codec_type?: 'AUTO' | 'HTTP1' | 'HTTP2';
  rds?: { config_source: ConfigSource; route_config_name: string };
  route_config?: RouteConfiguration;
  http_filters?: HttpFilter[];
  /** Upgrade types (e.g. `websocket`) the manager lets through; `enabled` defaults to true. */
  upgrade_configs?: Array<{ upgrade_type: string; enabled?: { value: boolean } }>;
  stream_idle_timeout?: Duration;
}

export interface TcpProxy {
  stat_prefix: string;
  cluster?: string;
  weighted_clusters?: { clusters: Array<{ name: string; weight: number }> };
}

// Routes ------------------------------------------------------------------------------------------

export interface HeaderMatcher {
  name: string;
  string_match?: { exact?: string; prefix?: string; suffix?: string; contains?: string; safe_regex?: { regex: string } };
  present_match?: boolean;
  invert_match?: boolean;
}

export interface RouteMatch {
  prefix?: string;
  path?: string;
  safe_regex?: { regex: string };
  headers?: HeaderMatcher[];
  case_sensitive?: { value: boolean };
}

export interface WeightedCluster {
  clusters: Array<{ name: string; weight: UInt32Value }>;
}

export interface RouteAction {
  cluster?: string;
  weighted_clusters?: WeightedCluster;
  timeout?: Duration;
  retry_policy?: {
    retry_on?: string;
    num_retries?: UInt32Value;
    per_try_timeout?: Duration;
  };
  prefix_rewrite?: string;
  host_rewrite_literal?: string;
}

export interface Route {
  name?: string;
  match: RouteMatch;
  route?: RouteAction;
  direct_response?: { status: number; body?: { inline_string?: string } };
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes?: Route[];
}

export interface RouteConfiguration {
  name: string;
  virtual_hosts?: VirtualHost[];
  validate_clusters?: { value: boolean };
}

// Clusters and endpoints --------------------------------------------------------------------------

export interface Cluster {
  name: string;
  type?: 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
  eds_cluster_config?: { eds_config?: ConfigSource; service_name?: string };
  connect_timeout?: Duration;
  lb_policy?: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RING_HASH' | 'RANDOM' | 'MAGLEV' | 'CLUSTER_PROVIDED';
  load_assignment?: ClusterLoadAssignment;
  transport_socket?: TransportSocket;
  transport_socket_matches?: Array<{ name: string; match?: StructValue; transport_socket?: TransportSocket }>;
  typed_extension_protocol_options?: Record<string, TypedConfig>;
  metadata?: Metadata;
  common_lb_config?: Record<string, unknown>;
  outlier_detection?: Record<string, unknown>;
  circuit_breakers?: { thresholds?: Array<Record<string, unknown>> };
}

export type HealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

export interface LbEndpoint {
  endpoint?: { address?: Address; hostname?: string };
  health_status?: HealthStatus;
  metadata?: Metadata;
  load_balancing_weight?: UInt32Value;
}

export interface LocalityLbEndpoints {
  locality?: Locality;
  lb_endpoints?: LbEndpoint[];
  /** gRPC clients ignore a locality without a weight; always set it. */
  load_balancing_weight?: UInt32Value;
  priority?: number;
  metadata?: Metadata;
}

export interface ClusterLoadAssignment {
  cluster_name: string;
  endpoints?: LocalityLbEndpoints[];
}

// TLS and secrets ---------------------------------------------------------------------------------

/** Envoy's DataSource; PEM is carried as inline_bytes (Buffer) or inline_string. */
export interface DataSource {
  filename?: string;
  inline_bytes?: Uint8Array;
  inline_string?: string;
}

export interface TlsCertificate {
  certificate_chain?: DataSource;
  private_key?: DataSource;
}

export interface CertificateValidationContext {
  trusted_ca?: DataSource;
  match_typed_subject_alt_names?: Array<{ san_type: 'URI' | 'DNS' | 'EMAIL' | 'IP_ADDRESS'; matcher: { exact?: string; prefix?: string } }>;
}

export interface SdsSecretConfig {
  name: string;
  sds_config?: ConfigSource;
}

export interface CommonTlsContext {
  tls_certificates?: TlsCertificate[];
  tls_certificate_sds_secret_configs?: SdsSecretConfig[];
  validation_context?: CertificateValidationContext;
  validation_context_sds_secret_config?: SdsSecretConfig;
  combined_validation_context?: {
    default_validation_context: CertificateValidationContext;
    validation_context_sds_secret_config: SdsSecretConfig;
  };
  alpn_protocols?: string[];
}

export interface UpstreamTlsContext {
  common_tls_context?: CommonTlsContext;
  sni?: string;
}

export interface DownstreamTlsContext {
  common_tls_context?: CommonTlsContext;
  require_client_certificate?: { value: boolean };
}

export interface Secret {
  name: string;
  tls_certificate?: TlsCertificate;
  validation_context?: CertificateValidationContext;
}

// Istio DNS name table ----------------------------------------------------------------------------

export interface NameInfo {
  ips?: string[];
  registry?: string;
  shortname?: string;
  namespace?: string;
}

export interface NameTable {
  table?: Record<string, NameInfo>;
}

// Node --------------------------------------------------------------------------------------------

/** The node identity a proxy sends in its first DiscoveryRequest, metadata as plain JSON. */
export interface XdsNode {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  locality?: Locality;
  user_agent_name?: string;
}
