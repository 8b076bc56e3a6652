/**
 * Cluster and ClusterLoadAssignment → immutable upstream settings: load balancer, circuit breakers, outlier
 * detection, connection pool limits, the TLS to originate per endpoint (transport_socket_matches), and the
 * endpoints grouped by priority and locality.
 */
import type { ClusterSettings, EndpointSpec, LocalityGroup, OutlierSettings, UpstreamTls } from '../upstream/index.js';
import type { Decoded, Problems } from './config-util.js';
import { durationMs, structJson, wrapped } from './config-util.js';

type Obj = Decoded;

const TLS_SOCKET = 'envoy.transport_sockets.tls';
const RAW_SOCKET = 'envoy.transport_sockets.raw_buffer';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const LB_POLICIES = new Set(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'CLUSTER_PROVIDED']);

/** Reads the SDS/inline TLS settings we can honour; problems for anything else. */
export function compileUpstreamTls(ts: Obj | undefined, problems: Problems, path: string): UpstreamTls | null | undefined {
  if (!ts) return undefined;
  if (ts.name === RAW_SOCKET || (ts.typed_config?.['@type'] ?? '').endsWith('RawBuffer')) return null;
  if (ts.name !== TLS_SOCKET && ts.typed_config?.['@type'] !== UPSTREAM_TLS) {
    problems.add(`${path}.name`, `unsupported transport socket ${ts.name}`);
    return null;
  }
  const tc: Obj = ts.typed_config ?? {};
  const common: Obj = tc.common_tls_context ?? {};
  checkSecretNames(common, problems, `${path}.typed_config.common_tls_context`);
  const validation: Obj = common.combined_validation_context?.default_validation_context ?? common.validation_context ?? {};
  const sans = ((validation.match_typed_subject_alt_names ?? []) as Obj[]).map((m, i) => {
    if (m.san_type && m.san_type !== 'URI') problems.add(`${path}.typed_config.common_tls_context.match_typed_subject_alt_names[${i}].san_type`, `only URI SANs are checked, got ${m.san_type}`);
    return { exact: m.matcher?.exact as string | undefined, prefix: m.matcher?.prefix as string | undefined };
  });
  return { sni: String(tc.sni ?? ''), alpn: (common.alpn_protocols ?? []) as string[], sans };
}

/** Istio sends the workload certificate as SDS `default` and the roots as `ROOTCA`; those are what we have. */
export function checkSecretNames(common: Obj, problems: Problems, path: string): void {
  for (const [i, s] of ((common.tls_certificate_sds_secret_configs ?? []) as Obj[]).entries()) {
    if (s.name !== 'default') problems.add(`${path}.tls_certificate_sds_secret_configs[${i}].name`, `unknown secret ${s.name} (only "default")`);
  }
  const root = common.combined_validation_context?.validation_context_sds_secret_config ?? common.validation_context_sds_secret_config;
  if (root && root.name !== 'ROOTCA') problems.add(`${path}.validation_context_sds_secret_config.name`, `unknown secret ${root.name} (only "ROOTCA")`);
  if (common.tls_certificates?.length) problems.add(`${path}.tls_certificates`, 'inline certificates are not supported; use SDS "default"');
}

