import { X509Certificate } from 'node:crypto';
import type { DestinationRuleSpec, VirtualServiceSpec } from '../api/index.js';
import { hostMatches, resolveHost, secretData } from '../api/index.js';
import type { Resource } from '../api/types.js';
import { resourceRef } from '../api/types.js';
import type { ServicePort } from '../registry/index.js';
import { LABEL_NETWORK, buildClusterRegistry } from '../registry/index.js';

export type Level = 'Error' | 'Warning' | 'Info';

/** One config mistake, with an Istio-style code (IST…) where Istio has one and CM… where it has none. */
export interface Finding {
  code: string;
  level: Level;
  /** `Kind/ns/name` of the resource at fault, or `cluster/<name>`. */
  resource: string;
  cluster: string;
  message: string;
}

export interface ClusterInput {
  name: string;
  /** The cluster's network, when known (lab state or istio-system's label). */
  network?: string;
  resources: readonly Resource[];
  /** The cluster CA's root certificate(s), PEM, when known. */
  rootCertPem?: string;
  /** The control plane's remote clusters that are not synced (wrong cluster id, refused credentials, unreachable). */
  remoteErrors?: ReadonlyArray<{ cluster: string; secret: string; status: string; reason?: string }>;
  /** Services defined with different ports by different clusters, as a control plane reports them. */
  portConflicts?: ReadonlyArray<{ hostname: string; port: number; clusters: [string, string]; detail: string }>;
}

const CODES = {
  referencedNotFound: 'IST0101',
  destinationRuleNoService: 'CM0001',
  failoverWithoutOutlier: 'CM0002',
  differentRoots: 'CM0003',
  remoteSecretSelf: 'CM0004',
  remoteSecretUnknown: 'CM0005',
  portsDiffer: 'CM0006',
  networkWithoutGateway: 'CM0007',
  weights: 'CM0008',
  remoteUnsynced: 'CM0009',
} as const;

/**
 * Finds config mistakes before traffic does. Per cluster: VirtualService subsets and hosts that do not exist,
 * DestinationRules for hosts no cluster serves, locality failover without outlier detection, weights not
 * adding up. Across clusters: different root CAs, remote secrets naming this cluster or an unknown one,
 * a service with different ports in different clusters, a network whose workloads no gateway exposes.
 */
