import type { Locality } from '../../registry/model.js';
import type { XdsNode } from '../../xds/index.js';
import { parseIstioNodeId } from '../../xds/index.js';
import { formatLocality, parseLocality } from '../../registry/model.js';

export type ProxyRole = 'sidecar' | 'router';

/** What translation knows about the proxy it generates for, read from its xDS node. */
export interface ProxyInfo {
  id: string;
  role: ProxyRole;
  ip: string;
  podName: string;
  namespace: string;
  serviceAccount: string;
  cluster: string;
  network: string;
  locality: Locality;
  labels: Record<string, string>;
  /** Networks an east-west gateway serves; empty for sidecars. */
  requestedNetworkView: string[];
  /** A gRPC proxyless client (bootstrap metadata GENERATOR=grpc): plaintext, no capture listeners. */
  proxyless: boolean;
  /** REDIRECT: iptables captures traffic; NONE: apps use the sidecar explicitly (Istio's INTERCEPTION_MODE). */
  interception: 'REDIRECT' | 'NONE';
  /** Where the sidecar reaches its own app (metadata APP_HOST), default 127.0.0.1. */
  appHost: string;
  /** The proxy reports its readiness (HEALTH_REPORTS node metadata): its auto-registered endpoint starts unhealthy. */
  reportsHealth: boolean;
}

/**
 * Reads Istio's node conventions: id `sidecar~10.0.0.5~pod.ns~ns.svc.cluster.local` (`router` for
 * gateways) and metadata CLUSTER_ID, NETWORK, REQUESTED_NETWORK_VIEW, NAMESPACE, SERVICE_ACCOUNT,
 * LABELS, GENERATOR. Anything missing gets a safe default rather than failing the stream.
 */
export function proxyInfoFromNode(node: XdsNode): ProxyInfo {
  // gRPC clients may send any id; their identity comes from metadata alone.
  const parsed = parseIstioNodeId(node.id);
  const role = parsed?.role ?? 'sidecar';
  const ip = parsed?.ip ?? '';
  const md = node.metadata ?? {};
  const str = (k: string): string | undefined => (typeof md[k] === 'string' ? (md[k] as string) : undefined);
  const podName = parsed?.pod ?? str('NAME') ?? '';
  const namespace = str('NAMESPACE') ?? parsed?.namespace ?? 'default';
  const labels = md.LABELS && typeof md.LABELS === 'object' ? (md.LABELS as Record<string, string>) : {};
  const view = str('REQUESTED_NETWORK_VIEW');
  const locality = node.locality
    ? { region: node.locality.region ?? '', zone: node.locality.zone ?? '', subzone: node.locality.sub_zone ?? '' }
    : parseLocality(str('LOCALITY'));
  return {
    id: node.id,
    role,
    ip,
    podName,
    namespace: namespace || 'default',
    serviceAccount: str('SERVICE_ACCOUNT') ?? 'default',
    cluster: str('CLUSTER_ID') ?? '',
    network: str('NETWORK') ?? '',
    locality,
    labels,
    requestedNetworkView: view ? view.split(',').map((s) => s.trim()).filter(Boolean) : [],
    proxyless: str('GENERATOR') === 'grpc',
    interception: str('INTERCEPTION_MODE') === 'NONE' ? 'NONE' : 'REDIRECT',
    appHost: str('APP_HOST') ?? '127.0.0.1',
    reportsHealth: str('HEALTH_REPORTS') === 'true',
  };
}

/**
 * Proxies that would receive identical resources share one snapshot. What a sidecar is sent depends only
 * on where it is (cluster, network, locality), who it is (namespace, labels: they pick its inbound ports
 * and `sourceLabels` routes) and how it gets traffic; replicas of one workload therefore share a group.
 * In explicit mode the listeners bind the pod's own address, so each pod is its own group.
 */
export function proxyGroupKey(p: ProxyInfo): string {
  const where = `${p.cluster}~${p.network}~${formatLocality(p.locality)}`;
  if (p.proxyless) return `grpc~${where}~${p.namespace}`;
  if (p.role === 'router') return `router~${where}~${p.requestedNetworkView.join(',')}~${labelsKey(p.labels)}`;
  const own = p.interception === 'NONE' ? `~${p.ip}` : '';
  return `sidecar~${where}~${p.namespace}~${labelsKey(p.labels)}~${p.interception}~${p.appHost}${own}`;
}

function labelsKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}
