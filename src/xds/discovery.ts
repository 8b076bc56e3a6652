/** DiscoveryRequest/DiscoveryResponse as the ADS service definition (protos.ts) hands them over. */
import type { Any } from './any.js';
import { fromStruct, toStruct } from './struct.js';
import type { Locality, StructValue, XdsNode } from './types.js';

/** google.rpc.Status carried in a NACK. */
export interface RpcStatus {
  code: number;
  message: string;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: WireNode | null;
  resource_names?: string[];
  type_url: string;
  response_nonce?: string;
  error_detail?: RpcStatus | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Any[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier: string } | null;
}

/** Node as it travels: metadata is a google.protobuf.Struct. */
export interface WireNode {
  id?: string;
  cluster?: string;
  metadata?: StructValue | null;
  locality?: Locality | null;
  user_agent_name?: string;
}

export function nodeToWire(node: XdsNode): WireNode {
  return {
    id: node.id,
    cluster: node.cluster ?? '',
    metadata: toStruct(node.metadata ?? {}),
    locality: node.locality ?? {},
    user_agent_name: node.user_agent_name ?? 'crossmesh',
  };
}

export function nodeFromWire(wire: WireNode): XdsNode {
  const node: XdsNode = { id: wire.id ?? '', metadata: fromStruct(wire.metadata) };
  if (wire.cluster) node.cluster = wire.cluster;
  if (wire.locality && (wire.locality.region || wire.locality.zone || wire.locality.sub_zone)) {
    node.locality = {
      ...(wire.locality.region ? { region: wire.locality.region } : {}),
      ...(wire.locality.zone ? { zone: wire.locality.zone } : {}),
      ...(wire.locality.sub_zone ? { sub_zone: wire.locality.sub_zone } : {}),
    };
  }
  if (wire.user_agent_name) node.user_agent_name = wire.user_agent_name;
  return node;
}

/** gRPC status code sent in error_detail when a client rejects an update. */
export const INVALID_ARGUMENT = 3;