export function analyze(clusters: readonly ClusterInput[], options: { domainSuffix?: string } = {}): Finding[] {
  const suffix = options.domainSuffix ?? 'cluster.local';
  const findings: Finding[] = [];
  const services = new Set<string>();
  for (const c of clusters) {
    for (const r of c.resources) if (r.kind === 'Service') services.add(`${r.metadata.name}.${r.metadata.namespace ?? 'default'}.svc.${suffix}`);
  }
  const serviceEntryHosts = clusters.flatMap((c) => c.resources.filter((r) => r.kind === 'ServiceEntry').flatMap((r) => ((r.spec as { hosts?: string[] }).hosts ?? [])));
  const known = (host: string) => services.has(host) || serviceEntryHosts.some((h) => hostMatches(h, host));

  for (const c of clusters) {
    const add = (code: string, level: Level, r: Resource | string, message: string) =>
      findings.push({ code, level, resource: typeof r === 'string' ? r : resourceRef(r), cluster: c.name, message });
    const rules = c.resources.filter((r) => r.kind === 'DestinationRule') as Array<Resource<DestinationRuleSpec>>;
    const ruleFor = (host: string) => rules.find((dr) => hostMatches(resolveHost(dr.spec!.host, dr.metadata.namespace ?? 'default', suffix), host));

    for (const vs of c.resources.filter((r) => r.kind === 'VirtualService') as Array<Resource<VirtualServiceSpec>>) {
      const ns = vs.metadata.namespace ?? 'default';
      for (const [i, http] of (vs.spec?.http ?? []).entries()) {
        const dests = http.route ?? [];
        if (dests.length > 1) {
          const sum = dests.reduce((s, d) => s + (d.weight ?? 0), 0);
          if (sum !== 100) add(CODES.weights, 'Error', vs, `spec.http[${i}]: route weights add up to ${sum}, not 100`);
        }
        for (const d of dests) {
          const host = resolveHost(d.destination.host, ns, suffix);
          if (!known(host)) add(CODES.referencedNotFound, 'Error', vs, `Referenced host not found: "${host}"`);
          if (d.destination.subset && !ruleFor(host)?.spec?.subsets?.some((s) => s.name === d.destination.subset)) {
            add(CODES.referencedNotFound, 'Error', vs, `Referenced host+subset in destinationrule not found: "${host}+${d.destination.subset}"`);
          }
        }
      }
    }
    for (const dr of rules) {
      const host = resolveHost(dr.spec!.host, dr.metadata.namespace ?? 'default', suffix);
      if (!host.includes('*') && !known(host)) add(CODES.destinationRuleNoService, 'Warning', dr, `DestinationRule host "${host}" matches no service in any cluster`);
      const policies = [dr.spec?.trafficPolicy, ...(dr.spec?.subsets ?? []).map((s) => s.trafficPolicy)].filter(Boolean);
      for (const p of policies) {
        const lb = p!.loadBalancer?.localityLbSetting;
        const failover = lb && lb.enabled !== false && !lb.distribute?.length;
        if (failover && !p!.outlierDetection) {
          add(CODES.failoverWithoutOutlier, 'Warning', dr, 'locality failover is configured without outlierDetection: traffic will not fail over (Istio needs outlier detection to eject unhealthy endpoints)');
        }
      }
    }
    for (const s of c.resources.filter((r) => r.kind === 'Secret' && r.metadata.labels?.['istio/multiCluster'] === 'true')) {
      for (const id of Object.keys(secretData(s as never))) {
        if (id === c.name) add(CODES.remoteSecretSelf, 'Error', s, `remote secret for cluster "${id}" is installed in that same cluster`);
        else if (clusters.length > 1 && !clusters.some((x) => x.name === id)) add(CODES.remoteSecretUnknown, 'Warning', s, `remote secret names cluster "${id}", which is not among the analyzed clusters (${clusters.map((x) => x.name).join(', ')})`);
      }
    }
    for (const r of c.remoteErrors ?? []) {
      add(CODES.remoteUnsynced, r.status === 'error' ? 'Error' : 'Warning', `Secret/${r.secret}`, `remote cluster "${r.cluster}" is ${r.status}${r.reason ? `: ${r.reason}` : ''}`);
    }
    for (const p of c.portConflicts ?? []) {
      add(CODES.portsDiffer, 'Warning', `Service/${p.hostname}`, `service port ${p.port} is defined differently in ${p.clusters[0]} and ${p.clusters[1]}: ${p.detail}`);
    }
  }

  const withRoots = clusters.filter((c) => c.rootCertPem);
  const fingerprints = new Map(withRoots.map((c) => [c.name, rootFingerprint(c.rootCertPem!)]));
  const distinct = new Set(fingerprints.values());
  if (distinct.size > 1) {
    const groups = [...distinct].map((f) => [...fingerprints].filter(([, v]) => v === f).map(([k]) => k).join(', '));
    for (const c of withRoots) {
      findings.push({ code: CODES.differentRoots, level: 'Error', resource: `cluster/${c.name}`, cluster: c.name, message: `clusters do not share a root CA (${groups.map((g) => `{${g}}`).join(' vs ')}): mTLS between them will fail at the handshake` });
    }
  }

  const networks = new Map<string, { clusters: string[]; gateway: boolean }>();
  for (const c of clusters) {
    if (!c.network) continue;
    const entry = networks.get(c.network) ?? { clusters: [], gateway: false };
    entry.clusters.push(c.name);
    entry.gateway ||= c.resources.some((r) => r.kind === 'Service' && r.metadata.labels?.[LABEL_NETWORK] === c.network && ((r.spec as { ports?: Array<{ port: number }> }).ports ?? []).some((p) => p.port === 15443));
    networks.set(c.network, entry);
  }
  if (networks.size > 1) {
    for (const [network, n] of networks) {
      if (!n.gateway) {
        for (const name of n.clusters) {
          findings.push({ code: CODES.networkWithoutGateway, level: 'Warning', resource: `cluster/${name}`, cluster: name, message: `network "${network}" has no east-west gateway: its services are unreachable from the other networks (${[...networks.keys()].filter((x) => x !== network).join(', ')})` });
        }
      }
    }
  }
  return findings.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.code.localeCompare(b.code) || a.resource.localeCompare(b.resource));
}

type PortConflict = NonNullable<ClusterInput['portConflicts']>[number];

/**
 * Service ports that clusters define differently, compared as a control plane merges them: the first cluster
 * defining a port is the reference, and each later cluster that differs gets the conflict (keyed by its name).
 */
export function servicePortConflicts(clusters: readonly ClusterInput[], options: { domainSuffix?: string } = {}): Map<string, PortConflict[]> {
  const first = new Map<string, { cluster: string; port: ServicePort }>();
  const out = new Map<string, PortConflict[]>();
  for (const c of clusters) {
    const registry = buildClusterRegistry({ clusterId: c.name, network: c.network ?? '', ...(options.domainSuffix ? { domainSuffix: options.domainSuffix } : {}) }, c.resources);
    for (const svc of registry.services) {
      for (const port of svc.ports) {
        const key = `${svc.hostname}:${port.port}`;
        const known = first.get(key);
        if (!known) {
          first.set(key, { cluster: c.name, port });
        } else if (known.port.name !== port.name || known.port.protocol !== port.protocol || known.port.targetPort !== port.targetPort) {
          const list = out.get(c.name) ?? [];
          list.push({ hostname: svc.hostname, port: port.port, clusters: [known.cluster, c.name], detail: `${describePort(known.port)} vs ${describePort(port)}` });
          out.set(c.name, list);
        }
      }
    }
  }
  return out;
}

function describePort(p: ServicePort): string {
  return `${p.name || '<unnamed>'} ${p.protocol} →${p.targetPort}`;
}

/** The first root's fingerprint; roots that cannot be parsed are their own group. */
function rootFingerprint(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return `unparsable:${pem.length}`;
  }
}

/** `Error [IST0101] (VirtualService sample/helloworld) cluster-1: Referenced …`, as istioctl prints. */
export function formatFinding(f: Finding): string {
  return `${f.level} [${f.code}] (${f.resource.replace(/^([^/]+)\//, '$1 ')}) ${f.cluster}: ${f.message}`;
}
