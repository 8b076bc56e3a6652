/**
 * The mesh's service model, independent of where it came from (embedded store, remote control plane,
 * Kubernetes API). Translation to Envoy resources reads only these types.
 */

/** `region/zone/subzone`; empty parts mean "unknown". */
export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS' | 'HTTPS' | 'UNKNOWN';

export interface ServicePort {
  name: string;
  port: number;
  /** The workload port traffic for this service port lands on. */
  targetPort: number;
  protocol: PortProtocol;
}

/** One service as one cluster defines it. */
export interface ClusterService {
  /** FQDN, e.g. `helloworld.sample.svc.cluster.local`. */
  hostname: string;
  name: string;
  namespace: string;
  ports: ServicePort[];
  /** The service's virtual IP in this cluster, if it has one. */
  vip?: string;
  labels: Record<string, string>;
  /** Workload label selector; undefined for services whose endpoints are given explicitly. */
  selector?: Record<string, string>;
}

/**
 * Whether a workload can take mutual TLS from another sidecar. Only `istio` endpoints may be reached
 * through an east-west gateway, because the gateway routes on the SNI that only sidecars send.
 */
export type TlsMode = 'istio' | 'disabled';

/** One workload instance (a pod, a VM, a process with a sidecar). */
export interface Workload {
  name: string;
  namespace: string;
  address: string;
  labels: Record<string, string>;
  serviceAccount: string;
  cluster: string;
  network: string;
  locality: Locality;
  tlsMode: TlsMode;
  /** Named ports the workload declares (`http: 8080`), used when a service's targetPort is a name. */
  ports: Record<string, number>;
  healthy: boolean;
}

/** A service endpoint: one workload on one port of one service. */
export interface Endpoint {
  hostname: string;
  servicePort: number;
  address: string;
  port: number;
  workload: Workload;
}

/** An east-west gateway: the address other networks dial to reach `network`. */
export interface NetworkGateway {
  network: string;
  cluster: string;
  address: string;
  port: number;
}

/** What one cluster contributes to the mesh. */
export interface ClusterRegistry {
  clusterId: string;
  network: string;
  services: ClusterService[];
  workloads: Workload[];
  gateways: NetworkGateway[];
}

export function parseLocality(value: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (value ?? '').split('/');
  return { region, zone, subzone };
}

export function formatLocality(l: Locality): string {
  return [l.region, l.zone, l.subzone].join('/').replace(/\/+$/, '');
}

export function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
