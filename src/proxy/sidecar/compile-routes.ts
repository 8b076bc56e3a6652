/**
 * RouteConfiguration → precompiled route table: virtual hosts indexed by domain (exact, then longest
 * suffix wildcard, then longest prefix wildcard, then `*`, as Envoy picks them), routes with their matchers
 * built once so that a request costs string compares, never parsing.
 */
import type { Decoded, Problems } from './config-util.js';
import { durationMs, fraction, fullMatchRegex, wrapped } from './config-util.js';

type Obj = Decoded;

export interface StringMatcher {
  (value: string): boolean;
}

export interface HeaderMatch {
  /** Lower-case header name; pseudo headers `:method`, `:authority`, `:path`, `:scheme` are understood. */
  name: string;
  present?: boolean;
  match?: StringMatcher;
  invert: boolean;
}

export interface QueryMatch {
  name: string;
  present?: boolean;
  match?: StringMatcher;
}

export interface HeaderValueOption {
  key: string;
  value: string;
  append: boolean;
}

export interface HeaderOps {
  add: HeaderValueOption[];
  remove: string[];
}

export interface RetryPolicy {
  on5xx: boolean;
  gatewayError: boolean;
  connectFailure: boolean;
  reset: boolean;
  retriable4xx: boolean;
  unavailable: boolean;
  cancelled: boolean;
  deadlineExceeded: boolean;
  resourceExhausted: boolean;
  retriableCodes: ReadonlySet<number>;
  numRetries: number;
  perTryTimeoutMs: number;
  previousHosts: boolean;
  hostSelectionAttempts: number;
}

export type HashPolicy =
  | { kind: 'header'; name: string; terminal: boolean }
  | { kind: 'cookie'; name: string; terminal: boolean }
  | { kind: 'source-ip'; terminal: boolean }
  | { kind: 'query'; name: string; terminal: boolean };

export interface WeightedTarget {
  name: string;
  weight: number;
  requestOps?: HeaderOps;
  responseOps?: HeaderOps;
}

export interface Fault {
  delayMs: number;
  delayFraction: number;
  abortStatus: number;
  abortFraction: number;
}

export interface CompiledRoute {
  name: string;
  kind: 'prefix' | 'path' | 'regex';
  /** Lower-cased when case-insensitive. */
  value: string;
  regex?: RegExp;
  caseSensitive: boolean;
  headers: HeaderMatch[];
  query: QueryMatch[];
  action:
    | {
        type: 'route';
        cluster?: string;
        weighted?: WeightedTarget[];
        totalWeight: number;
        timeoutMs: number;
        retry?: RetryPolicy;
        prefixRewrite?: string;
        hostRewrite?: string;
        hash: HashPolicy[];
        mirrors: Array<{ cluster: string; fraction: number }>;
        /** Per-route upgrade_configs: override the connection manager's for the types they name. */
        upgrades?: ReadonlyMap<string, boolean>;
        /** Route idle_timeout: overrides the connection manager's stream_idle_timeout. */
        idleTimeoutMs?: number;
      }
    | { type: 'direct'; status: number; body: string }
    | { type: 'redirect'; status: number; host?: string; path?: string; scheme?: string };
  requestOps: HeaderOps;
  responseOps: HeaderOps;
  fault?: Fault;
}

export interface CompiledVirtualHost {
  name: string;
  routes: CompiledRoute[];
  includeAttemptCount: boolean;
  requestOps: HeaderOps;
  responseOps: HeaderOps;
}

export interface RouteTable {
  name: string;
  exact: Map<string, CompiledVirtualHost>;
  /** `*.example.com` → suffix `.example.com`, longest first. */
  suffix: Array<[string, CompiledVirtualHost]>;
  /** `example.*` → prefix `example.`, longest first. */
  prefix: Array<[string, CompiledVirtualHost]>;
  any?: CompiledVirtualHost;
}

const FAULT_FILTER = 'envoy.filters.http.fault';
const NO_OPS: HeaderOps = Object.freeze({ add: [], remove: [] }) as HeaderOps;

const REDIRECT_CODES: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'connect-failure', 'reset', 'retriable-4xx', 'retriable-status-codes', 'refused-stream',
  'unavailable', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'retriable-headers', 'envoy-ratelimited',
  'reset-before-request', 'http3-post-connect-failure',
]);

