import type { MeshService } from '../aggregate/index.js';
import type { ConfigIndex } from './config-index.js';
import { resolveHost } from '../../api/index.js';
import type { Destination, HTTPRoute, TrafficPolicy } from '../../api/index.js';
import type { HeaderOps, StringMatch } from './config.js';
import { durationFromMs, protoDuration } from './durations.js';
import { effectivePolicy } from './config-index.js';
import { resourceStruct } from './struct.js';

type Obj = Record<string, unknown>;

export const FAULT_FILTER = 'envoy.filters.http.fault';
export const TYPE_HTTP_FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';

/** Who is asking: routes with `sourceLabels`/`sourceNamespace` matches apply only to matching callers. */
export interface RouteCaller {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }];

/**
 * Istio's default retry policy (`retry.DefaultPolicy`): 2 retries on connect failures, refused streams,
 * `unavailable`, `cancelled` and a 503, preferring hosts not tried yet. With consistent hashing the
 * previous-hosts predicate is left out, so a retry stays on the hashed host (`DefaultConsistentHashPolicy`).
 */
function defaultRetry(consistentHash: boolean): Obj {
  return {
    retry_on: DEFAULT_RETRY_ON,
    num_retries: { value: 2 },
    retriable_status_codes: [503],
    ...(consistentHash ? {} : { retry_host_predicate: PREVIOUS_HOSTS }),
    host_selection_retry_max_attempts: 5,
  };
}

/** Outbound cluster names, as `outbound|port|subset|fqdn`. */
export function outboundCluster(port: number, subset: string, hostname: string): string {
  return `outbound|${port}|${subset}|${hostname}`;
}

/**
 * The names a service answers to from a proxy in `callerNamespace`, as the DNS search path lets apps
 * write them: FQDN, `name.ns.svc`, `name.ns`, the short name (same namespace only), and the VIPs, each
 * with and without `:port`.
 */
export function serviceDomains(svc: MeshService, port: number, callerNamespace: string, domainSuffix: string): string[] {
  const names = [svc.hostname];
  const k8sSuffix = `.svc.${domainSuffix}`;
  if (svc.hostname.endsWith(k8sSuffix)) {
    names.push(`${svc.name}.${svc.namespace}.svc`, `${svc.name}.${svc.namespace}`);
    if (svc.namespace === callerNamespace) names.push(svc.name);
  }
  for (const def of svc.definitions.values()) if (def.vip) names.push(def.vip);
  const unique = [...new Set(names)];
  return unique.flatMap((n) => [n, `${n}:${port}`]);
}

/** The route configuration a sidecar uses for outbound HTTP on `port` (RDS name = the port). */
export function buildOutboundRouteConfiguration(
  name: string,
  port: number,
  services: readonly MeshService[],
  index: ConfigIndex,
  caller: RouteCaller,
  options: { allowAny?: boolean } = {},
): Obj {
  const virtualHosts = services.map((svc) => ({
    name: `${svc.hostname}:${port}`,
    domains: serviceDomains(svc, port, caller.namespace, index.domainSuffix),
    routes: buildRoutes(svc, port, index, caller),
    include_request_attempt_count: true,
  }));
  if (options.allowAny !== false) {
    virtualHosts.push({
      name: 'allow_any',
      domains: ['*'],
      routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: durationFromMs(0) } }] as Obj[],
      include_request_attempt_count: true,
    });
  }
  return { name, virtual_hosts: virtualHosts, validate_clusters: { value: false } };
}

/** Routes for one service on one port: the mesh VirtualService's HTTP routes, or the default route. */
export function buildRoutes(svc: MeshService, port: number, index: ConfigIndex, caller: RouteCaller): Obj[] {
  const vs = index.virtualServiceFor(svc.hostname, caller.namespace);
  const vsNamespace = vs?.metadata.namespace ?? 'default';
  const routes: Obj[] = [];
  for (const [i, http] of (vs?.spec?.http ?? []).entries()) {
    const matches = (http.match ?? [{}]).filter(
      (m) =>
        (m.port === undefined || m.port === port) &&
        (!m.sourceLabels || Object.entries(m.sourceLabels).every(([k, v]) => caller.labels[k] === v)) &&
        (!m.sourceNamespace || m.sourceNamespace === caller.namespace) &&
        (!m.gateways || m.gateways.includes('mesh')),
    );
    if (matches.length === 0) continue;
    const action = routeAction(http, svc, port, index, vsNamespace, caller.namespace);
    const configPath = `/apis/networking.istio.io/v1/namespaces/${vsNamespace}/virtual-service/${vs!.metadata.name}`;
    for (const m of matches) {
      routes.push({
        name: http.name ?? `${vs!.metadata.name}.${i}`,
        match: routeMatch(m),
        ...action,
        metadata: { filter_metadata: { istio: resourceStruct({ config: configPath }) } },
      });
    }
  }
  if (routes.length === 0) {
    const hash = hashPolicy(svc.hostname, '', port, index, caller.namespace, svc.namespace);
    routes.push({
      name: 'default',
      match: { prefix: '/' },
      route: { cluster: outboundCluster(port, '', svc.hostname), timeout: durationFromMs(0), retry_policy: defaultRetry(hash.hash_policy !== undefined), ...hash },
    });
  }
  return routes;
}

