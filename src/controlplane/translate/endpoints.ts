import type { PrioritizedLocality } from './locality.js';
import { resourceStruct as struct } from './struct.js';

type Obj = Record<string, unknown>;

/**
 * An Envoy ClusterLoadAssignment. Every locality carries a weight (gRPC xDS clients require one) and
 * every endpoint the metadata Istio puts there: `tlsMode` for transport socket matching, and the
 * workload/cluster for telemetry.
 */
export function buildClusterLoadAssignment(clusterName: string, localities: readonly PrioritizedLocality[]): Obj {
  return {
    cluster_name: clusterName,
    endpoints: localities
      .filter((l) => l.endpoints.length > 0)
      .map((l) => ({
        locality: { region: l.locality.region, zone: l.locality.zone, sub_zone: l.locality.subzone },
        // A zero weight would make Envoy drop the locality from weighted balancing; keep it, at 0, only
        // when `distribute` asked for it, otherwise at least 1.
        load_balancing_weight: { value: Math.max(0, Math.round(l.weight)) },
        priority: l.priority,
        lb_endpoints: l.endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
          load_balancing_weight: { value: Math.max(1, e.weight) },
          metadata: {
            filter_metadata: {
              'envoy.transport_socket_match': struct({ tlsMode: e.viaGateway || e.endpoint?.workload.tlsMode !== 'disabled' ? 'istio' : 'disabled' }),
              istio: struct({
                workload: e.endpoint ? `${e.endpoint.workload.name};${e.endpoint.workload.namespace};;;${e.cluster}` : `;;;;${e.cluster}`,
                cluster: e.cluster,
                network: e.network,
                ...(e.viaGateway ? { gateway: 'true' } : {}),
              }),
            },
          },
        })),
      })),
  };
}
