export { decodeMessage, decodeHeader, encodeMessage, RRType, RRClass, RCode } from './codec.js';
export type { DnsHeader, DnsQuestion, DnsRecord, DnsMessage, SoaData, DecodeResult } from './codec.js';
export { createNameTableLookup, candidateNames } from './name-table.js';
export type { NameInfo, NameTable, MeshAddresses, MeshLookup } from './name-table.js';
export { createDnsProxy, answerLocally, DEFAULT_DNS_PROXY_PORT } from './server.js';
export type { DnsProxy, DnsProxyOptions } from './server.js';
export { forwardQuery, parseUpstream } from './upstream.js';
export type { UpstreamServer, ForwardResult, ForwardOptions } from './upstream.js';
