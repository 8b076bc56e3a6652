import type { Listener, NetworkFilter } from '../../xds/index.js';
import {
  EXTENSION_TYPE_URLS,
  adsConfigSource,
  httpInspectorFilter,
  inboundClusterName,
  originalDstFilter,
  routerFilter,
  tcpProxyFilter,
  tlsInspectorFilter,
  typed,
} from '../../xds/index.js';
import type { PortProtocol } from '../../registry/model.js';
import { PASSTHROUGH_CLUSTER, meshDownstreamTls } from './clusters.js';
import { FAULT_FILTER, TYPE_HTTP_FAULT } from './routes.js';

export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const VIRTUAL_INBOUND = 'virtualInbound';
export const PORT_OUTBOUND = 15001;
export const PORT_INBOUND = 15006;
/** Route configuration of the explicit HTTP proxy listener: every HTTP service on every port. */
export const HTTP_PROXY_ROUTE = 'http_proxy';

export const isHttpProtocol = (p: PortProtocol): boolean => p === 'HTTP' || p === 'HTTP2' || p === 'GRPC';

function socketAddress(address: string, port: number) {
  return { socket_address: { address, port_value: port } };
}

/** WebSocket upgrades pass through every sidecar connection manager, as Istio configures them by default. */
const UPGRADE_CONFIGS = [{ upgrade_type: 'websocket' }];

/** HTTP connection manager for outbound traffic: fault injection, then routing, routes by RDS. */
export function outboundHcm(routeName: string): NetworkFilter {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typed(EXTENSION_TYPE_URLS.httpConnectionManager, {
      stat_prefix: `outbound_${routeName}`,
      rds: { config_source: adsConfigSource(), route_config_name: routeName },
      http_filters: [{ name: FAULT_FILTER, typed_config: typed(TYPE_HTTP_FAULT) }, routerFilter()],
      use_remote_address: { value: false },
      normalize_path: { value: true },
      upgrade_configs: UPGRADE_CONFIGS,
    }),
  };
}

/** HTTP connection manager for inbound traffic: everything to the app's port. */
function inboundHcm(port: number): NetworkFilter {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typed(EXTENSION_TYPE_URLS.httpConnectionManager, {
      stat_prefix: `inbound_0.0.0.0_${port}`,
      route_config: {
        name: `inbound|${port}||`,
        virtual_hosts: [{ name: 'inbound|http|' + port, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: inboundClusterName(port), timeout: { seconds: 0, nanos: 0 } } }] }],
        validate_clusters: { value: false },
      },
      http_filters: [routerFilter()],
      forward_client_cert_details: 'APPEND_FORWARD',
      set_current_client_cert_details: { subject: { value: true }, uri: true, dns: true },
      upgrade_configs: UPGRADE_CONFIGS,
    }),
  };
}

export interface OutboundPort {
  port: number;
  protocol: PortProtocol;
  /** For TCP ports: one listener per service VIP, each straight to that service's cluster. */
  tcpServices: Array<{ vip: string; cluster: string }>;
}

export interface InboundPort {
  port: number;
  protocol: PortProtocol;
}

/** Sidecar listeners for transparent capture (iptables REDIRECT to 15001/15006), as Istio generates them. */
export function buildCapturedSidecarListeners(outbound: readonly OutboundPort[], inbound: readonly InboundPort[]): Listener[] {
  const listeners: Listener[] = [];
  listeners.push({
    name: VIRTUAL_OUTBOUND,
    address: socketAddress('0.0.0.0', PORT_OUTBOUND),
    // IPv6 capture (ip6tables) redirects here too; a proxy without IPv6 leaves this address unbound.
    additional_addresses: [{ address: socketAddress('::', PORT_OUTBOUND) }],
    use_original_dst: { value: true },
    listener_filters: [originalDstFilter()],
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER)] }],
  } as Listener);

  for (const p of outbound) {
    if (isHttpProtocol(p.protocol) || p.protocol === 'UNKNOWN') {
      const chains: Listener['filter_chains'] = [];
      if (p.protocol === 'UNKNOWN') {
        chains!.push({ filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] }, filters: [outboundHcm(String(p.port))] });
        chains!.push({ filters: [tcpProxyFilter(p.tcpServices.length === 1 ? p.tcpServices[0]!.cluster : PASSTHROUGH_CLUSTER)] });
      } else {
        chains!.push({ filters: [outboundHcm(String(p.port))] });
      }
      listeners.push({
        name: `0.0.0.0_${p.port}`,
        address: socketAddress('0.0.0.0', p.port),
        bind_to_port: { value: false },
        ...(p.protocol === 'UNKNOWN' ? { listener_filters: [httpInspectorFilter()] } : {}),
        filter_chains: chains,
        traffic_direction: 'OUTBOUND',
      } as Listener);
    } else {
      for (const s of p.tcpServices) {
        listeners.push({
          name: `${s.vip}_${p.port}`,
          address: socketAddress(s.vip, p.port),
          bind_to_port: { value: false },
          filter_chains: [{ filters: [tcpProxyFilter(s.cluster)] }],
          traffic_direction: 'OUTBOUND',
        } as Listener);
      }
    }
  }

  listeners.push({
    name: VIRTUAL_INBOUND,
    address: socketAddress('0.0.0.0', PORT_INBOUND),
    additional_addresses: [{ address: socketAddress('::', PORT_INBOUND) }],
    use_original_dst: { value: true },
    listener_filters: [originalDstFilter(), tlsInspectorFilter()],
    // STRICT mTLS: only chains that require a mesh client certificate; plaintext matches nothing and is closed.
    filter_chains: inbound.map((p) => inboundChain(p, true)),
    traffic_direction: 'INBOUND',
  } as Listener);
  return listeners;
}

/**
 * Sidecar listeners without traffic capture (Istio's INTERCEPTION_MODE=NONE), for the loopback lab: apps
 * use the sidecar as an explicit HTTP proxy on `ip:15001`, and the sidecar binds the workload's own
 * address on each inbound port while the app listens on `appHost`.
 */
export function buildExplicitSidecarListeners(ip: string, inbound: readonly InboundPort[]): Listener[] {
  return [
    {
      name: `${ip}_${PORT_OUTBOUND}`,
      address: socketAddress(ip, PORT_OUTBOUND),
      filter_chains: [{ filters: [outboundHcm(HTTP_PROXY_ROUTE)] }],
      traffic_direction: 'OUTBOUND',
    } as Listener,
    ...inbound.map(
      (p) =>
        ({
          name: `${ip}_${p.port}`,
          address: socketAddress(ip, p.port),
          listener_filters: [tlsInspectorFilter()],
          filter_chains: [inboundChain(p, false)],
          traffic_direction: 'INBOUND',
        }) as Listener,
    ),
  ];
}

function inboundChain(p: InboundPort, matchPort: boolean): NonNullable<Listener['filter_chains']>[number] {
  const http = isHttpProtocol(p.protocol) || p.protocol === 'UNKNOWN';
  return {
    name: `inbound_${p.port}`,
    filter_chain_match: { ...(matchPort ? { destination_port: { value: p.port } } : {}), transport_protocol: 'tls' },
    // Server preference order: a caller offering h2 (an HTTP/2 outbound cluster) gets it ahead of the
    // peer-exchange protocols, so the codec is known from the handshake.
    transport_socket: meshDownstreamTls(http ? ['istio-http/1.1', 'istio-h2', 'h2', 'istio-peer-exchange', 'istio', 'http/1.1'] : ['istio-peer-exchange', 'istio']),
    filters: [http ? inboundHcm(p.port) : tcpProxyFilter(inboundClusterName(p.port))],
  };
}
