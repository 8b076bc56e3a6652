import type { Cluster, ClusterLoadAssignment, Listener } from '../../xds/index.js';
import { apiListener, edsCluster, outboundClusterName, outboundSni, tcpProxyFilter, tlsInspectorFilter } from '../../xds/index.js';
import type { ServicePort } from '../../registry/model.js';
import { selectorMatches } from '../../registry/model.js';
import type { MeshService, MeshView } from '../aggregate/index.js';
import { endpointsForProxy } from '../aggregate/index.js';
import { BLACKHOLE_CLUSTER, buildInboundCluster, buildOutboundCluster, buildPassthroughClusters } from './clusters.js';
import { hostMatches } from '../../api/index.js';
import { createConfigIndex, effectivePolicy } from './config-index.js';
import type { ConfigIndex } from './config-index.js';
import type { MeshConfigSnapshot, MeshSettings } from './config.js';
import { buildClusterLoadAssignment } from './endpoints.js';
import type { InboundPort, OutboundPort } from './listeners.js';
import { HTTP_PROXY_ROUTE, buildCapturedSidecarListeners, buildExplicitSidecarListeners, isHttpProtocol } from './listeners.js';
import { prioritize } from './locality.js';
import { buildNameTable } from './name-table.js';
import type { NameTable } from './name-table.js';
import type { ProxyInfo } from './proxy-info.js';
import { buildOutboundRouteConfiguration, buildRoutes, serviceDomains } from './routes.js';

type Obj = Record<string, unknown>;

/** Everything one proxy is sent, as plain Envoy v3 objects keyed by resource name. */
export interface ProxyResources {
  clusters: Map<string, Cluster>;
  endpoints: Map<string, ClusterLoadAssignment>;
  listeners: Map<string, Listener>;
  routes: Map<string, Obj>;
  nameTable?: NameTable;
}

export interface GenerateInput {
  view: MeshView;
  config: MeshConfigSnapshot;
  mesh: MeshSettings;
  proxy: ProxyInfo;
  /** The VIP a service has for proxies of this cluster (its own ClusterIP, else an auto-allocated one). */
  vipOf: (svc: MeshService) => string | undefined;
}

/**
 * Pure translation: the mesh model and Istio config in, one proxy's Envoy resources out. Sidecars get
 * outbound clusters for every service and subset, split-horizon endpoints, listeners and routes;
 * east-west gateways get SNI passthrough for their own network; proxyless gRPC clients get API listeners.
 */
export function generateForProxy(input: GenerateInput): ProxyResources {
  const index = createConfigIndex(input.config, input.mesh.domainSuffix);
  if (input.proxy.role === 'router') return generateGateway(input, index);
  return generateSidecar(input, index);
}

/**
 * The EDS fast path: only the ClusterLoadAssignments of a sidecar or proxyless client, for when nothing but
 * workloads changed. Gateways are not served here: a new workload can add a filter chain to their listener.
 */
export function generateEndpointsForProxy(input: GenerateInput): Map<string, ClusterLoadAssignment> | undefined {
  if (input.proxy.role === 'router') return undefined;
  return generateServiceResources(input, createConfigIndex(input.config, input.mesh.domainSuffix), 'endpoints').endpoints;
}

/**
 * Only the outbound clusters of a sidecar or proxyless client (`outbound|port|subset|host`, one per service
 * port and subset), without inbound or passthrough clusters. They depend on the proxy only through
 * `outboundClustersKey`, so proxy groups that agree on it can share them. Undefined for gateways.
 */
export function generateOutboundClusters(input: GenerateInput): Map<string, Cluster> | undefined {
  if (input.proxy.role === 'router') return undefined;
  return generateServiceResources(input, createConfigIndex(input.config, input.mesh.domainSuffix), 'clusters').clusters;
}

/**
 * What of the proxy `generateOutboundClusters` reads: the namespace (which DestinationRule applies, and
 * its subsets) and whether it is a proxyless client (plaintext). Proxies with equal keys get equal clusters
 * from equal inputs.
 */
