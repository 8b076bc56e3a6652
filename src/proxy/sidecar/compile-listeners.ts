/**
 * Listener → filter chains with their match criteria and one terminal filter each (HTTP connection manager
 * or tcp_proxy), plus the downstream TLS to terminate. Chain selection follows Envoy's order: destination
 * port, server name, transport protocol, application protocol; at each step the most specific match wins.
 */
import type { Decoded, Problems } from './config-util.js';
import { durationMs, wrapped } from './config-util.js';
import { checkSecretNames } from './compile-clusters.js';
import { compileRouteTable, compileUpgrades } from './compile-routes.js';
import type { RouteTable } from './compile-routes.js';

type Obj = Decoded;

const HCM = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const KNOWN_LISTENER_FILTERS = new Set(['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector']);
const KNOWN_HTTP_FILTERS = new Set(['envoy.filters.http.router', 'envoy.filters.http.fault']);

export const XFCC_MODES = ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'] as const;
export type XfccMode = (typeof XFCC_MODES)[number];

export interface HttpChainFilter {
  kind: 'http';
  statPrefix: string;
  rds?: string;
  inline?: RouteTable;
  fault: boolean;
  /**
   * forward_client_cert_details: what becomes of x-forwarded-client-cert (XFCC). SANITIZE (the default)
   * drops the client's; the others apply to mTLS connections (elsewhere the header is dropped, except with
   * ALWAYS_FORWARD_ONLY): FORWARD_ONLY passes it on, APPEND_FORWARD appends this hop's element,
   * SANITIZE_SET replaces it with this hop's element.
   */
  xfcc: XfccMode;
  /** upgrade_configs: lowercased upgrade type → enabled. Types not listed are refused (403). */
  upgrades: ReadonlyMap<string, boolean>;
  /** stream_idle_timeout (Envoy's default 5 min; 0 = none); here it bounds idle upgrade tunnels. */
  streamIdleTimeoutMs: number;
  /** codec_type: AUTO picks HTTP/2 by ALPN (`h2`, `istio-h2`) or the connection preface, else HTTP/1.1. */
  codec: 'AUTO' | 'HTTP1' | 'HTTP2';
}

export interface TcpChainFilter {
  kind: 'tcp';
  statPrefix: string;
  cluster?: string;
  weighted?: Array<{ name: string; weight: number }>;
  totalWeight: number;
  idleTimeoutMs: number;
}

export interface CompiledChain {
  name: string;
  destinationPort?: number;
  serverNames: string[];
  transportProtocol?: string;
  applicationProtocols: string[];
  downstreamTls?: { alpn: string[]; requireClientCert: boolean };
  filter: HttpChainFilter | TcpChainFilter;
}

export interface CompiledListener {
  name: string;
  address: string;
  port: number;
  /** Further addresses bound for the same listener (an IPv6 `::` beside `0.0.0.0`). */
  additionalAddresses: Array<{ address: string; port: number }>;
  bind: boolean;
  useOriginalDst: boolean;
  tlsInspector: boolean;
  httpInspector: boolean;
  inbound: boolean;
  chains: CompiledChain[];
  defaultChain?: CompiledChain;
  /** Some chain needs SNI/ALPN/transport to choose, so the first bytes must be inspected. */
  needsInspection: boolean;
}

/** What is known about a connection when its filter chain is chosen. */
export interface ConnectionFacts {
  destinationPort: number;
  transportProtocol?: string | undefined;
  serverName?: string | undefined;
  applicationProtocols?: readonly string[] | undefined;
}

