/**
 * Upstream mechanisms: endpoints with keep-alive pools and mTLS origination, priority/locality selection,
 * load balancers, circuit-breaker counters and outlier detection. Knows Envoy semantics, not mesh policy.
 */
export { ClusterRuntime } from './cluster.js';
export type { HostOutcome, PickOptions } from './cluster.js';
export { UpstreamHost, CONNECTED, TRANSPORT_FAILURE, PEER_ID, uriSans, sanMatches } from './host.js';
export type { SecureContextSource, UpstreamSocket, HostLimits } from './host.js';
export { hash32 } from './hash.js';
export { appendHeaderLine, appendHeaderLines, buildRequestHead, checkRequestTarget, chunkSize, headerList, invalidHeaderLine, joinHead } from './http1.js';
export type { ExchangeEvents, ExchangeHandle, OutgoingHeaders } from './http1.js';
export { Http2Pool, H2_CONNECTION_HEADERS, rawHeaderList } from './http2.js';
export type { Http2Request } from './http2.js';
export type * from './types.js';
