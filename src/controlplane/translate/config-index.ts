import type { Resource } from '../../api/types.js';
import { hostMatches, resolveHost } from '../../api/index.js';
import type { DestinationRuleSpec, TrafficPolicy, VirtualServiceSpec } from '../../api/index.js';
import type { MeshConfigSnapshot } from './config.js';

const ROOT_NAMESPACE = 'istio-system';


function byAge<T>(a: Resource<T>, b: Resource<T>): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta === tb ? `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`) : ta.localeCompare(tb);
}

function visibleTo(exportTo: string[] | undefined, ruleNamespace: string, proxyNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0 || exportTo.includes('*')) return true;
  return exportTo.some((e) => (e === '.' ? ruleNamespace : e) === proxyNamespace);
}

/** Fast lookups of the rules that apply to a host, as seen from one proxy namespace. */
export interface ConfigIndex {
  /** The VirtualService bound to the mesh (sidecars) for `hostname`, oldest first wins as in Istio. */
  virtualServiceFor(hostname: string, proxyNamespace: string): Resource<VirtualServiceSpec> | undefined;
  /** Precedence: the proxy's namespace, then the service's namespace, then the root namespace; exact before wildcard. */
  destinationRuleFor(hostname: string, proxyNamespace: string, serviceNamespace: string): Resource<DestinationRuleSpec> | undefined;
  readonly domainSuffix: string;
}

export function createConfigIndex(config: MeshConfigSnapshot, domainSuffix: string): ConfigIndex {
  const virtualServices = [...config.virtualServices].sort(byAge);
  const destinationRules = [...config.destinationRules].sort(byAge);
  const nsOf = (r: Resource) => r.metadata.namespace ?? 'default';

  return {
    domainSuffix,
    virtualServiceFor(hostname, proxyNamespace) {
      return virtualServices.find((vs) => {
        const spec = vs.spec!;
        const gateways = spec.gateways ?? [];
        if (gateways.length > 0 && !gateways.includes('mesh')) return false;
        if (!visibleTo(spec.exportTo, nsOf(vs), proxyNamespace)) return false;
        return spec.hosts.some((h) => hostMatches(resolveHost(h, nsOf(vs), domainSuffix), hostname));
      });
    },
    destinationRuleFor(hostname, proxyNamespace, serviceNamespace) {
      const matching = destinationRules.filter(
        (dr) => visibleTo(dr.spec!.exportTo, nsOf(dr), proxyNamespace) && hostMatches(resolveHost(dr.spec!.host, nsOf(dr), domainSuffix), hostname),
      );
      const exactFirst = (list: typeof matching) =>
        list.find((dr) => resolveHost(dr.spec!.host, nsOf(dr), domainSuffix) === hostname) ?? list[0];
      for (const ns of [proxyNamespace, serviceNamespace, ROOT_NAMESPACE]) {
        const found = exactFirst(matching.filter((dr) => nsOf(dr) === ns));
        if (found) return found;
      }
      return exactFirst(matching);
    },
  };
}

/**
 * The policy for one port of one subset: the subset's policy replaces the top-level one field by field,
 * then the port-level settings for `port` replace fields again (Istio's merge order).
 */
export function effectivePolicy(rule: DestinationRuleSpec | undefined, subset: string, port: number): TrafficPolicy {
  if (!rule) return {};
  const subsetPolicy = rule.subsets?.find((s) => s.name === subset)?.trafficPolicy;
  const merged = mergePolicy(rule.trafficPolicy ?? {}, subsetPolicy);
  const portLevel = merged.portLevelSettings?.find((p) => p.port?.number === port);
  return mergePolicy(merged, portLevel);
}

function mergePolicy(base: TrafficPolicy, override: TrafficPolicy | undefined): TrafficPolicy {
  if (!override) return base;
  const out: TrafficPolicy = { ...base };
  for (const key of ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings'] as const) {
    if (override[key] !== undefined) (out as Record<string, unknown>)[key] = override[key];
  }
  return out;
}