export function compileListener(l: Obj, problems: Problems): CompiledListener {
  const sa = l.address?.socket_address;
  if (!sa?.address) problems.add('address.socket_address', 'needs a socket address');
  const filters = ((l.listener_filters ?? []) as Obj[]).map((f) => String(f.name));
  for (const [i, f] of filters.entries()) if (!KNOWN_LISTENER_FILTERS.has(f)) problems.add(`listener_filters[${i}].name`, `unsupported listener filter ${f}`);
  if (l.api_listener) problems.add('api_listener', 'API listeners are for proxyless clients, not sidecars');
  const chains = ((l.filter_chains ?? []) as Obj[]).map((c, i) => compileChain(c, problems, `filter_chains[${i}]`));
  const additionalAddresses = ((l.additional_addresses ?? []) as Obj[]).map((a, i) => {
    const extra = a.address?.socket_address;
    if (!extra?.address) problems.add(`additional_addresses[${i}].address.socket_address`, 'needs a socket address');
    return { address: String(extra?.address ?? ''), port: Number(extra?.port_value ?? 0) };
  });
  const defaultChain = l.default_filter_chain ? compileChain(l.default_filter_chain, problems, 'default_filter_chain') : undefined;
  const all = defaultChain ? [...chains, defaultChain] : chains;
  return {
    name: String(l.name),
    address: String(sa?.address ?? '0.0.0.0'),
    port: Number(sa?.port_value ?? 0),
    additionalAddresses,
    bind: wrapped(l.bind_to_port, true),
    useOriginalDst: wrapped(l.use_original_dst, false),
    tlsInspector: filters.includes('envoy.filters.listener.tls_inspector'),
    httpInspector: filters.includes('envoy.filters.listener.http_inspector'),
    inbound: l.traffic_direction === 'INBOUND' || String(l.name) === 'virtualInbound',
    chains,
    ...(defaultChain ? { defaultChain } : {}),
    needsInspection: all.some((c) => c.serverNames.length > 0 || c.applicationProtocols.length > 0 || c.transportProtocol !== undefined),
  };
}

function compileChain(c: Obj, problems: Problems, path: string): CompiledChain {
  const m: Obj = c.filter_chain_match ?? {};
  for (const k of Object.keys(m)) {
    if (!['destination_port', 'server_names', 'transport_protocol', 'application_protocols'].includes(k)) problems.add(`${path}.filter_chain_match.${k}`, 'unsupported match criterion');
  }
  const filters: Obj[] = c.filters ?? [];
  const terminal = filters[filters.length - 1];
  for (const [i, f] of filters.slice(0, -1).entries()) problems.add(`${path}.filters[${i}].name`, `unsupported network filter ${f.name}`);
  let filter: HttpChainFilter | TcpChainFilter;
  if (terminal?.name === HCM) filter = compileHcm(terminal.typed_config ?? {}, problems, `${path}.filters[${filters.length - 1}].typed_config`);
  else if (terminal?.name === TCP_PROXY) filter = compileTcpProxy(terminal.typed_config ?? {}, problems, `${path}.filters[${filters.length - 1}].typed_config`);
  else {
    problems.add(`${path}.filters`, terminal ? `unsupported network filter ${terminal.name}` : 'needs a terminal filter');
    filter = { kind: 'tcp', statPrefix: '', totalWeight: 0, idleTimeoutMs: 3_600_000 };
  }
  let downstreamTls: CompiledChain['downstreamTls'];
  const ts: Obj | undefined = c.transport_socket;
  if (ts && ts.name !== 'envoy.transport_sockets.raw_buffer') {
    if (ts.typed_config?.['@type'] !== DOWNSTREAM_TLS) problems.add(`${path}.transport_socket`, `unsupported transport socket ${ts.name}`);
    else {
      const common: Obj = ts.typed_config.common_tls_context ?? {};
      checkSecretNames(common, problems, `${path}.transport_socket.typed_config.common_tls_context`);
      downstreamTls = { alpn: (common.alpn_protocols ?? []) as string[], requireClientCert: wrapped(ts.typed_config.require_client_certificate, false) };
    }
  }
  return {
    name: String(c.name ?? ''),
    ...(m.destination_port ? { destinationPort: wrapped(m.destination_port, 0) } : {}),
    serverNames: ((m.server_names ?? []) as string[]).map((s) => s.toLowerCase()),
    ...(m.transport_protocol ? { transportProtocol: String(m.transport_protocol) } : {}),
    applicationProtocols: (m.application_protocols ?? []) as string[],
    ...(downstreamTls ? { downstreamTls } : {}),
    filter,
  };
}

