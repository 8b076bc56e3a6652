/**
 * The proxy process core: `createProxy` for the sidecar and east-west gateway roles (xDS node, identity,
 * ADS, state handed to the data path, DNS, admin), and transparent capture with iptables.
 */
export { createProxy } from './proxy.js';
export type { Proxy, ProxyOptions, ProxyAddresses, CredentialProvider } from './proxy.js';
export { buildProxyNode, proxyNodeId, parseLocalityText, istioProxyType } from './node.js';
export type { ProxyIdentityInfo, ProxyRole, InterceptionMode } from './node.js';
export { createXdsState, edsNamesOf, rdsNamesOf } from './xds-state.js';
export type { XdsState, TypeVersion } from './xds-state.js';
export { sniRoutesOf, usableEndpoints, gatewayResolver } from './gateway-routes.js';
export { installCapture, captureRules, removalRules, CaptureError, CAPTURE_OUTPUT_CHAIN, CAPTURE_INBOUND_CHAIN, PROXY_GID } from './capture.js';
export type { Capture, CaptureOptions, CaptureTool } from './capture.js';
export type * from './sidecar-contract.js';