export function outboundClustersKey(proxy: ProxyInfo): string {
  return `${proxy.role}|${proxy.proxyless}|${proxy.namespace}`;
}

/**
 * Everything of a sidecar or proxyless client except its outbound clusters and its endpoint assignments:
 * listeners, routes, inbound and passthrough clusters, the name table. With `generateOutboundClusters`
 * and `generateEndpointsForProxy` it makes up exactly what `generateForProxy` returns. Undefined for gateways.
 */
export function generateProxyOwnResources(input: GenerateInput): ProxyResources | undefined {
  if (input.proxy.role === 'router') return undefined;
  return generateSidecar(input, createConfigIndex(input.config, input.mesh.domainSuffix), 'none');
}

/** The per-service part of a sidecar's resources: outbound clusters, endpoint assignments or both. */
function generateServiceResources(input: GenerateInput, index: ConfigIndex, mode: ServiceMode): ProxyResources {
  const out: ProxyResources = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() };
  for (const svc of sortedServices(input.view)) {
    for (const port of svc.ports) {
      for (const subset of subsetsOf(index, svc, input.proxy.namespace)) addServiceClustersAndEndpoints(out, input, index, svc, port, subset, 'cluster', mode);
    }
  }
  return out;
}

function sortedServices(view: MeshView): MeshService[] {
  return [...view.services.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
}

/**
 * What, besides endpoint addresses, the clusters sent to proxies depend on from the endpoints: the
 * identities each service's workloads run as (they are pinned in the upstream TLS SAN checks). If this is
 * unchanged, a workload change can take the EDS fast path.
 */
export function identitySignature(view: MeshView, trustDomain: string): string {
  const parts: string[] = [];
  for (const svc of [...view.services.values()].sort((a, b) => a.hostname.localeCompare(b.hostname))) {
    for (const port of svc.ports) {
      const ids = [...new Set(view.endpoints(svc.hostname, port.port).map((e) => spiffe(trustDomain, e.workload.namespace, e.workload.serviceAccount)))].sort();
      parts.push(`${svc.hostname}:${port.port}=${ids.join(',')}`);
    }
  }
  return parts.join('\n');
}

function spiffe(trustDomain: string, ns: string, sa: string): string {
  return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
}

/** Which per-service resources to build: both, only clusters, only endpoint assignments, or neither. */
type ServiceMode = 'all' | 'clusters' | 'endpoints' | 'none';

function subsetsOf(index: ConfigIndex, svc: MeshService, proxyNs: string): Array<{ name: string; labels?: Record<string, string> }> {
  return [{ name: '' }, ...(index.destinationRuleFor(svc.hostname, proxyNs, svc.namespace)?.spec?.subsets ?? [])];
}

function addServiceClustersAndEndpoints(
  out: ProxyResources,
  input: GenerateInput,
  index: ConfigIndex,
  svc: MeshService,
  port: ServicePort,
  subset: { name: string; labels?: Record<string, string> },
  naming: 'cluster' | 'sni',
  mode: ServiceMode = 'all',
): void {
  const { proxy, view, mesh } = input;
  const rule = index.destinationRuleFor(svc.hostname, proxy.namespace, svc.namespace);
  const specific = effectivePolicy(rule?.spec, subset.name, port.port);
  const policy = specific.outlierDetection || !mesh.defaultOutlierDetection ? specific : { ...specific, outlierDetection: mesh.defaultOutlierDetection };
  const gateway = naming === 'sni';
  const name = gateway ? outboundSni(port.port, subset.name, svc.hostname) : outboundClusterName(port.port, subset.name, svc.hostname);
  const endpoints = view.endpoints(svc.hostname, port.port).filter((e) => !subset.labels || selectorMatches(subset.labels, e.workload.labels));
  const identities = [...new Set(endpoints.map((e) => spiffe(mesh.trustDomain, e.workload.namespace, e.workload.serviceAccount)))].sort();

  if (mode === 'endpoints') {
    // Clusters stay as they are: only the assignment below is rebuilt.
  } else if (gateway) {
    // The gateway only forwards bytes: no TLS of its own, the sidecars' mTLS passes through untouched.
    out.clusters.set(name, edsCluster(name, { connectTimeoutMs: 10_000 }));
  } else {
    const cluster = buildOutboundCluster({ service: svc, port, subset: subset.name, policy, identities, plaintext: proxy.proxyless });
    out.clusters.set(name, cluster);
  }
  if (mode === 'clusters') return;
  const groups = endpointsForProxy(view, svc.hostname, port.port, subset.labels, {
    network: proxy.network,
    ...(gateway ? { requestedNetworkView: proxy.requestedNetworkView.length ? proxy.requestedNetworkView : [proxy.network] } : {}),
  });
  const localitySetting = policy.loadBalancer?.localityLbSetting ?? mesh.localityLbSetting;
  const prioritized = prioritize(
    groups,
    { locality: proxy.locality, network: proxy.network, cluster: proxy.cluster, labels: proxy.labels },
    localitySetting,
    Boolean(policy.outlierDetection),
  );
  out.endpoints.set(name, buildClusterLoadAssignment(name, prioritized));
}

/** `perService`: which per-service resources to include ('none' leaves them to the shared generators above). */
function generateSidecar(input: GenerateInput, index: ConfigIndex, perService: ServiceMode = 'all'): ProxyResources {
  const { proxy, view } = input;
  const out: ProxyResources = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() };
  const services = sortedServices(view);
  const caller = { namespace: proxy.namespace, labels: proxy.labels };

  const byPort = new Map<number, { protocol: ServicePort['protocol']; services: MeshService[] }>();
  for (const svc of services) {
    for (const port of svc.ports) {
      if (perService !== 'none') {
        for (const subset of subsetsOf(index, svc, proxy.namespace)) addServiceClustersAndEndpoints(out, input, index, svc, port, subset, 'cluster', perService);
      }
      const entry = byPort.get(port.port) ?? { protocol: port.protocol, services: [] };
      // Mixed protocols on one port: treat it as unknown and let the proxy sniff, as Istio does.
      if (entry.protocol !== port.protocol) entry.protocol = 'UNKNOWN';
      entry.services.push(svc);
      byPort.set(port.port, entry);
    }
  }

  if (proxy.proxyless) {
    for (const svc of services) {
      for (const port of svc.ports) {
        const name = `${svc.hostname}:${port.port}`;
        out.listeners.set(name, apiListener(name, name));
        out.routes.set(name, {
          name,
          virtual_hosts: [{ name, domains: serviceDomains(svc, port.port, proxy.namespace, input.mesh.domainSuffix), routes: buildRoutes(svc, port.port, index, caller) }],
        });
      }
    }
    return out;
  }

  for (const c of buildPassthroughClusters()) out.clusters.set(c.name, c);
  const inbound = inboundPorts(input);
  for (const p of inbound) out.clusters.set(`inbound|${p.port}||`, buildInboundCluster(p.port, proxy.appHost, p.protocol));

  const outbound: OutboundPort[] = [];
  for (const [port, { protocol, services: list }] of [...byPort].sort((a, b) => a[0] - b[0])) {
    const http = isHttpProtocol(protocol) || protocol === 'UNKNOWN';
    if (http) out.routes.set(String(port), buildOutboundRouteConfiguration(String(port), port, list, index, caller));
    outbound.push({
      port,
      protocol,
      tcpServices: list.flatMap((svc) => {
        const vip = input.vipOf(svc);
        return vip ? [{ vip, cluster: outboundClusterName(port, '', svc.hostname) }] : [];
      }),
    });
  }

  const listeners =
    proxy.interception === 'NONE' ? buildExplicitSidecarListeners(proxy.ip, inbound) : buildCapturedSidecarListeners(outbound, inbound);
  for (const l of listeners) out.listeners.set(l.name, l);
  if (proxy.interception === 'NONE') out.routes.set(HTTP_PROXY_ROUTE, explicitProxyRoutes(byPort, index, caller));

  out.nameTable = buildNameTable(services, input.vipOf);
  return out;
}

