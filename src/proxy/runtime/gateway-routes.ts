/**
 * The east-west gateway's routing table, derived from xDS: the SNIs the control plane routes (LDS filter
 * chains' server_names, each forwarding to its tcp_proxy cluster) and the endpoints of those clusters
 * (EDS, clusters named `outbound_.PORT_.SUBSET_.FQDN`). Nothing else is routable.
 */
import type { ClusterLoadAssignment, Listener, TcpProxy } from '../../xds/index.js';
import type { Endpoint } from '../gateway/index.js';
import type { ProxyXdsState } from './sidecar-contract.js';

const UNUSABLE = new Set(['UNHEALTHY', 'DRAINING', 'TIMEOUT']);

/** SNI → cluster, from every listener's filter chains (first chain naming an SNI wins, as in Envoy). */
export function sniRoutesOf(listeners: ReadonlyMap<string, Listener>): Map<string, string> {
  const routes = new Map<string, string>();
  for (const l of listeners.values()) {
    for (const chain of l.filter_chains ?? []) {
      const tcp = chain.filters?.map((f) => f.typed_config as (TcpProxy & { '@type': string }) | undefined).find((c) => c?.cluster);
      if (!tcp?.cluster) continue;
      for (const sni of chain.filter_chain_match?.server_names ?? []) {
        const key = sni.toLowerCase();
        if (!routes.has(key)) routes.set(key, tcp.cluster);
      }
    }
  }
  return routes;
}

/** Usable endpoints of the best (lowest) priority that has any, honouring EDS health. */
export function usableEndpoints(cla: ClusterLoadAssignment | undefined): Endpoint[] {
  if (!cla) return [];
  const byPriority = new Map<number, Endpoint[]>();
  for (const group of cla.endpoints ?? []) {
    const priority = group.priority ?? 0;
    for (const lb of group.lb_endpoints ?? []) {
      if (lb.health_status && UNUSABLE.has(lb.health_status)) continue;
      const sa = lb.endpoint?.address?.socket_address;
      if (!sa?.address || !sa.port_value) continue;
      const list = byPriority.get(priority) ?? [];
      list.push({ address: sa.address, port: sa.port_value });
      byPriority.set(priority, list);
    }
  }
  const best = [...byPriority.keys()].sort((a, b) => a - b)[0];
  return best === undefined ? [] : byPriority.get(best)!;
}

/** A resolver for the SNI passthrough gateway over a state; rebuild it on every state change. */
export function gatewayResolver(state: ProxyXdsState): (sni: string) => Endpoint[] | undefined {
  const routes = sniRoutesOf(state.listeners);
  return (sni) => {
    const cluster = routes.get(sni.toLowerCase());
    if (cluster === undefined) return undefined;
    return usableEndpoints(state.endpoints.get(cluster));
  };
}
