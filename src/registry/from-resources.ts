import type { Resource } from '../api/types.js';
import type { ClusterRegistry, ClusterService, NetworkGateway, PortProtocol, ServicePort, Workload } from './model.js';
import { parseLocality } from './model.js';

export const LABEL_NETWORK = 'topology.istio.io/network';
export const LABEL_CLUSTER = 'topology.istio.io/cluster';
export const LABEL_REGION = 'topology.kubernetes.io/region';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const LABEL_SUBZONE = 'topology.istio.io/subzone';
export const ANNOTATION_GATEWAY_PORT = 'networking.istio.io/gatewayPort';
export const DEFAULT_GATEWAY_PORT = 15443;

export interface ClusterIdentity {
  clusterId: string;
  /** The network workloads are on when nothing more specific says otherwise. */
  network: string;
  /** `region/zone/subzone` of the cluster, used for workloads that declare none. */
  locality?: string;
  /** DNS suffix of service hostnames; `cluster.local` unless the mesh says otherwise. */
  domainSuffix?: string;
  /** The namespace whose `topology.istio.io/network` label sets the cluster-wide network. */
  systemNamespace?: string;
}

interface ServiceSpecLike {
  ports?: Array<{ name?: string; port: number; targetPort?: number | string; protocol?: string; appProtocol?: string }>;
  selector?: Record<string, string>;
  clusterIP?: string;
  externalIPs?: string[];
}

interface ServiceStatusLike {
  loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> };
}

interface WorkloadEntrySpecLike {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  serviceAccount?: string;
}

/**
 * Builds one cluster's registry from the resources its store (or API server) holds: Services, WorkloadEntries
 * and Namespaces. Network of a workload: its own label or field, else its namespace's label, else the system
 * namespace's, else the cluster's configured network (the order ARCHITECTURE.md gives).
 */
export function buildClusterRegistry(identity: ClusterIdentity, resources: readonly Resource[]): ClusterRegistry {
  const suffix = identity.domainSuffix ?? 'cluster.local';
  const namespaceNetwork = new Map<string, string>();
  for (const r of resources) {
    const net = r.kind === 'Namespace' ? r.metadata.labels?.[LABEL_NETWORK] : undefined;
    if (net) namespaceNetwork.set(r.metadata.name, net);
  }
  const clusterNetwork = namespaceNetwork.get(identity.systemNamespace ?? 'istio-system') ?? identity.network;
  const clusterLocality = identity.locality;

  const services: ClusterService[] = [];
  const workloads: Workload[] = [];
  const gateways: NetworkGateway[] = [];

  for (const r of resources) {
    const ns = r.metadata.namespace ?? 'default';
    if (r.kind === 'Service') {
      const spec = (r.spec ?? {}) as ServiceSpecLike;
      const service: ClusterService = {
        hostname: `${r.metadata.name}.${ns}.svc.${suffix}`,
        name: r.metadata.name,
        namespace: ns,
        ports: (spec.ports ?? []).map(toServicePort),
        labels: r.metadata.labels ?? {},
        ...(spec.clusterIP && spec.clusterIP !== 'None' ? { vip: spec.clusterIP } : {}),
        ...(spec.selector ? { selector: spec.selector } : {}),
      };
      services.push(service);
      gateways.push(...gatewaysOf(r, spec, identity.clusterId));
    } else if (r.kind === 'WorkloadEntry') {
      const spec = (r.spec ?? {}) as WorkloadEntrySpecLike;
      if (!spec.address) continue;
      const labels = { ...(r.metadata.labels ?? {}), ...(spec.labels ?? {}) };
      const locality =
        spec.locality ??
        (labels[LABEL_REGION] ? [labels[LABEL_REGION], labels[LABEL_ZONE] ?? '', labels[LABEL_SUBZONE] ?? ''].join('/') : clusterLocality);
      workloads.push({
        name: r.metadata.name,
        namespace: ns,
        address: spec.address,
        labels,
        serviceAccount: spec.serviceAccount ?? 'default',
        cluster: identity.clusterId,
        network: spec.network || labels[LABEL_NETWORK] || namespaceNetwork.get(ns) || clusterNetwork,
        locality: parseLocality(locality),
        tlsMode: labels['security.istio.io/tlsMode'] === 'disabled' ? 'disabled' : 'istio',
        ports: spec.ports ?? {},
        healthy: r.metadata.annotations?.['crossmesh.io/health'] !== 'unhealthy',
      });
    }
  }
  return { clusterId: identity.clusterId, network: clusterNetwork, services, workloads, gateways };
}

function toServicePort(p: NonNullable<ServiceSpecLike['ports']>[number]): ServicePort {
  const name = p.name ?? '';
  return {
    name,
    port: p.port,
    targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port,
    protocol: protocolOf(name, p.appProtocol, p.protocol),
  };
}

/** Istio's protocol selection: `appProtocol`, else the port name's prefix (`http-web`, `grpc`, `tcp-db`). */
export function protocolOf(name: string, appProtocol?: string, l4?: string): PortProtocol {
  if (l4 === 'UDP' || l4 === 'SCTP') return 'UNKNOWN';
  const candidates = [appProtocol, name.split('-')[0]];
  for (const c of candidates) {
    switch (c?.toLowerCase()) {
      case 'http':
        return 'HTTP';
      case 'http2':
      case 'h2c':
        return 'HTTP2';
      case 'grpc':
      case 'grpc-web':
        return 'GRPC';
      case 'https':
        return 'HTTPS';
      case 'tls':
        return 'TLS';
      case 'tcp':
      case 'mongo':
      case 'mysql':
      case 'redis':
        return 'TCP';
    }
  }
  return 'UNKNOWN';
}

/**
 * A Service labelled with a network and exposing the gateway port is that network's east-west gateway;
 * each load-balancer ingress address and external IP is one gateway address other networks may dial.
 */
function gatewaysOf(r: Resource, spec: ServiceSpecLike, clusterId: string): NetworkGateway[] {
  const network = r.metadata.labels?.[LABEL_NETWORK];
  if (!network) return [];
  const port = Number(r.metadata.annotations?.[ANNOTATION_GATEWAY_PORT] ?? DEFAULT_GATEWAY_PORT);
  if (!(spec.ports ?? []).some((p) => p.port === port)) return [];
  const status = (r as Resource & { status?: ServiceStatusLike }).status;
  const addresses = [
    ...(status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? i.hostname),
    ...(spec.externalIPs ?? []),
  ].filter((a): a is string => Boolean(a));
  return [...new Set(addresses)].map((address) => ({ network, cluster: clusterId, address, port }));
}