/** Compiles one RouteConfiguration (RDS or an HCM's inline route_config); problems name the field. */
export function compileRouteTable(rc: Obj, problems: Problems, at = ''): RouteTable {
  const table: RouteTable = { name: String(rc.name ?? ''), exact: new Map(), suffix: [], prefix: [] };
  (rc.virtual_hosts ?? []).forEach((vh: Obj, i: number) => {
    const path = `${at}virtual_hosts[${i}]`;
    const compiled: CompiledVirtualHost = {
      name: String(vh.name ?? ''),
      routes: (vh.routes ?? []).map((r: Obj, j: number) => compileRoute(r, problems, `${path}.routes[${j}]`)),
      includeAttemptCount: Boolean(vh.include_request_attempt_count),
      requestOps: headerOps(vh.request_headers_to_add, vh.request_headers_to_remove),
      responseOps: headerOps(vh.response_headers_to_add, vh.response_headers_to_remove),
    };
    for (const d of (vh.domains ?? []) as string[]) {
      const domain = d.toLowerCase();
      if (domain === '*') table.any ??= compiled;
      else if (domain.startsWith('*')) table.suffix.push([domain.slice(1), compiled]);
      else if (domain.endsWith('*')) table.prefix.push([domain.slice(0, -1), compiled]);
      else if (table.exact.has(domain)) problems.add(`${path}.domains`, `domain ${d} is already served by virtual host ${table.exact.get(domain)!.name}`);
      else table.exact.set(domain, compiled);
    }
  });
  table.suffix.sort((a, b) => b[0].length - a[0].length);
  table.prefix.sort((a, b) => b[0].length - a[0].length);
  return table;
}

/** Envoy's virtual host selection for a lower-cased authority. */
export function selectVirtualHost(table: RouteTable, authority: string): CompiledVirtualHost | undefined {
  const exact = table.exact.get(authority);
  if (exact) return exact;
  for (const [suffix, vh] of table.suffix) if (authority.length > suffix.length && authority.endsWith(suffix)) return vh;
  for (const [prefix, vh] of table.prefix) if (authority.length > prefix.length && authority.startsWith(prefix)) return vh;
  return table.any;
}

function compileStringMatch(sm: Obj | undefined, problems: Problems, path: string): StringMatcher | undefined {
  if (!sm) return undefined;
  const ignoreCase = Boolean(sm.ignore_case);
  const norm = (v: string): string => (ignoreCase ? v.toLowerCase() : v);
  if (sm.exact !== undefined) {
    const e = norm(String(sm.exact));
    return (v) => norm(v) === e;
  }
  if (sm.prefix !== undefined) {
    const p = norm(String(sm.prefix));
    return (v) => norm(v).startsWith(p);
  }
  if (sm.suffix !== undefined) {
    const s = norm(String(sm.suffix));
    return (v) => norm(v).endsWith(s);
  }
  if (sm.contains !== undefined) {
    const c = norm(String(sm.contains));
    return (v) => norm(v).includes(c);
  }
  if (sm.safe_regex !== undefined) {
    const re = fullMatchRegex(String(sm.safe_regex.regex ?? ''), ignoreCase ? 'i' : '');
    if (!re) {
      problems.add(`${path}.safe_regex.regex`, `invalid regular expression ${JSON.stringify(sm.safe_regex.regex)}`);
      return () => false;
    }
    return (v) => re.test(v);
  }
  // An empty StringMatcher (protobufjs drops `prefix: ""`) matches anything.
  return () => true;
}

function headerOps(add: Obj[] | undefined, remove: string[] | undefined): HeaderOps {
  if (!add?.length && !remove?.length) return NO_OPS;
  return {
    add: (add ?? []).map((h) => ({
      key: String(h.header?.key ?? '').toLowerCase(),
      value: String(h.header?.value ?? ''),
      // append_action wins over the deprecated `append` (default true).
      append: h.append_action ? h.append_action === 'APPEND_IF_EXISTS_OR_ADD' : wrapped(h.append, true),
    })),
    remove: (remove ?? []).map((r) => r.toLowerCase()),
  };
}