export function compileCluster(c: Obj, problems: Problems): ClusterSettings {
  const type = String(c.type ?? 'STATIC');
  if (!['STATIC', 'EDS', 'ORIGINAL_DST'].includes(type)) problems.add('type', `unsupported discovery type ${type}`);
  const lbPolicy = String(c.lb_policy ?? 'ROUND_ROBIN');
  if (!LB_POLICIES.has(lbPolicy)) problems.add('lb_policy', `unsupported load balancer ${lbPolicy}`);

  const thresholds: Obj = (c.circuit_breakers?.thresholds ?? []).find((t: Obj) => !t.priority || t.priority === 'DEFAULT') ?? {};
  const protocolOptions: Obj = c.typed_extension_protocol_options?.[HTTP_OPTIONS] ?? {};
  const httpOptions: Obj = protocolOptions.common_http_protocol_options ?? {};
  if (protocolOptions.use_downstream_protocol_config || protocolOptions.auto_config) {
    problems.add(`typed_extension_protocol_options.${HTTP_OPTIONS}`, 'only explicit_http_config is supported');
  }

  const od: Obj | undefined = c.outlier_detection;
  let outlier: OutlierSettings | undefined;
  if (od) {
    outlier = {
      consecutive5xx: wrapped(od.consecutive_5xx, 5),
      enforcing5xx: wrapped(od.enforcing_consecutive_5xx, 100),
      consecutiveGateway: wrapped(od.consecutive_gateway_failure, 5),
      enforcingGateway: wrapped(od.enforcing_consecutive_gateway_failure, 0),
      intervalMs: durationMs(od.interval, 10_000),
      baseEjectionMs: durationMs(od.base_ejection_time, 30_000),
      maxEjectionMs: durationMs(od.max_ejection_time, 300_000),
      maxEjectionPercent: wrapped(od.max_ejection_percent, 10),
    };
  }
  const tlsMatches = ((c.transport_socket_matches ?? []) as Obj[]).map((m, i) => ({
    match: structJson(m.match),
    tls: compileUpstreamTls(m.transport_socket, problems, `transport_socket_matches[${i}].transport_socket`) ?? null,
  }));
  const settings: ClusterSettings = {
    name: String(c.name),
    type: type as ClusterSettings['type'],
    lbPolicy: lbPolicy as ClusterSettings['lbPolicy'],
    connectTimeoutMs: durationMs(c.connect_timeout, 5_000),
    maxConnections: wrapped(thresholds.max_connections, 1024),
    maxPendingRequests: wrapped(thresholds.max_pending_requests, 1024),
    maxRequests: wrapped(thresholds.max_requests, 1024),
    maxRetries: wrapped(thresholds.max_retries, 3),
    maxRequestsPerConnection: wrapped(httpOptions.max_requests_per_connection, 0),
    idleTimeoutMs: durationMs(httpOptions.idle_timeout, 3_600_000),
    http2: protocolOptions.explicit_http_config?.http2_protocol_options !== undefined,
    outlier,
    panicThreshold: wrapped(c.common_lb_config?.healthy_panic_threshold, 50),
    ringSize: Math.max(1, Math.min(8_388_608, Number(c.ring_hash_lb_config?.minimum_ring_size?.value ?? c.ring_hash_lb_config?.minimum_ring_size ?? 1024))),
    tlsMatches,
    defaultTls: compileUpstreamTls(c.transport_socket, problems, 'transport_socket') ?? null,
    service: serviceOf(c),
  };
  return settings;
}

/** The Istio service a cluster stands for, for telemetry (from metadata, else the cluster name). */
function serviceOf(c: Obj): { host: string; name: string; namespace: string } | undefined {
  const istio = structJson(c.metadata?.filter_metadata?.istio);
  const s = (istio.services as Obj[] | undefined)?.[0];
  if (s) return { host: String(s.host), name: String(s.name), namespace: String(s.namespace) };
  const parts = String(c.name).split('|');
  if (parts.length === 4 && parts[3]) {
    const [name, namespace] = parts[3].split('.');
    return { host: parts[3], name: name ?? '', namespace: namespace ?? '' };
  }
  return undefined;
}

/** ClusterLoadAssignment (or a STATIC cluster's load_assignment) → locality groups. */
export function compileLoadAssignment(cla: Obj | undefined, problems: Problems, at = ''): LocalityGroup[] {
  const groups: LocalityGroup[] = [];
  for (const [i, l] of ((cla?.endpoints ?? []) as Obj[]).entries()) {
    const loc = l.locality ?? {};
    const endpoints: EndpointSpec[] = [];
    for (const [j, e] of ((l.lb_endpoints ?? []) as Obj[]).entries()) {
      const sa = e.endpoint?.address?.socket_address;
      if (!sa?.address || !sa.port_value) {
        problems.add(`${at}endpoints[${i}].lb_endpoints[${j}].endpoint.address`, 'needs a socket address with a port');
        continue;
      }
      const tsm = structJson(e.metadata?.filter_metadata?.['envoy.transport_socket_match']);
      const istio = structJson(e.metadata?.filter_metadata?.istio);
      endpoints.push({
        address: String(sa.address),
        port: Number(sa.port_value),
        health: String(e.health_status ?? 'UNKNOWN'),
        weight: Math.max(1, wrapped(e.load_balancing_weight, 1)),
        transportMatch: tsm,
        workload: typeof istio.workload === 'string' ? istio.workload : undefined,
        cluster: typeof istio.cluster === 'string' ? istio.cluster : undefined,
      });
    }
    groups.push({
      locality: [loc.region ?? '', loc.zone ?? '', loc.sub_zone ?? ''].join('/'),
      priority: Number(l.priority ?? 0),
      weight: l.load_balancing_weight ? wrapped(l.load_balancing_weight, 1) : 1,
      endpoints,
    });
  }
  return groups;
}
