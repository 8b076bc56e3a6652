import type { Endpoint, Locality } from '../../registry/model.js';
import { formatLocality, selectorMatches } from '../../registry/model.js';
import type { MeshView } from './mesh-view.js';

/** The facts about a proxy that decide which endpoint addresses it is given. */
export interface ProxyNetworkView {
  network: string;
  /**
   * Networks whose endpoints this proxy dials directly and exclusively (an east-west gateway asks for its
   * own network only, via REQUESTED_NETWORK_VIEW). Undefined for sidecars.
   */
  requestedNetworkView?: readonly string[];
}

/** One address a proxy may send a connection to, with its weight within its locality. */
export interface LbEndpoint {
  address: string;
  port: number;
  weight: number;
  healthy: boolean;
  /** True when the address is a remote network's east-west gateway standing in for that network's endpoints. */
  viaGateway: boolean;
  cluster: string;
  network: string;
  /** The workload behind a direct address; undefined for gateway entries, which stand for several. */
  endpoint?: Endpoint;
}

export interface LocalityEndpoints {
  locality: Locality;
  endpoints: LbEndpoint[];
}

/**
 * Split-horizon EDS. Endpoints on the proxy's network are given directly; endpoints on another network are
 * replaced by that network's gateway address(es), weighted by how many healthy endpoints each stands for,
 * keeping their locality. Only mTLS-capable endpoints cross networks (the gateway routes on the SNI only
 * sidecars send); an endpoint on a network with no gateway is unreachable and left out.
 */
export function endpointsForProxy(
  view: MeshView,
  hostname: string,
  port: number,
  subsetLabels: Readonly<Record<string, string>> | undefined,
  proxy: ProxyNetworkView,
): LocalityEndpoints[] {
  const selected = view
    .endpoints(hostname, port)
    .filter((e) => !subsetLabels || selectorMatches(subsetLabels, e.workload.labels));

  const gatewaysByNetwork = new Map<string, typeof view.gateways>();
  for (const gw of view.gateways) {
    gatewaysByNetwork.set(gw.network, [...(gatewaysByNetwork.get(gw.network) ?? []), gw]);
  }

  const direct: Array<{ locality: Locality; e: Endpoint }> = [];
  // network → locality key → healthy endpoint count behind the gateway
  const remote = new Map<string, Map<string, { locality: Locality; count: number; cluster: string }>>();

  for (const e of selected) {
    const network = e.workload.network;
    if (proxy.requestedNetworkView) {
      if (proxy.requestedNetworkView.includes(network)) direct.push({ locality: e.workload.locality, e });
      continue;
    }
    if (!network || !proxy.network || network === proxy.network) {
      direct.push({ locality: e.workload.locality, e });
      continue;
    }
    if (e.workload.tlsMode !== 'istio' || !e.workload.healthy || !gatewaysByNetwork.has(network)) continue;
    const byLocality = remote.get(network) ?? new Map();
    const key = formatLocality(e.workload.locality);
    const entry = byLocality.get(key) ?? { locality: e.workload.locality, count: 0, cluster: e.workload.cluster };
    entry.count++;
    byLocality.set(key, entry);
    remote.set(network, byLocality);
  }

  // Weights stay integers: scale everything by the lcm of the gateway counts, then split each remote
  // network's share evenly across its gateways.
  const scale = [...remote.keys()].map((n) => gatewaysByNetwork.get(n)!.length).reduce(lcm, 1);
  const groups = new Map<string, LocalityEndpoints>();
  const groupFor = (locality: Locality): LocalityEndpoints => {
    const key = formatLocality(locality);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { locality, endpoints: [] }));
    return g;
  };

  for (const { locality, e } of direct) {
    groupFor(locality).endpoints.push({
      address: e.address,
      port: e.port,
      weight: scale,
      healthy: e.workload.healthy,
      viaGateway: false,
      cluster: e.workload.cluster,
      network: e.workload.network,
      endpoint: e,
    });
  }
  for (const [network, byLocality] of remote) {
    const gateways = gatewaysByNetwork.get(network)!;
    for (const { locality, count } of byLocality.values()) {
      for (const gw of gateways) {
        groupFor(locality).endpoints.push({
          address: gw.address,
          port: gw.port,
          weight: (count * scale) / gateways.length,
          healthy: true,
          viaGateway: true,
          cluster: gw.cluster,
          network,
        });
      }
    }
  }

  const sorted = [...groups.values()].sort((a, b) => formatLocality(a.locality).localeCompare(formatLocality(b.locality)));
  for (const g of sorted) g.endpoints.sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`));
  return sorted;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a * b) / gcd(a, b);
}
