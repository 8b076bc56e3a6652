import { createHash } from 'node:crypto';
import type { AnyResource, DeploymentSpec, TopologyCheck, TopologyMeshConfig } from '../api/index.js';
import type { Resource } from '../api/types.js';
import type { SampleApp } from './apps/apps.js';
import { appForImage } from './apps/apps.js';

export type Isolation = 'loopback' | 'netns';

/** Everything `crossmesh up` will start, decided before anything starts. */
export interface LabPlan {
  meshId: string;
  trustDomain: string;
  isolation: Isolation;
  networks: string[];
  clusters: ClusterPlan[];
  checks: TopologyCheck[];
}

export interface ClusterPlan {
  name: string;
  network: string;
  locality: string;
  /** 1-based position, used for address assignment. */
  index: number;
  /** The root CA this cluster's intermediate is signed by; clusters with the same one trust each other. */
  trustRoot: string;
  /** Whether its sidecars answer DNS from the mesh name table (ISTIO_META_DNS_CAPTURE). */
  dnsCapture: boolean;
  /** Resources applied to the control plane: everything but Deployments, which become pods. */
  resources: Resource[];
  gateways: GatewayPlan[];
  pods: PodPlan[];
}

export interface GatewayPlan {
  name: string;
  cluster: string;
  network: string;
  port: number;
}

export interface PodPlan {
  /** `helloworld-v1-5f6d8c7b9-x2k4q`, as a ReplicaSet would name it. */
  name: string;
  cluster: string;
  namespace: string;
  deployment: string;
  image: string;
  app: SampleApp | undefined;
  labels: Record<string, string>;
  serviceAccount: string;
  /** Container ports, else the app's default port. */
  ports: number[];
  env: Record<string, string>;
}

/**
 * Turns a Topology and its clusters' manifests into a plan. Pod names are derived from the deployment's
 * template and replica index, so the same topology gives the same names on every run.
 */
/** The root every cluster shares unless its topology entry names another. */
export const DEFAULT_TRUST_ROOT = 'mesh';

export interface TopologyClusterInput {
  name: string;
  network: string;
  locality?: string | undefined;
  trustRoot?: string | undefined;
  meshConfig?: TopologyMeshConfig | undefined;
  gateways?: { eastWest?: { replicas: number; port: number } | undefined } | undefined;
}

export function planLab(
  spec: { meshId: string; trustDomain: string; isolation: Isolation; meshConfig?: TopologyMeshConfig | undefined; networks: Array<{ name: string }>; clusters: TopologyClusterInput[]; checks: TopologyCheck[] },
  manifests: ReadonlyMap<string, readonly AnyResource[]>,
  isolation?: Isolation,
): LabPlan {
  const clusters: ClusterPlan[] = spec.clusters.map((c, i) => {
    const resources = (manifests.get(c.name) ?? []) as readonly Resource[];
    const pods: PodPlan[] = [];
    for (const r of resources) {
      if (r.kind !== 'Deployment') continue;
      const d = r.spec as DeploymentSpec;
      const template = d.template;
      const container = template.spec.containers[0]!;
      const env = Object.fromEntries((container.env ?? []).flatMap((e) => (e.value !== undefined ? [[e.name, e.value]] : [])));
      const app = appForImage(container.image, env);
      const hash = createHash('sha256').update(`${c.name}/${r.metadata.namespace}/${r.metadata.name}/${JSON.stringify(template)}`).digest('hex');
      const replicas = d.replicas ?? 1;
      for (let k = 0; k < replicas; k++) {
        const suffix = createHash('sha256').update(`${hash}/${k}`).digest('hex').replace(/[^a-z]/g, '').slice(0, 5).padEnd(5, 'x');
        pods.push({
          name: `${r.metadata.name}-${hash.slice(0, 9)}-${suffix}`,
          cluster: c.name,
          namespace: r.metadata.namespace ?? 'default',
          deployment: r.metadata.name,
          image: container.image,
          app,
          labels: { ...(template.metadata?.labels ?? {}) },
          serviceAccount: template.spec.serviceAccountName ?? 'default',
          ports: (container.ports ?? []).map((p) => p.containerPort).filter((p): p is number => typeof p === 'number'),
          env,
        });
      }
    }
    const eastWest = c.gateways?.eastWest;
    const gateways: GatewayPlan[] = Array.from({ length: eastWest?.replicas ?? 0 }, (_, r) => ({
      name: `istio-eastwestgateway-${r + 1}`,
      cluster: c.name,
      network: c.network,
      port: eastWest?.port ?? 15443,
    }));
    return {
      name: c.name,
      network: c.network,
      locality: c.locality ?? '',
      index: i + 1,
      trustRoot: c.trustRoot ?? DEFAULT_TRUST_ROOT,
      dnsCapture: (c.meshConfig?.defaultConfig?.proxyMetadata?.ISTIO_META_DNS_CAPTURE ?? spec.meshConfig?.defaultConfig?.proxyMetadata?.ISTIO_META_DNS_CAPTURE) !== 'false',
      resources: resources.filter((r) => r.kind !== 'Deployment' && r.kind !== 'Topology'),
      gateways,
      pods,
    };
  });
  return {
    meshId: spec.meshId,
    trustDomain: spec.trustDomain,
    isolation: isolation ?? spec.isolation,
    networks: spec.networks.map((n) => n.name),
    clusters,
    checks: spec.checks,
  };
}

/** The Service that makes a cluster's east-west gateways known as its network's gateway (Istio's convention). */
export function eastWestGatewayService(cluster: ClusterPlan, publicAddresses: string[]): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'istio-eastwestgateway',
      namespace: 'istio-system',
      labels: { istio: 'eastwestgateway', app: 'istio-eastwestgateway', 'topology.istio.io/network': cluster.network },
    },
    spec: {
      selector: { istio: 'eastwestgateway' },
      ports: [{ name: 'tls', port: cluster.gateways[0]?.port ?? 15443 }],
      externalIPs: publicAddresses,
    },
  };
}
