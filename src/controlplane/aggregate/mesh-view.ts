import type {
  ClusterRegistry,
  ClusterService,
  Endpoint,
  NetworkGateway,
  ServicePort,
  Workload,
} from '../../registry/model.js';
import { selectorMatches } from '../../registry/model.js';

/** One service as the whole mesh sees it: the merge of every cluster's definition with the same hostname. */
export interface MeshService {
  hostname: string;
  name: string;
  namespace: string;
  /** Union of the clusters' ports, by port number; the first cluster (in registry order) wins on conflicts. */
  ports: ServicePort[];
  /** Cluster id → that cluster's definition. */
  definitions: ReadonlyMap<string, ClusterService>;
}

/** A port defined differently by two clusters; `analyze` reports these. */
export interface PortConflict {
  hostname: string;
  port: number;
  clusters: [string, string];
  detail: string;
}

/** The merged, read-only view of every cluster's registry that translation reads. */
export interface MeshView {
  readonly services: ReadonlyMap<string, MeshService>;
  readonly gateways: readonly NetworkGateway[];
  readonly conflicts: readonly PortConflict[];
  /** Every cluster's endpoints of `hostname` on service port `port`. */
  endpoints(hostname: string, port: number): readonly Endpoint[];
  /** Every workload known to the mesh, for identity checks and debug views. */
  readonly workloads: readonly Workload[];
}

export interface AggregateOptions {
  /** The cluster this control plane runs in; its cluster-local services are kept, remote ones are not. */
  localCluster: string;
  /** Hosts that must never leave their cluster (mesh config `clusterLocal`). */
  isClusterLocal?: (hostname: string) => boolean;
}

/**
 * Merges cluster registries: a service with the same name and namespace in several clusters is one
 * service whose endpoints are the union of each cluster's own endpoints (a Service only ever selects
 * workloads of its own cluster, as in Kubernetes).
 */
export function aggregate(registries: readonly ClusterRegistry[], options: AggregateOptions): MeshView {
  const isClusterLocal = options.isClusterLocal ?? (() => false);
  const services = new Map<string, MeshService>();
  const conflicts: PortConflict[] = [];
  const byHostPort = new Map<string, Endpoint[]>();
  const workloads: Workload[] = [];
  const gateways: NetworkGateway[] = [];

  for (const registry of registries) {
    const remote = registry.clusterId !== options.localCluster;
    workloads.push(...registry.workloads);
    gateways.push(...registry.gateways);
    const index = indexWorkloads(registry.workloads);
    for (const svc of registry.services) {
      if (remote && isClusterLocal(svc.hostname)) continue;
      mergeService(services, conflicts, registry.clusterId, svc);
      if (!svc.selector) continue;
      const selected = selectWorkloads(index, svc.namespace, svc.selector);
      for (const port of svc.ports) {
        const key = hostPortKey(svc.hostname, port.port);
        const list = byHostPort.get(key) ?? [];
        for (const w of selected) {
          list.push({
            hostname: svc.hostname,
            servicePort: port.port,
            address: w.address,
            port: workloadPort(port, w),
            workload: w,
          });
        }
        byHostPort.set(key, list);
      }
    }
  }

  return {
    services,
    gateways,
    conflicts,
    workloads,
    endpoints: (hostname, port) => byHostPort.get(hostPortKey(hostname, port)) ?? [],
  };
}

/** A registry's workloads by namespace, and within it by `key=value` label, each list in registry order. */
type WorkloadIndex = Map<string, { all: Workload[]; byLabel: Map<string, Workload[]> }>;

function indexWorkloads(workloads: readonly Workload[]): WorkloadIndex {
  const index: WorkloadIndex = new Map();
  for (const w of workloads) {
    let ns = index.get(w.namespace);
    if (!ns) index.set(w.namespace, (ns = { all: [], byLabel: new Map() }));
    ns.all.push(w);
    for (const [k, v] of Object.entries(w.labels)) {
      const key = labelKey(k, v);
      const list = ns.byLabel.get(key);
      if (list) list.push(w);
      else ns.byLabel.set(key, [w]);
    }
  }
  return index;
}

/**
 * The workloads of `namespace` a selector matches, in registry order. Matching every service against every
 * workload made each rebuild cost services × workloads; the candidates here are those carrying the
 * selector's rarest label, which every match must carry.
 */
function selectWorkloads(index: WorkloadIndex, namespace: string, selector: Record<string, string>): Workload[] {
  const ns = index.get(namespace);
  if (!ns) return [];
  let candidates = ns.all;
  for (const [k, v] of Object.entries(selector)) {
    const list = ns.byLabel.get(labelKey(k, v));
    if (!list) return [];
    if (list.length < candidates.length) candidates = list;
  }
  return candidates.filter((w) => selectorMatches(selector, w.labels));
}

function labelKey(k: string, v: string): string {
  return `${k}\0${v}`;
}

function mergeService(
  services: Map<string, MeshService>,
  conflicts: PortConflict[],
  clusterId: string,
  svc: ClusterService,
): void {
  const existing = services.get(svc.hostname);
  if (!existing) {
    services.set(svc.hostname, {
      hostname: svc.hostname,
      name: svc.name,
      namespace: svc.namespace,
      ports: [...svc.ports],
      definitions: new Map([[clusterId, svc]]),
    });
    return;
  }
  (existing.definitions as Map<string, ClusterService>).set(clusterId, svc);
  const [firstCluster] = existing.definitions.keys();
  for (const port of svc.ports) {
    const known = existing.ports.find((p) => p.port === port.port);
    if (!known) {
      existing.ports.push(port);
      continue;
    }
    if (known.name !== port.name || known.protocol !== port.protocol || known.targetPort !== port.targetPort) {
      conflicts.push({
        hostname: svc.hostname,
        port: port.port,
        clusters: [firstCluster!, clusterId],
        detail: `${describePort(known)} vs ${describePort(port)}`,
      });
    }
  }
}

function describePort(p: ServicePort): string {
  return `${p.name || '<unnamed>'} ${p.protocol} →${p.targetPort}`;
}

function hostPortKey(hostname: string, port: number): string {
  return `${hostname}:${port}`;
}

/** A workload's named port wins over the service's numeric targetPort, as Kubernetes resolves named ports. */
function workloadPort(port: ServicePort, w: Workload): number {
  return w.ports[port.name] ?? port.targetPort;
}
