import type { AnyResource, DestinationRuleSpec, GatewaySpec, MeshConfigSpec, VirtualServiceSpec } from '../api/index.js';
import { isClusterLocal, validateResources } from '../api/index.js';
import type { Resource } from '../api/types.js';
import type { ClusterIdentity, ClusterRegistry } from '../registry/index.js';
import { allocateVips, buildClusterRegistry } from '../registry/index.js';
import type { Logger } from '../shared/log.js';
import type { MeshService, MeshView } from './aggregate/index.js';
import { aggregate } from './aggregate/index.js';
import type { MeshConfigSnapshot, MeshSettings } from './translate/index.js';

/** Everything translation needs, rebuilt as a whole after each (debounced) batch of changes. */
export interface MeshInputs {
  view: MeshView;
  config: MeshConfigSnapshot;
  mesh: MeshSettings;
  vipOf: (svc: MeshService) => string | undefined;
  /** Resources in the store that failed validation and were left out, for /debug and logs. */
  skipped: ReadonlyArray<{ resource: string; message: string }>;
}

const REGISTRY_KINDS = new Set(['Service', 'WorkloadEntry', 'Namespace']);
const CONFIG_KINDS = new Set(['VirtualService', 'DestinationRule', 'Gateway', 'MeshConfig']);

/**
 * Builds the mesh view from this cluster's stored resources and the registries of remote clusters.
 * Istio config (VirtualService, DestinationRule, Gateway) is per cluster, as in multi-primary Istio: only
 * the local store's applies here. Stored config is validated again so translation always sees defaulted,
 * typed resources; anything invalid is skipped and reported, never allowed to break the rest.
 */
export function buildMeshInputs(input: {
  identity: ClusterIdentity;
  local: readonly Resource[];
  remotes: readonly ClusterRegistry[];
  meshFile?: MeshConfigSpec;
  logger?: Logger;
}): MeshInputs {
  const registryResources = input.local.filter((r) => REGISTRY_KINDS.has(r.kind));
  const localRegistry = buildClusterRegistry(input.identity, registryResources);

  const skipped: Array<{ resource: string; message: string }> = [];
  const configDocs = input.local.filter((r) => CONFIG_KINDS.has(r.kind));
  const validated: AnyResource[] = [];
  for (const [i, doc] of configDocs.entries()) {
    // One at a time: a broken resource must not take valid ones down with it.
    const result = validateResources([{ file: 'store', index: i + 1, value: doc }], { domainSuffix: input.identity.domainSuffix ?? 'cluster.local' });
    if (result.problems.length) {
      const message = result.problems.map((p) => [p.path, p.message].filter(Boolean).join(': ')).join('; ');
      skipped.push({ resource: `${doc.kind}/${doc.metadata.namespace ?? ''}/${doc.metadata.name}`, message });
      input.logger?.warn('stored resource is invalid and was skipped', { resource: `${doc.kind}/${doc.metadata.namespace}/${doc.metadata.name}`, problems: message });
    } else {
      validated.push(...result.resources);
    }
  }
  const ofKind = <T>(kind: string) => validated.filter((r) => r.kind === kind) as unknown as Resource<T>[];
  const meshResource = ofKind<MeshConfigSpec>('MeshConfig')[0];
  const meshSpec = input.meshFile ?? meshResource?.spec;
  const meshForHelpers = meshSpec ? ({ spec: meshSpec } as Parameters<typeof isClusterLocal>[0]) : undefined;

  const view = aggregate([localRegistry, ...input.remotes], {
    localCluster: input.identity.clusterId,
    isClusterLocal: (h) => isClusterLocal(meshForHelpers, h),
  });

  const autoVips = allocateVips(view.services.keys());
  const vipOf = (svc: MeshService) => svc.definitions.get(input.identity.clusterId)?.vip ?? autoVips.get(svc.hostname);

  return {
    view,
    config: {
      virtualServices: ofKind<VirtualServiceSpec>('VirtualService'),
      destinationRules: ofKind<DestinationRuleSpec>('DestinationRule'),
      gateways: ofKind<GatewaySpec>('Gateway'),
    },
    mesh: {
      trustDomain: meshSpec?.trustDomain ?? 'cluster.local',
      domainSuffix: input.identity.domainSuffix ?? 'cluster.local',
      ...(meshSpec?.localityLbSetting ? { localityLbSetting: meshSpec.localityLbSetting } : {}),
      ...(meshSpec?.defaultOutlierDetection ? { defaultOutlierDetection: meshSpec.defaultOutlierDetection } : {}),
    },
    vipOf,
    skipped,
  };
}