function xfccMode(v: unknown, problems: Problems, path: string): XfccMode {
  if (v === undefined) return 'SANITIZE';
  if ((XFCC_MODES as readonly unknown[]).includes(v)) return v as XfccMode;
  problems.add(path, `unsupported value ${JSON.stringify(v)}; one of ${XFCC_MODES.join(', ')}`);
  return 'SANITIZE';
}

function compileHcm(h: Obj, problems: Problems, path: string): HttpChainFilter {
  for (const [i, f] of ((h.http_filters ?? []) as Obj[]).entries()) {
    if (!KNOWN_HTTP_FILTERS.has(f.name)) problems.add(`${path}.http_filters[${i}].name`, `unsupported HTTP filter ${f.name}`);
  }
  const codec = String(h.codec_type ?? 'AUTO');
  if (codec !== 'AUTO' && codec !== 'HTTP1' && codec !== 'HTTP2') problems.add(`${path}.codec_type`, `unsupported codec ${codec}`);
  const out: HttpChainFilter = {
    kind: 'http',
    statPrefix: String(h.stat_prefix ?? ''),
    fault: ((h.http_filters ?? []) as Obj[]).some((f) => f.name === 'envoy.filters.http.fault'),
    xfcc: xfccMode(h.forward_client_cert_details, problems, `${path}.forward_client_cert_details`),
    upgrades: compileUpgrades(h.upgrade_configs, problems, `${path}.upgrade_configs`),
    streamIdleTimeoutMs: durationMs(h.stream_idle_timeout, 300_000),
    codec: codec === 'HTTP1' || codec === 'HTTP2' ? codec : 'AUTO',
  };
  if (h.rds?.route_config_name) out.rds = String(h.rds.route_config_name);
  else if (h.route_config) out.inline = compileRouteTable(h.route_config, problems, `${path}.route_config.`);
  else problems.add(path, 'needs rds or route_config');
  return out;
}

function compileTcpProxy(t: Obj, problems: Problems, path: string): TcpChainFilter {
  const out: TcpChainFilter = { kind: 'tcp', statPrefix: String(t.stat_prefix ?? ''), totalWeight: 0, idleTimeoutMs: t.idle_timeout ? Number(t.idle_timeout.seconds ?? 0) * 1000 : 3_600_000 };
  if (t.cluster) out.cluster = String(t.cluster);
  else if (t.weighted_clusters?.clusters?.length) {
    out.weighted = (t.weighted_clusters.clusters as Obj[]).map((c) => ({ name: String(c.name), weight: Number(c.weight ?? 0) }));
    out.totalWeight = out.weighted.reduce((s, c) => s + c.weight, 0);
  } else problems.add(path, 'needs cluster or weighted_clusters');
  if (out.idleTimeoutMs === 0) out.idleTimeoutMs = 2 ** 31 - 1;
  return out;
}

/** Envoy's filter chain selection; undefined when nothing matches (the connection is closed). */
export function selectChain(l: CompiledListener, f: ConnectionFacts): CompiledChain | undefined {
  let candidates = l.chains;
  const narrow = (pred: (c: CompiledChain) => boolean | undefined, specified: (c: CompiledChain) => boolean): void => {
    const exact = candidates.filter((c) => specified(c) && pred(c));
    candidates = exact.length ? exact : candidates.filter((c) => !specified(c));
  };
  narrow((c) => c.destinationPort === f.destinationPort, (c) => c.destinationPort !== undefined);
  narrow(
    (c) => f.serverName !== undefined && c.serverNames.some((s) => s === f.serverName || (s.startsWith('*.') && f.serverName!.endsWith(s.slice(1)))),
    (c) => c.serverNames.length > 0,
  );
  narrow((c) => c.transportProtocol === (f.transportProtocol ?? 'raw_buffer'), (c) => c.transportProtocol !== undefined);
  narrow((c) => c.applicationProtocols.some((p) => f.applicationProtocols?.includes(p)), (c) => c.applicationProtocols.length > 0);
  return candidates[0] ?? l.defaultChain;
}
