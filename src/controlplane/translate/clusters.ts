import type { Cluster, TransportSocket } from '../../xds/index.js';
import {
  EXTENSION_TYPE_URLS,
  ISTIO_ALPN,
  SDS_DEFAULT_SECRET,
  SDS_ROOT_SECRET,
  adsConfigSource,
  edsCluster,
  inboundClusterName,
  istioUpstreamTls,
  outboundClusterName,
  outboundSni,
  typed,
} from '../../xds/index.js';
import type { ServicePort } from '../../registry/model.js';
import type { MeshService } from '../aggregate/index.js';
import type { TrafficPolicy } from '../../api/index.js';
import { durationFromMs, protoDuration } from './durations.js';
import { resourceStruct } from './struct.js';

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
const ALPN_HTTP11 = ['istio-http/1.1', ...ISTIO_ALPN];
/** Istio's ALPNInMeshH2WithMxc: the peer sidecar's inbound picks `h2` and speaks HTTP/2 at once. */
const ALPN_H2 = [...ISTIO_ALPN, 'h2'];

export interface OutboundClusterInput {
  service: MeshService;
  port: ServicePort;
  subset: string;
  policy: TrafficPolicy;
  /** SPIFFE IDs the upstream may present; empty means "any identity from the mesh root". */
  identities: readonly string[];
  /** Proxyless gRPC clients speak plaintext; sidecars always originate mTLS to mesh endpoints. */
  plaintext: boolean;
}

/**
 * `outbound|port|subset|host`: EDS over ADS, the DestinationRule's load balancer, connection pool and
 * outlier detection, and a transport socket per endpoint `tlsMode` (mTLS with Istio's SNI and ALPN to
 * sidecars, plaintext to endpoints without one), as Istio generates.
 */
export function buildOutboundCluster(input: OutboundClusterInput): Cluster {
  const { service, port, subset, policy } = input;
  const name = outboundClusterName(port.port, subset, service.hostname);
  const lb = policy.loadBalancer;
  const cluster = edsCluster(name, {
    lbPolicy: lb?.consistentHash ? 'RING_HASH' : lbPolicy(lb?.simple),
    connectTimeoutMs: msOf(policy.connectionPool?.tcp?.connectTimeout) ?? 10_000,
  }) as Cluster & Record<string, unknown>;

  if (lb?.consistentHash?.minimumRingSize) cluster.ring_hash_lb_config = { minimum_ring_size: lb.consistentHash.minimumRingSize };
  cluster.circuit_breakers = { thresholds: [circuitBreakers(policy)] };
  const http = policy.connectionPool?.http;
  const isHttp = port.protocol === 'HTTP' || port.protocol === 'HTTP2' || port.protocol === 'GRPC';
  // gRPC/HTTP2 ports always, HTTP ports when the DestinationRule asks for h2UpgradePolicy: UPGRADE.
  const h2 = port.protocol === 'HTTP2' || port.protocol === 'GRPC' || (port.protocol === 'HTTP' && http?.h2UpgradePolicy === 'UPGRADE');
  if (isHttp && (http?.maxRequestsPerConnection || http?.idleTimeout || h2)) {
    cluster.typed_extension_protocol_options = httpProtocolOptions(h2, {
      ...(http?.maxRequestsPerConnection ? { max_requests_per_connection: { value: http.maxRequestsPerConnection } } : {}),
      ...(http?.idleTimeout ? { idle_timeout: protoDuration(http.idleTimeout) } : {}),
    });
  }
  const od = policy.outlierDetection;
  if (od) {
    cluster.outlier_detection = {
      ...(od.consecutive5xxErrors !== undefined ? { consecutive_5xx: { value: od.consecutive5xxErrors } } : {}),
      enforcing_consecutive_5xx: { value: od.consecutive5xxErrors ? 100 : 0 },
      ...(od.consecutiveGatewayErrors !== undefined ? { consecutive_gateway_failure: { value: od.consecutiveGatewayErrors } } : {}),
      enforcing_consecutive_gateway_failure: { value: od.consecutiveGatewayErrors ? 100 : 0 },
      enforcing_success_rate: { value: 0 },
      interval: protoDuration(od.interval ?? '10s'),
      base_ejection_time: protoDuration(od.baseEjectionTime ?? '30s'),
      max_ejection_percent: { value: od.maxEjectionPercent ?? 10 },
    };
    // Istio disables Envoy's panic mode unless asked, so ejected endpoints really stop taking traffic.
    cluster.common_lb_config = { healthy_panic_threshold: { value: od.minHealthPercent ?? 0 }, locality_weighted_lb_config: {} };
  } else {
    cluster.common_lb_config = { locality_weighted_lb_config: {} };
  }

  if (!input.plaintext && policy.tls?.mode !== 'DISABLE') {
    const alpn = h2 ? ALPN_H2 : port.protocol === 'HTTP' ? ALPN_HTTP11 : ISTIO_ALPN;
    cluster.transport_socket_matches = [
      { name: 'tlsMode-istio', match: resourceStruct({ tlsMode: 'istio' }), transport_socket: istioUpstreamTls(outboundSni(port.port, subset, service.hostname), alpn, input.identities) },
      { name: 'tlsMode-disabled', match: resourceStruct({}), transport_socket: rawBuffer() },
    ];
  }
  cluster.metadata = {
    filter_metadata: {
      istio: resourceStruct({
        services: [{ host: service.hostname, name: service.name, namespace: service.namespace }],
        ...(subset ? { subset } : {}),
        default_original_port: port.port,
      }),
    },
  };
  return cluster;
}