function compileRoute(r: Obj, problems: Problems, path: string): CompiledRoute {
  const m: Obj = r.match ?? {};
  const caseSensitive = wrapped(m.case_sensitive, true);
  let kind: CompiledRoute['kind'] = 'prefix';
  let value = '';
  let regex: RegExp | undefined;
  if (m.path !== undefined) {
    kind = 'path';
    value = String(m.path);
  } else if (m.safe_regex !== undefined) {
    kind = 'regex';
    regex = fullMatchRegex(String(m.safe_regex.regex ?? ''), caseSensitive ? '' : 'i');
    if (!regex) problems.add(`${path}.match.safe_regex.regex`, `invalid regular expression ${JSON.stringify(m.safe_regex.regex)}`);
  } else if (m.prefix !== undefined || Object.keys(m).every((k) => k === 'headers' || k === 'query_parameters' || k === 'case_sensitive')) {
    value = String(m.prefix ?? '');
  } else {
    const field = Object.keys(m).find((k) => !['headers', 'query_parameters', 'case_sensitive'].includes(k));
    problems.add(`${path}.match.${field}`, 'unsupported path specifier');
  }
  if (!caseSensitive) value = value.toLowerCase();
  const headers: HeaderMatch[] = (m.headers ?? []).map((h: Obj, i: number) => {
    const hp = `${path}.match.headers[${i}]`;
    let match = compileStringMatch(h.string_match, problems, `${hp}.string_match`);
    if (!match && h.exact_match !== undefined) match = compileStringMatch({ exact: h.exact_match }, problems, hp);
    if (!match && h.prefix_match !== undefined) match = compileStringMatch({ prefix: h.prefix_match }, problems, hp);
    if (!match && h.safe_regex_match !== undefined) match = compileStringMatch({ safe_regex: h.safe_regex_match }, problems, hp);
    return { name: String(h.name).toLowerCase(), present: h.present_match, match, invert: Boolean(h.invert_match) };
  });
  const query: QueryMatch[] = (m.query_parameters ?? []).map((q: Obj, i: number) => ({
    name: String(q.name),
    present: q.present_match,
    match: compileStringMatch(q.string_match, problems, `${path}.match.query_parameters[${i}].string_match`),
  }));

  const fault = compileFault(r.typed_per_filter_config?.[FAULT_FILTER], problems, `${path}.typed_per_filter_config`);
  const base = {
    name: String(r.name ?? ''),
    kind,
    value,
    ...(regex ? { regex } : {}),
    caseSensitive,
    headers,
    query,
    requestOps: headerOps(r.request_headers_to_add, r.request_headers_to_remove),
    responseOps: headerOps(r.response_headers_to_add, r.response_headers_to_remove),
    ...(fault ? { fault } : {}),
  };
  if (r.direct_response) {
    return { ...base, action: { type: 'direct', status: Number(r.direct_response.status ?? 200), body: String(r.direct_response.body?.inline_string ?? '') } };
  }
  if (r.redirect) {
    const rd = r.redirect;
    return {
      ...base,
      action: {
        type: 'redirect',
        status: REDIRECT_CODES[rd.response_code ?? 'MOVED_PERMANENTLY'] ?? 301,
        ...(rd.host_redirect ? { host: String(rd.host_redirect) } : {}),
        ...(rd.path_redirect ? { path: String(rd.path_redirect) } : {}),
        ...(rd.scheme_redirect ? { scheme: String(rd.scheme_redirect) } : rd.https_redirect ? { scheme: 'https' } : {}),
      },
    };
  }
  const ra: Obj | undefined = r.route;
  if (!ra) {
    problems.add(path, 'route has no action (route, redirect or direct_response)');
    return { ...base, action: { type: 'direct', status: 404, body: '' } };
  }
  let weighted: WeightedTarget[] | undefined;
  let totalWeight = 0;
  if (ra.weighted_clusters) {
    weighted = (ra.weighted_clusters.clusters ?? []).map((c: Obj) => ({
      name: String(c.name),
      weight: wrapped(c.weight, 0),
      requestOps: headerOps(c.request_headers_to_add, c.request_headers_to_remove),
      responseOps: headerOps(c.response_headers_to_add, c.response_headers_to_remove),
    }));
    totalWeight = weighted!.reduce((s, c) => s + c.weight, 0);
    if (totalWeight <= 0) problems.add(`${path}.route.weighted_clusters`, 'weights must add up to more than 0');
  } else if (!ra.cluster) {
    problems.add(`${path}.route`, 'needs cluster or weighted_clusters (cluster_header is not supported)');
  }
  return {
    ...base,
    action: {
      type: 'route',
      ...(ra.cluster ? { cluster: String(ra.cluster) } : {}),
      ...(weighted ? { weighted } : {}),
      totalWeight,
      // Envoy's default route timeout is 15 s; 0 disables it.
      timeoutMs: durationMs(ra.timeout, 15_000),
      ...(ra.retry_policy ? { retry: compileRetry(ra.retry_policy, problems, `${path}.route.retry_policy`) } : {}),
      ...(ra.prefix_rewrite !== undefined ? { prefixRewrite: String(ra.prefix_rewrite) } : {}),
      ...(ra.host_rewrite_literal ? { hostRewrite: String(ra.host_rewrite_literal) } : {}),
      hash: (ra.hash_policy ?? []).flatMap((h: Obj, i: number): HashPolicy[] => {
        const terminal = Boolean(h.terminal);
        if (h.header) return [{ kind: 'header', name: String(h.header.header_name).toLowerCase(), terminal }];
        if (h.cookie) return [{ kind: 'cookie', name: String(h.cookie.name), terminal }];
        if (h.connection_properties) return [{ kind: 'source-ip', terminal }];
        if (h.query_parameter) return [{ kind: 'query', name: String(h.query_parameter.name), terminal }];
        problems.add(`${path}.route.hash_policy[${i}]`, 'unsupported hash policy');
        return [];
      }),
      mirrors: (ra.request_mirror_policies ?? []).map((mp: Obj) => ({ cluster: String(mp.cluster), fraction: fraction(mp.runtime_fraction?.default_value, 1) })),
      ...(ra.upgrade_configs?.length ? { upgrades: compileUpgrades(ra.upgrade_configs, problems, `${path}.route.upgrade_configs`) } : {}),
      ...(ra.idle_timeout ? { idleTimeoutMs: durationMs(ra.idle_timeout, 0) } : {}),
    },
  };
}

