import type { ClusterLoadAssignment } from '../../xds/index.js';
import { clusterLoadAssignment } from '../../xds/index.js';
import type { PrioritizedLocality } from './locality.js';

/**
 * The ClusterLoadAssignment for prioritized localities: every endpoint carries the metadata Istio puts
 * there, `tlsMode` for transport socket matching and the workload/cluster/network for telemetry.
 * A locality's weight may be 0 (`distribute` sends it nothing); an endpoint's is at least 1.
 */
export function buildClusterLoadAssignment(clusterName: string, localities: readonly PrioritizedLocality[]): ClusterLoadAssignment {
  return clusterLoadAssignment(
    clusterName,
    localities.map((l) => ({
      locality: { region: l.locality.region, zone: l.locality.zone, sub_zone: l.locality.subzone },
      weight: Math.max(0, Math.round(l.weight)),
      priority: l.priority,
      endpoints: l.endpoints.map((e) => ({
        address: e.address,
        port: e.port,
        weight: Math.max(1, e.weight),
        health: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
        tlsMode: e.viaGateway || e.endpoint?.workload.tlsMode !== 'disabled' ? 'istio' : 'disabled',
        istioMetadata: {
          workload: e.endpoint ? `${e.endpoint.workload.name};${e.endpoint.workload.namespace};;;${e.cluster}` : `;;;;${e.cluster}`,
          cluster: e.cluster,
          network: e.network,
          ...(e.viaGateway ? { gateway: 'true' } : {}),
        },
      })),
    })),
  );
}
