/**
 * xDS: what the control plane and the proxy share, and nothing else. Type URLs, packing resources in
 * Any, the resource shapes, Istio naming, builders, and an ADS client.
 */
export { TYPE_URLS, HEALTH_INFO_TYPE_URL, EXTENSION_TYPE_URLS, PUSH_ORDER, pushRank, isWildcardType, messageNameOf } from './type-urls.js';
export type { ResourceKind, ResourceTypeUrl } from './type-urls.js';
export { encodeResource, decodeResource, resourceName, resourceNameOf, messageType, toJsonValue, XdsCodecError } from './any.js';
export type { Any, DecodedResource } from './any.js';
export { resourceRoot, adsServiceDefinition, protoIncludeDirs, ProtoLoadError, ADS_SERVICE_NAME, RESOURCE_PROTO_FILES } from './protos.js';
export { toStruct, fromStruct } from './struct.js';
export { nodeToWire, nodeFromWire, INVALID_ARGUMENT } from './discovery.js';
export type { DiscoveryRequest, DiscoveryResponse, WireNode, RpcStatus } from './discovery.js';
export * from './naming.js';
export { istioNodeId, parseIstioNodeId } from './node-id.js';
export type { NodeIdParts, ProxyRole } from './node-id.js';
export { diffUpdate } from './diff.js';
export type { ResourceDiff } from './diff.js';
export * from './builders.js';
export type * from './types.js';
export { createBackoff } from './backoff.js';
export type { Backoff, BackoffOptions } from './backoff.js';
export { createAdsClient, DEFAULT_CHANNEL_OPTIONS } from './ads-client.js';
export type { AdsClient, AdsClientOptions, AdsClientStatus, ResourceUpdate, UpdateHandler } from './ads-client.js';