function routeMatch(m: NonNullable<HTTPRoute['match']>[number]): Obj {
  const out: Obj = {};
  const uri = m.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = uri?.prefix ?? '/';
  if (m.ignoreUriCase) out.case_sensitive = { value: false };
  const headers: Obj[] = [];
  for (const [name, sm] of Object.entries(m.headers ?? {})) headers.push(headerMatcher(name, sm, false));
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) headers.push(headerMatcher(name, sm, true));
  if (m.method) headers.push(headerMatcher(':method', m.method, false));
  if (m.authority) headers.push(headerMatcher(':authority', m.authority, false));
  if (headers.length) out.headers = headers;
  const query = Object.entries(m.queryParams ?? {}).map(([name, sm]) => ({ name, string_match: stringMatcher(sm) }));
  if (query.length) out.query_parameters = query;
  return out;
}

function headerMatcher(name: string, sm: StringMatch, invert: boolean): Obj {
  // An empty match means "header present", as in Istio.
  const isEmpty = sm.exact === undefined && sm.prefix === undefined && sm.regex === undefined;
  return { name, ...(isEmpty ? { present_match: true } : { string_match: stringMatcher(sm) }), ...(invert ? { invert_match: true } : {}) };
}

function stringMatcher(sm: StringMatch): Obj {
  if (sm.exact !== undefined) return { exact: sm.exact };
  if (sm.prefix !== undefined) return { prefix: sm.prefix };
  if (sm.regex !== undefined) return { safe_regex: { regex: sm.regex } };
  return { prefix: '' };
}

function routeAction(http: HTTPRoute, svc: MeshService, port: number, index: ConfigIndex, vsNamespace: string, callerNamespace: string): Obj {
  const headerOps = headerOperations(http.headers?.request, http.headers?.response);
  const perFilter = http.fault ? { typed_per_filter_config: { [FAULT_FILTER]: faultConfig(http.fault) } } : {};
  if (http.redirect) {
    return {
      redirect: {
        ...(http.redirect.uri ? { path_redirect: http.redirect.uri } : {}),
        ...(http.redirect.authority ? { host_redirect: http.redirect.authority } : {}),
        response_code: redirectCode(http.redirect.redirectCode),
      },
      ...headerOps,
    };
  }
  if (http.directResponse) {
    const body = http.directResponse.body?.string;
    return { direct_response: { status: http.directResponse.status, ...(body !== undefined ? { body: { inline_string: body } } : {}) }, ...headerOps, ...perFilter };
  }
  const dests = http.route ?? [];
  const cluster = (d: Destination) => {
    const host = resolveHost(d.host, vsNamespace, index.domainSuffix);
    return outboundCluster(d.port?.number ?? port, d.subset ?? '', host);
  };
  const route: Obj = {};
  const weighted = dests.filter((d) => (d.weight ?? (dests.length === 1 ? 100 : 0)) > 0);
  if (weighted.length === 1) route.cluster = cluster(weighted[0]!.destination);
  else {
    route.weighted_clusters = {
      clusters: weighted.map((d) => ({ name: cluster(d.destination), weight: { value: d.weight ?? 0 }, ...headerOperations(d.headers?.request, d.headers?.response) })),
    };
  }
  route.timeout = protoDuration(http.timeout) ?? durationFromMs(0);
  if (http.rewrite?.uri !== undefined) route.prefix_rewrite = http.rewrite.uri;
  if (http.rewrite?.authority !== undefined) route.host_rewrite_literal = http.rewrite.authority;
  const mirror = http.mirror;
  if (mirror) {
    const host = resolveHost(mirror.host, vsNamespace, index.domainSuffix);
    const pct = http.mirrorPercentage?.value ?? 100;
    route.request_mirror_policies = [
      { cluster: outboundCluster(mirror.port?.number ?? port, mirror.subset ?? '', host), runtime_fraction: { default_value: fraction(pct) } },
    ];
  }
  const first = weighted[0]?.destination;
  if (first) {
    const host = resolveHost(first.host, vsNamespace, index.domainSuffix);
    Object.assign(route, hashPolicy(host, first.subset ?? '', first.port?.number ?? port, index, callerNamespace, host.split('.')[1] ?? vsNamespace));
  }
  const retry = retryPolicy(http.retries, route.hash_policy !== undefined);
  if (retry) route.retry_policy = retry;
  return { route, ...headerOps, ...perFilter };
}

