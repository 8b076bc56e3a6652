import type { Locality } from '../../registry/model.js';
import type { XdsNode } from '../../xds/index.js';
import { parseLocality } from '../../registry/model.js';

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
}

/**
 * Reads Istio's node conventions: id `sidecar~10.0.0.5~pod.ns~ns.svc.cluster.local` (`router` for
 * gateways) and metadata CLUSTER_ID, NETWORK, REQUESTED_NETWORK_VIEW, NAMESPACE, SERVICE_ACCOUNT,
 * LABELS, GENERATOR. Anything missing gets a safe default rather than failing the stream.
 */
export function proxyInfoFromNode(node: XdsNode): ProxyInfo {
  const [role = 'sidecar', ip = '', podDotNs = '', domain = ''] = node.id.split('~');
  const md = node.metadata ?? {};
  const str = (k: string): string | undefined => (typeof md[k] === 'string' ? (md[k] as string) : undefined);
  const podName = podDotNs.includes('.') ? podDotNs.slice(0, podDotNs.lastIndexOf('.')) : podDotNs;
  const namespace = str('NAMESPACE') ?? (podDotNs.includes('.') ? podDotNs.slice(podDotNs.lastIndexOf('.') + 1) : domain.split('.')[0] ?? 'default');
  const labels = md.LABELS && typeof md.LABELS === 'object' ? (md.LABELS as Record<string, string>) : {};
  const view = str('REQUESTED_NETWORK_VIEW');
  const locality = node.locality
    ? { region: node.locality.region ?? '', zone: node.locality.zone ?? '', subzone: node.locality.sub_zone ?? '' }
    : parseLocality(str('LOCALITY'));
  return {
    id: node.id,
    role: role === 'router' ? 'router' : 'sidecar',
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
  };
}

/** Proxies that would receive identical resources share one snapshot. */
export function proxyGroupKey(p: ProxyInfo): string {
  if (p.proxyless) return `grpc~${p.cluster}~${p.network}~${p.namespace}`;
  if (p.role === 'router') return `router~${p.cluster}~${p.network}~${p.requestedNetworkView.join(',')}`;
  // Sidecars differ by their own inbound ports and identity, so each gets its own group.
  return `sidecar~${p.id}`;
}
