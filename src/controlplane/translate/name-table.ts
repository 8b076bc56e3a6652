import type { MeshService } from '../aggregate/index.js';

/** Istio's NDS NameTable: what the DNS proxy answers, FQDN → addresses. */
export interface NameTable {
  table: Record<string, { ips: string[]; registry: string; shortname: string; namespace: string }>;
}

/**
 * Every service the proxy may call, including ones defined only in remote clusters, with the address
 * the proxy's listeners capture: the local cluster's VIP if it has one, else an auto-allocated one.
 */
export function buildNameTable(services: Iterable<MeshService>, vipOf: (svc: MeshService) => string | undefined): NameTable {
  const table: NameTable['table'] = {};
  for (const svc of services) {
    const vip = vipOf(svc);
    if (!vip) continue;
    table[svc.hostname] = { ips: [vip], registry: 'Kubernetes', shortname: svc.name, namespace: svc.namespace };
  }
  return { table };
}
