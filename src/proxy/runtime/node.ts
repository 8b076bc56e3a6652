/**
 * The xDS node a proxy introduces itself with, following Istio's conventions so the control plane's
 * proxyInfoFromNode (and an Istio control plane) reads it the same way as an Envoy sidecar's.
 */
import type { Locality, XdsNode } from '../../xds/index.js';
import { istioNodeId } from '../../xds/index.js';

export type ProxyRole = 'sidecar' | 'eastwest-gateway';
export type InterceptionMode = 'REDIRECT' | 'NONE';

export interface ProxyIdentityInfo {
  role: ProxyRole;
  ip: string;
  podName: string;
  namespace: string;
  serviceAccount: string;
  cluster: string;
  network: string;
  labels: Readonly<Record<string, string>>;
  locality?: Locality;
  interception?: InterceptionMode;
  appHost?: string;
  appPorts?: readonly number[];
  /**
   * Sidecar only: whether the DNS proxy answers the pod's queries (Istio's ISTIO_META_DNS_CAPTURE, sent as
   * node metadata DNS_CAPTURE); default true.
   */
  dnsCapture?: boolean;
  /** Networks a gateway serves; default its own network. */
  requestedNetworkView?: readonly string[];
  domainSuffix?: string;
}

/** Istio's proxy type for a role: gateways are `router`. */
export function istioProxyType(role: ProxyRole): 'sidecar' | 'router' {
  return role === 'eastwest-gateway' ? 'router' : 'sidecar';
}

/** `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<suffix>` (or `router~…`). */
export function proxyNodeId(p: Pick<ProxyIdentityInfo, 'role' | 'ip' | 'podName' | 'namespace' | 'domainSuffix'>): string {
  return istioNodeId({ role: istioProxyType(p.role), ip: p.ip, pod: p.podName, namespace: p.namespace, ...(p.domainSuffix ? { domain: p.domainSuffix } : {}) });
}

/** Parses `region/zone/subzone` (any suffix may be missing). */
export function parseLocalityText(text: string): Locality {
  const [region = '', zone = '', subZone = ''] = text.split('/');
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subZone ? { sub_zone: subZone } : {}) };
}

export function buildProxyNode(p: ProxyIdentityInfo): XdsNode {
  const metadata: Record<string, unknown> = {
    CLUSTER_ID: p.cluster,
    NETWORK: p.network,
    NAMESPACE: p.namespace,
    SERVICE_ACCOUNT: p.serviceAccount,
    LABELS: { ...p.labels },
    INTERCEPTION_MODE: p.interception ?? 'REDIRECT',
    NAME: p.podName,
    INSTANCE_IPS: p.ip,
    // Readiness goes to the control plane as Istio's HealthInformation: until then our endpoint is unhealthy.
    HEALTH_REPORTS: 'true',
  };
  if (p.role === 'eastwest-gateway') {
    metadata.REQUESTED_NETWORK_VIEW = (p.requestedNetworkView?.length ? p.requestedNetworkView : [p.network]).join(',');
  } else {
    metadata.DNS_CAPTURE = String(p.dnsCapture !== false);
  }
  if (p.appHost) metadata.APP_HOST = p.appHost;
  if (p.appPorts?.length) metadata.POD_PORTS = JSON.stringify(p.appPorts.map((port) => ({ containerPort: port, protocol: 'TCP' })));
  const locality = p.locality ?? {};
  const text = [locality.region ?? '', locality.zone ?? '', locality.sub_zone ?? ''].join('/').replace(/\/+$/, '');
  if (text) metadata.LOCALITY = text;
  return {
    id: proxyNodeId(p),
    cluster: `${p.serviceAccount}.${p.namespace}`,
    metadata,
    // Always sent, even empty, so the control plane never falls back to guessing.
    locality: { region: locality.region ?? '', zone: locality.zone ?? '', sub_zone: locality.sub_zone ?? '' },
    user_agent_name: 'crossmesh',
  };
}