/**
 * One route configuration for the explicit HTTP proxy: each port's virtual hosts keep only their
 * `host:port` domains (so ports never collide), and port 80 also keeps the bare names.
 */
function explicitProxyRoutes(
  byPort: Map<number, { protocol: ServicePort['protocol']; services: MeshService[] }>,
  index: ConfigIndex,
  caller: { namespace: string; labels: Record<string, string> },
): Obj {
  const virtualHosts: Obj[] = [];
  for (const [port, { protocol, services }] of [...byPort].sort((a, b) => a[0] - b[0])) {
    if (!(isHttpProtocol(protocol) || protocol === 'UNKNOWN')) continue;
    const rc = buildOutboundRouteConfiguration(String(port), port, services, index, caller, { allowAny: false }) as { virtual_hosts: Array<Obj & { domains: string[] }> };
    for (const vh of rc.virtual_hosts) {
      virtualHosts.push({ ...vh, domains: vh.domains.filter((d) => d.endsWith(`:${port}`) || (port === 80 && !d.includes(':'))) });
    }
  }
  return { name: HTTP_PROXY_ROUTE, virtual_hosts: virtualHosts, validate_clusters: { value: false } };
}

/** The ports of every local service that selects this proxy's workload: what it accepts traffic on. */
function inboundPorts(input: GenerateInput): InboundPort[] {
  const { proxy, view } = input;
  const ports = new Map<number, InboundPort>();
  for (const svc of view.services.values()) {
    const def = svc.definitions.get(proxy.cluster);
    if (!def?.selector || def.namespace !== proxy.namespace || !selectorMatches(def.selector, proxy.labels)) continue;
    for (const p of def.ports) if (!ports.has(p.targetPort)) ports.set(p.targetPort, { port: p.targetPort, protocol: p.protocol });
  }
  return [...ports.values()].sort((a, b) => a.port - b.port);
}