/**
 * Istio's `retry.ConvertPolicy`: no `retries` gives the default policy; `attempts: 0` gives no policy at
 * all; otherwise the default with `attempts`, and `retryOn` (if set) replacing both the conditions and the
 * status codes. `retryOn` mixes Envoy conditions with bare status codes (`503`), which Envoy wants apart.
 */
function retryPolicy(r: HTTPRoute['retries'], consistentHash: boolean): Obj | undefined {
  const out = defaultRetry(consistentHash);
  if (!r) return out;
  if (r.attempts <= 0) return undefined;
  out.num_retries = { value: r.attempts };
  if (r.retryOn) {
    const parts = r.retryOn.split(',').map((s) => s.trim()).filter(Boolean);
    const isCode = (p: string): boolean => /^\d{3}$/.test(p) && Number(p) >= 100 && Number(p) <= 599;
    const codes = parts.filter(isCode).map(Number);
    const conditions = parts.filter((p) => !isCode(p));
    if (codes.length && !conditions.includes('retriable-status-codes')) conditions.push('retriable-status-codes');
    out.retry_on = conditions.join(',');
    if (codes.length) out.retriable_status_codes = codes;
    else delete out.retriable_status_codes;
  }
  if (r.perTryTimeout) out.per_try_timeout = protoDuration(r.perTryTimeout);
  if (r.retryRemoteLocalities) {
    out.retry_priority = {
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: 2 },
    };
  }
  return out;
}

function faultConfig(f: NonNullable<HTTPRoute['fault']>): Obj {
  return {
    '@type': TYPE_HTTP_FAULT,
    ...(f.delay ? { delay: { fixed_delay: protoDuration(f.delay.fixedDelay), percentage: fraction(f.delay.percentage?.value ?? 100) } } : {}),
    ...(f.abort?.httpStatus ? { abort: { http_status: f.abort.httpStatus, percentage: fraction(f.abort.percentage?.value ?? 100) } } : {}),
  };
}

/** Istio percentages are doubles 0..100; Envoy wants an integer fraction. */
function fraction(percent: number): Obj {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

function redirectCode(code: number | undefined): string {
  switch (code) {
    case 302:
      return 'FOUND';
    case 303:
      return 'SEE_OTHER';
    case 307:
      return 'TEMPORARY_REDIRECT';
    case 308:
      return 'PERMANENT_REDIRECT';
    default:
      return 'MOVED_PERMANENTLY';
  }
}

function headerOperations(request: HeaderOps | undefined, response: HeaderOps | undefined): Obj {
  const out: Obj = {};
  const toAdd = (ops: HeaderOps) => [
    ...Object.entries(ops.set ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...Object.entries(ops.add ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  if (request) {
    const add = toAdd(request);
    if (add.length) out.request_headers_to_add = add;
    if (request.remove?.length) out.request_headers_to_remove = request.remove;
  }
  if (response) {
    const add = toAdd(response);
    if (add.length) out.response_headers_to_add = add;
    if (response.remove?.length) out.response_headers_to_remove = response.remove;
  }
  return out;
}

/** consistentHash in the destination's DestinationRule becomes the route's hash policy. */
function hashPolicy(host: string, subset: string, port: number, index: ConfigIndex, callerNamespace: string, serviceNamespace: string): Obj {
  const rule = index.destinationRuleFor(host, callerNamespace, serviceNamespace);
  const policy: TrafficPolicy = effectivePolicy(rule?.spec, subset, port);
  const ch = policy.loadBalancer?.consistentHash;
  if (!ch) return {};
  if (ch.httpHeaderName) return { hash_policy: [{ header: { header_name: ch.httpHeaderName } }] };
  if (ch.httpCookie) {
    return { hash_policy: [{ cookie: { name: ch.httpCookie.name, ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}), ...(ch.httpCookie.ttl ? { ttl: protoDuration(ch.httpCookie.ttl) } : {}) } }] };
  }
  if (ch.useSourceIp) return { hash_policy: [{ connection_properties: { source_ip: true } }] };
  if (ch.httpQueryParameterName) return { hash_policy: [{ query_parameter: { name: ch.httpQueryParameterName } }] };
  return {};
}
