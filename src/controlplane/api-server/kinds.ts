/** How a kind appears in URLs: its plural, its group, and whether it lives in namespaces. */
export interface KindInfo {
  kind: string;
  plural: string;
  /** Group the kind is usually served under (used for discovery); `''` is the core group. */
  group: string;
  version: string;
  namespaced: boolean;
  /** What kubectl accepts instead of the plural (`svc`, `vs`, …). */
  shortNames?: string[];
}

const known: KindInfo[] = [
  { kind: 'Namespace', plural: 'namespaces', group: '', version: 'v1', namespaced: false, shortNames: ['ns'] },
  { kind: 'Service', plural: 'services', group: '', version: 'v1', namespaced: true, shortNames: ['svc'] },
  { kind: 'Secret', plural: 'secrets', group: '', version: 'v1', namespaced: true },
  { kind: 'ServiceAccount', plural: 'serviceaccounts', group: '', version: 'v1', namespaced: true, shortNames: ['sa'] },
  { kind: 'ConfigMap', plural: 'configmaps', group: '', version: 'v1', namespaced: true, shortNames: ['cm'] },
  { kind: 'Pod', plural: 'pods', group: '', version: 'v1', namespaced: true, shortNames: ['po'] },
  { kind: 'Endpoints', plural: 'endpoints', group: '', version: 'v1', namespaced: true, shortNames: ['ep'] },
  { kind: 'Node', plural: 'nodes', group: '', version: 'v1', namespaced: false, shortNames: ['no'] },
  { kind: 'Deployment', plural: 'deployments', group: 'apps', version: 'v1', namespaced: true, shortNames: ['deploy'] },
  { kind: 'EndpointSlice', plural: 'endpointslices', group: 'discovery.k8s.io', version: 'v1', namespaced: true },
  { kind: 'VirtualService', plural: 'virtualservices', group: 'networking.istio.io', version: 'v1', namespaced: true, shortNames: ['vs'] },
  { kind: 'DestinationRule', plural: 'destinationrules', group: 'networking.istio.io', version: 'v1', namespaced: true, shortNames: ['dr'] },
  { kind: 'Gateway', plural: 'gateways', group: 'networking.istio.io', version: 'v1', namespaced: true, shortNames: ['gw'] },
  { kind: 'ServiceEntry', plural: 'serviceentries', group: 'networking.istio.io', version: 'v1', namespaced: true, shortNames: ['se'] },
  { kind: 'WorkloadEntry', plural: 'workloadentries', group: 'networking.istio.io', version: 'v1', namespaced: true, shortNames: ['we'] },
  { kind: 'WorkloadGroup', plural: 'workloadgroups', group: 'networking.istio.io', version: 'v1', namespaced: true, shortNames: ['wg'] },
  { kind: 'Sidecar', plural: 'sidecars', group: 'networking.istio.io', version: 'v1', namespaced: true },
  { kind: 'EnvoyFilter', plural: 'envoyfilters', group: 'networking.istio.io', version: 'v1alpha3', namespaced: true },
  { kind: 'PeerAuthentication', plural: 'peerauthentications', group: 'security.istio.io', version: 'v1', namespaced: true, shortNames: ['pa'] },
  { kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', group: 'security.istio.io', version: 'v1', namespaced: true, shortNames: ['ap'] },
  { kind: 'RequestAuthentication', plural: 'requestauthentications', group: 'security.istio.io', version: 'v1', namespaced: true, shortNames: ['ra'] },
  { kind: 'Telemetry', plural: 'telemetries', group: 'telemetry.istio.io', version: 'v1', namespaced: true },
  { kind: 'MeshConfig', plural: 'meshconfigs', group: 'crossmesh.io', version: 'v1', namespaced: false },
];

const byPlural = new Map(known.map((k) => [k.plural, k]));
const byKind = new Map(known.map((k) => [k.kind, k]));

/** English-ish plural, as Kubernetes derives CRD plurals: `Gateway`→`gateways`, `Policy`→`policies`. */
export function pluralize(kind: string): string {
  const lower = kind.toLowerCase();
  if (/[^aeiou]y$/.test(lower)) return lower.slice(0, -1) + 'ies';
  if (/(s|x|z|ch|sh)$/.test(lower)) return lower + 'es';
  return lower + 's';
}

/** The table entry for a plural, if the kind is a well-known one. */
export function kindForPlural(plural: string): KindInfo | undefined {
  return byPlural.get(plural);
}

/** Info for any kind: the table, else the generic fallback (derived plural, namespaced). */
export function infoForKind(kind: string, group: string): KindInfo {
  const k = byKind.get(kind);
  if (k) return k;
  const slash = group.indexOf('/');
  return { kind, plural: pluralize(kind), group: slash < 0 ? group : group.slice(0, slash), version: 'v1', namespaced: true };
}

export function knownKinds(): readonly KindInfo[] {
  return known;
}

/** Versions a group is served at; Istio's groups keep their older versions, all with one schema here. */
export function groupVersions(group: string): string[] {
  if (group === 'telemetry.istio.io') return ['v1', 'v1alpha1'];
  if (group.endsWith('istio.io')) return ['v1', 'v1beta1', 'v1alpha3'];
  return ['v1'];
}
