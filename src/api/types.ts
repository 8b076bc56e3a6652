/** Kubernetes-style object metadata, as users write it in YAML. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the store: a monotonically increasing version, as a decimal string. */
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  generation?: number;
}

/** Any resource crossmesh understands: Kubernetes core kinds, Istio kinds, mesh settings, lab topologies. */
export interface Resource<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  /** Secrets and ConfigMaps carry data instead of spec. */
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  type?: string;
}

/** `Kind/namespace/name`, or `Kind/name` for cluster-scoped resources: how errors and logs name a resource. */
export function resourceRef(r: Pick<Resource, 'kind' | 'metadata'>): string {
  const ns = r.metadata?.namespace;
  return ns ? `${r.kind}/${ns}/${r.metadata.name}` : `${r.kind}/${r.metadata?.name ?? '<unnamed>'}`;
}