/**
 * An east-west gateway: for every Gateway with `tls.mode: AUTO_PASSTHROUGH` that selects it, a listener
 * on that port whose filter chains match the SNI `outbound_.PORT_.SUBSET_.FQDN` of every service with
 * endpoints in the gateway's own network and forward the still-encrypted bytes there.
 */
function generateGateway(input: GenerateInput, index: ConfigIndex): ProxyResources {
  const { proxy, view, config } = input;
  const out: ProxyResources = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() };
  const servers = config.gateways
    .filter((g) => g.spec && selectorMatches(g.spec.selector ?? {}, proxy.labels))
    .flatMap((g) => g.spec!.servers.filter((s) => s.tls?.mode === 'AUTO_PASSTHROUGH'));
  const network = proxy.network;
  for (const server of servers) {
    const chains: NonNullable<Listener['filter_chains']> = [];
    for (const svc of [...view.services.values()].sort((a, b) => a.hostname.localeCompare(b.hostname))) {
      if (!server.hosts.some((h) => hostMatches(h.includes('/') ? h.split('/')[1]! : h, svc.hostname))) continue;
      for (const port of svc.ports) {
        const local = view.endpoints(svc.hostname, port.port).filter((e) => e.workload.network === network && e.workload.tlsMode === 'istio');
        if (local.length === 0) continue;
        for (const subset of subsetsOf(index, svc, proxy.namespace)) {
          const sni = outboundSni(port.port, subset.name, svc.hostname);
          addServiceClustersAndEndpoints(out, input, index, svc, port, subset, 'sni');
          chains.push({ name: sni, filter_chain_match: { server_names: [sni] }, filters: [tcpProxyFilter(sni, sni)] });
        }
      }
    }
    const name = `0.0.0.0_${server.port.number}`;
    // No chain for plaintext, no default chain: anything without a known SNI is closed.
    out.listeners.set(name, {
      name,
      address: { socket_address: { address: '0.0.0.0', port_value: server.port.number } },
      listener_filters: [tlsInspectorFilter()],
      filter_chains: chains,
      traffic_direction: 'INBOUND',
    } as Listener);
  }
  if (out.clusters.size === 0) out.clusters.set(BLACKHOLE_CLUSTER, { name: BLACKHOLE_CLUSTER, type: 'STATIC' });
  return out;
}

