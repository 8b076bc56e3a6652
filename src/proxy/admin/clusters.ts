/** `/clusters` in Envoy's two shapes: `cluster::host:port::stat::value` lines, and `?format=json`. */
import type { ClusterStatus } from '../runtime/sidecar-contract.js';

export function renderClustersText(clusters: readonly ClusterStatus[]): string {
  const lines: string[] = [];
  for (const c of clusters) {
    for (const e of c.endpoints) {
      const host = `${c.name}::${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`;
      const flags = e.ejected ? '/failed_outlier_check' : e.health === 'HEALTHY' || e.health === 'UNKNOWN' ? 'healthy' : `/eds_status_${e.health.toLowerCase()}`;
      lines.push(`${host}::rq_active::${e.activeRequests}`);
      lines.push(`${host}::health_flags::${flags}`);
      lines.push(`${host}::priority::${e.priority}`);
      lines.push(`${host}::locality::${e.locality}`);
    }
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

export function renderClustersJson(clusters: readonly ClusterStatus[]): object {
  return {
    cluster_statuses: clusters.map((c) => ({
      name: c.name,
      host_statuses: c.endpoints.map((e) => ({
        address: { socket_address: { address: e.address, port_value: e.port } },
        stats: [{ name: 'rq_active', type: 'GAUGE', value: e.activeRequests }],
        health_status: { eds_health_status: e.health, ...(e.ejected ? { failed_outlier_check: true } : {}) },
        locality: e.locality,
        priority: e.priority,
      })),
    })),
  };
}
