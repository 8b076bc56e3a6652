// The config model: Kubernetes, Istio and crossmesh resources; reading them from YAML/JSON; validating them.
export * from './types.js';
export * from './kinds.js';
export { parseDocuments, MAX_DEPTH } from './parse.js';
export type { SourceDocument, ParsedText } from './parse.js';
export { validateResources, parseResources, deepFreeze } from './validate.js';
export type { ValidatedResource, ValidationResult, ValidateOptions } from './validate.js';
export { loadSources, loadAndValidate, loadResources, loadTopologyManifests, STDIN_NAME } from './load.js';
export type { LoadOptions, LoadedSources, LoadResult } from './load.js';
export { resolveHost } from './checks.js';
export { secretData, hostMatches, isClusterLocal, routeWeights } from './helpers.js';
export { formatPath } from './issues.js';
export { parseDuration, isDns1123Label, isDns1123Subdomain } from './schema/common.js';
export * from './schema/versions.js';

export type { NamespaceSpec, ServicePort, ServiceSpec, Container, PodSpec, DeploymentSpec } from './schema/kubernetes.js';
export type { Destination, Headers, HTTPRouteDestination, RouteDestination, HTTPMatchRequest, HTTPRetry, HTTPFaultInjection, HTTPRoute, TLSRoute, TCPRoute, VirtualServiceSpec } from './schema/virtual-service.js';
export type { LocalityLbSetting, LoadBalancerSettings, ConnectionPoolSettings, OutlierDetection, ClientTLSSettings, TrafficPolicy, Subset, DestinationRuleSpec } from './schema/destination-rule.js';
export type { ServerTLSSettings, GatewayServer, GatewaySpec, WorkloadEntrySpec, ServiceEntryPort, ServiceEntrySpec, WorkloadGroupSpec } from './schema/networking.js';
export type { PeerAuthenticationSpec, AuthorizationRule, AuthorizationPolicySpec } from './schema/security.js';
export type { MeshConfigSpec, TopologyCheck, TopologyMeshConfig } from './schema/crossmesh.js';