/** Terminates mTLS for inbound traffic: a mesh client certificate is required (STRICT). */
export function meshDownstreamTls(alpn: readonly string[]): TransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: typed(EXTENSION_TYPE_URLS.downstreamTlsContext, {
      require_client_certificate: { value: true },
      common_tls_context: {
        alpn_protocols: [...alpn],
        tls_certificate_sds_secret_configs: [{ name: SDS_DEFAULT_SECRET, sds_config: adsConfigSource() }],
        combined_validation_context: {
          default_validation_context: {},
          validation_context_sds_secret_config: { name: SDS_ROOT_SECRET, sds_config: adsConfigSource() },
        },
      },
    }),
  };
}

function rawBuffer(): TransportSocket {
  return { name: 'envoy.transport_sockets.raw_buffer', typed_config: typed(EXTENSION_TYPE_URLS.rawBuffer) };
}

/** Envoy's HttpProtocolOptions with an explicit codec: HTTP/2 (prior knowledge on plaintext) or HTTP/1.1. */
function httpProtocolOptions(http2: boolean, common: Record<string, unknown>): Cluster['typed_extension_protocol_options'] {
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(EXTENSION_TYPE_URLS.httpProtocolOptions, {
      common_http_protocol_options: common,
      explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
    }),
  };
}

/**
 * `inbound|port||`: delivers accepted traffic to the app on `appHost:port`, with no circuit-breaker limits
 * (as Istio); gRPC and HTTP/2 ports get HTTP/2 with prior knowledge (h2c), as Istio's inbound clusters for
 * those protocols.
 */
export function buildInboundCluster(port: number, appHost: string, protocol: ServicePort['protocol'] = 'HTTP'): Cluster {
  return {
    name: inboundClusterName(port),
    type: 'STATIC',
    connect_timeout: durationFromMs(10_000),
    lb_policy: 'ROUND_ROBIN',
    circuit_breakers: { thresholds: [circuitBreakers({})] },
    load_assignment: {
      cluster_name: inboundClusterName(port),
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: appHost, port_value: port } } } }] }],
    },
    ...(protocol === 'GRPC' || protocol === 'HTTP2' ? { typed_extension_protocol_options: httpProtocolOptions(true, {}) } : {}),
  };
}

/** Traffic to destinations the mesh does not know goes where the app sent it (REGISTRY_ONLY would drop it). */
export function buildPassthroughClusters(): Cluster[] {
  return [
    // Unlimited as Istio sends them; Envoy's defaults would cap passthrough at 1024 connections.
    { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: durationFromMs(10_000), circuit_breakers: { thresholds: [circuitBreakers({})] } },
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: durationFromMs(10_000) },
  ];
}

function lbPolicy(simple: string | undefined): Cluster['lb_policy'] {
  switch (simple) {
    case 'LEAST_REQUEST':
    case 'LEAST_CONN':
      return 'LEAST_REQUEST';
    case 'RANDOM':
      return 'RANDOM';
    default:
      return 'ROUND_ROBIN';
  }
}

/** Istio sets every limit to the maximum unless a DestinationRule asks for less; Envoy's own defaults (e.g. 3 concurrent retries) would turn bursts of failures into 503s. */
const UNLIMITED = 4294967295;

function circuitBreakers(policy: TrafficPolicy): Record<string, unknown> {
  const tcp = policy.connectionPool?.tcp;
  const http = policy.connectionPool?.http;
  return {
    max_connections: { value: tcp?.maxConnections || UNLIMITED },
    max_pending_requests: { value: http?.http1MaxPendingRequests || UNLIMITED },
    max_requests: { value: http?.http2MaxRequests || UNLIMITED },
    max_retries: { value: http?.maxRetries || UNLIMITED },
    track_remaining: true,
  };
}

function msOf(d: string | undefined): number | undefined {
  const p = protoDuration(d);
  return p ? p.seconds * 1000 + p.nanos / 1e6 : undefined;
}
