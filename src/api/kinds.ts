import type { z } from 'zod';
import { deploymentSchema, namespaceSchema, secretSchema, serviceAccountSchema, serviceSchema } from './schema/kubernetes.js';
import { virtualServiceSchema } from './schema/virtual-service.js';
import { destinationRuleSchema } from './schema/destination-rule.js';
import { gatewaySchema, serviceEntrySchema, workloadEntrySchema, workloadGroupSchema } from './schema/networking.js';
import { authorizationPolicySchema, peerAuthenticationSchema } from './schema/security.js';
import { meshConfigSchema, topologySchema } from './schema/crossmesh.js';
import type { topologyClusterSchema, topologySpecSchema } from './schema/crossmesh.js';

// The table of every kind crossmesh accepts: which apiVersions serve it, whether it lives in a namespace,
// and its schema. Adding a kind means one schema and one row here.

/** What the validator knows about one kind. */
export interface KindInfo {
  readonly kind: string;
  readonly apiVersions: readonly string[];
  /** Namespaced kinds get `metadata.namespace: default` when it is omitted; cluster-scoped kinds drop it. */
  readonly namespaced: boolean;
  readonly schema: z.ZodType;
}

function info(schema: z.ZodType & { shape: { kind: { value: string }; apiVersion: { options: readonly string[] } } }, namespaced: boolean): KindInfo {
  return { kind: schema.shape.kind.value, apiVersions: schema.shape.apiVersion.options, namespaced, schema };
}

/** Every kind, in the order `crossmesh validate` lists them in messages. */
export const KINDS: readonly KindInfo[] = [
  info(namespaceSchema, false),
  info(serviceSchema, true),
  info(serviceAccountSchema, true),
  info(secretSchema, true),
  info(deploymentSchema, true),
  info(virtualServiceSchema, true),
  info(destinationRuleSchema, true),
  info(gatewaySchema, true),
  info(serviceEntrySchema, true),
  info(workloadEntrySchema, true),
  info(workloadGroupSchema, true),
  info(peerAuthenticationSchema, true),
  info(authorizationPolicySchema, true),
  info(meshConfigSchema, false),
  info(topologySchema, false),
];

const byKind = new Map(KINDS.map((k) => [k.kind, k]));

/** Looks a kind up by its exact (case-sensitive) name. */
export function kindInfo(kind: string): KindInfo | undefined {
  return byKind.get(kind);
}

/** A validated resource of one schema: what the schema outputs, minus `status` (dropped on input). */
type Validated<S extends z.ZodType> = Omit<z.output<S>, 'status'>;

export type Namespace = Validated<typeof namespaceSchema>;
export type Service = Validated<typeof serviceSchema>;
export type ServiceAccount = Validated<typeof serviceAccountSchema>;
export type Secret = Validated<typeof secretSchema>;
export type Deployment = Validated<typeof deploymentSchema>;
export type VirtualService = Validated<typeof virtualServiceSchema>;
export type DestinationRule = Validated<typeof destinationRuleSchema>;
export type Gateway = Validated<typeof gatewaySchema>;
export type ServiceEntry = Validated<typeof serviceEntrySchema>;
export type WorkloadEntry = Validated<typeof workloadEntrySchema>;
export type WorkloadGroup = Validated<typeof workloadGroupSchema>;
export type PeerAuthentication = Validated<typeof peerAuthenticationSchema>;
export type AuthorizationPolicy = Validated<typeof authorizationPolicySchema>;
export type MeshConfig = Validated<typeof meshConfigSchema>;

/** A lab cluster; inline manifests have been validated into typed resources, file paths are kept as given. */
export type TopologyCluster = Omit<z.output<typeof topologyClusterSchema>, 'manifests'> & {
  manifests: Array<string | AnyResource>;
};
export type TopologySpec = Omit<z.output<typeof topologySpecSchema>, 'clusters'> & { clusters: TopologyCluster[] };
export type Topology = Omit<Validated<typeof topologySchema>, 'spec'> & { spec: TopologySpec };

/**
 * Any validated resource. Discriminate on `kind`. Resources returned by the validator are frozen,
 * defaulted (namespaced kinds always carry `metadata.namespace`), and free of `status`.
 */
export type AnyResource =
  | Namespace
  | Service
  | ServiceAccount
  | Secret
  | Deployment
  | VirtualService
  | DestinationRule
  | Gateway
  | ServiceEntry
  | WorkloadEntry
  | WorkloadGroup
  | PeerAuthentication
  | AuthorizationPolicy
  | MeshConfig
  | Topology;

export type Kind = AnyResource['kind'];
export type ResourceOfKind<K extends Kind> = Extract<AnyResource, { kind: K }>;

/** Narrows a resource to one kind. */
export function isKind<K extends Kind>(r: AnyResource, kind: K): r is ResourceOfKind<K> {
  return r.kind === kind;
}

/** The resources of one kind, in input order. */
export function ofKind<K extends Kind>(resources: readonly AnyResource[], kind: K): ResourceOfKind<K>[] {
  return resources.filter((r): r is ResourceOfKind<K> => r.kind === kind);
}
