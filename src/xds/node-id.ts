/**
 * Istio's proxy node id, `<role>~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`: what a proxy puts in
 * node.id and what the control plane reads a workload's identity from.
 */
export type ProxyRole = 'sidecar' | 'router';

export interface NodeIdParts {
  role: ProxyRole;
  ip: string;
  pod: string;
  namespace: string;
  /** DNS domain suffix, `cluster.local` unless the mesh says otherwise. */
  domain?: string;
}

export function istioNodeId(p: NodeIdParts): string {
  return `${p.role}~${p.ip}~${p.pod}.${p.namespace}~${p.namespace}.svc.${p.domain ?? 'cluster.local'}`;
}

/** Parses a node id built by istioNodeId; undefined for anything else (e.g. a gRPC client's free-form id). */
export function parseIstioNodeId(id: string): Required<NodeIdParts> | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const [role, ip, podNs, dns] = parts as [string, string, string, string];
  if ((role !== 'sidecar' && role !== 'router') || ip === '') return undefined;
  const dot = podNs.lastIndexOf('.');
  if (dot <= 0 || dot === podNs.length - 1) return undefined;
  const pod = podNs.slice(0, dot);
  const namespace = podNs.slice(dot + 1);
  const prefix = `${namespace}.svc.`;
  if (!dns.startsWith(prefix) || dns.length === prefix.length) return undefined;
  return { role, ip, pod, namespace, domain: dns.slice(prefix.length) };
}