/** upgrade_configs (connection manager or route): lowercased type → enabled (Envoy's default true). */
export function compileUpgrades(list: unknown, problems: Problems, path: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const [i, u] of ((list ?? []) as Obj[]).entries()) {
    const type = String(u.upgrade_type ?? '').toLowerCase();
    if (!type) problems.add(`${path}[${i}].upgrade_type`, 'must not be empty');
    else if (type === 'connect' || type === 'connect-udp') problems.add(`${path}[${i}].upgrade_type`, `${type} tunnels are not supported`);
    else if ((u.filters as Obj[] | undefined)?.length) problems.add(`${path}[${i}].filters`, 'per-upgrade filter chains are not supported');
    else out.set(type, wrapped(u.enabled, true));
  }
  return out;
}

function compileRetry(rp: Obj, problems: Problems, path: string): RetryPolicy {
  const on = String(rp.retry_on ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of on) if (!RETRY_ON.has(c)) problems.add(`${path}.retry_on`, `unknown retry condition ${c}`);
  const preds: Obj[] = rp.retry_host_predicate ?? [];
  return {
    on5xx: on.includes('5xx'),
    gatewayError: on.includes('gateway-error'),
    connectFailure: on.includes('connect-failure') || on.includes('reset-before-request'),
    reset: on.includes('reset'),
    retriable4xx: on.includes('retriable-4xx'),
    unavailable: on.includes('unavailable'),
    cancelled: on.includes('cancelled'),
    deadlineExceeded: on.includes('deadline-exceeded'),
    resourceExhausted: on.includes('resource-exhausted'),
    retriableCodes: new Set(on.includes('retriable-status-codes') ? ((rp.retriable_status_codes ?? []) as number[]) : []),
    numRetries: wrapped(rp.num_retries, 1),
    perTryTimeoutMs: durationMs(rp.per_try_timeout, 0),
    previousHosts: preds.some((p) => p.name === 'envoy.retry_host_predicates.previous_hosts'),
    hostSelectionAttempts: Math.max(1, Number(rp.host_selection_retry_max_attempts ?? 1)),
  };
}

function compileFault(f: Obj | undefined, problems: Problems, path: string): Fault | undefined {
  if (!f) return undefined;
  if (f['@type'] && !String(f['@type']).endsWith('envoy.extensions.filters.http.fault.v3.HTTPFault')) {
    problems.add(`${path}.${FAULT_FILTER}`, `unexpected type ${f['@type']}`);
    return undefined;
  }
  const fault: Fault = { delayMs: 0, delayFraction: 0, abortStatus: 0, abortFraction: 0 };
  if (f.delay) {
    if (f.delay.header_delay) problems.add(`${path}.${FAULT_FILTER}.delay.header_delay`, 'not supported');
    fault.delayMs = durationMs(f.delay.fixed_delay, 0);
    fault.delayFraction = fraction(f.delay.percentage, 1);
  }
  if (f.abort) {
    if (f.abort.grpc_status !== undefined || f.abort.header_abort) problems.add(`${path}.${FAULT_FILTER}.abort`, 'only http_status aborts are supported');
    fault.abortStatus = Number(f.abort.http_status ?? 0);
    fault.abortFraction = fraction(f.abort.percentage, 1);
  }
  return fault;
}
