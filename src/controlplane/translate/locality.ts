import type { Locality } from '../../registry/model.js';
import { formatLocality } from '../../registry/model.js';
import { LABEL_CLUSTER, LABEL_NETWORK, LABEL_REGION, LABEL_SUBZONE, LABEL_ZONE } from '../../registry/from-resources.js';
import type { LbEndpoint, LocalityEndpoints } from '../aggregate/index.js';
import type { LocalityLbSetting } from '../../api/index.js';

/** A locality's endpoints at one priority, with the locality's weight (Envoy's LocalityLbEndpoints). */
export interface PrioritizedLocality {
  locality: Locality;
  priority: number;
  /** Sum of endpoint weights, or the `distribute` share; 0 means "send nothing here". */
  weight: number;
  endpoints: LbEndpoint[];
}

/** The caller's position: where locality and failoverPriority labels are compared from. */
export interface LocalityCaller {
  locality: Locality;
  network: string;
  cluster: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * Istio's locality load balancing. Without a setting, or with `enabled: false`, everything is priority 0
 * weighted by endpoint count. `distribute` reweights localities for callers whose locality matches `from`.
 * Failover (the default when enabled) needs outlier detection, as Istio documents: priority 0 is the
 * caller's own region/zone/subzone, then same zone, same region, `failover` target regions, everything
 * else. `failoverPriority` orders by how many of the listed labels, in order, match the caller's.
 */
export function prioritize(
  groups: readonly LocalityEndpoints[],
  caller: LocalityCaller,
  setting: LocalityLbSetting | undefined,
  outlierDetection: boolean,
): PrioritizedLocality[] {
  const flat = (): PrioritizedLocality[] =>
    groups.map((g) => ({ locality: g.locality, priority: 0, weight: sumWeights(g.endpoints), endpoints: g.endpoints }));

  if (!setting || setting.enabled === false) return flat();

  if (setting.distribute && setting.distribute.length > 0) {
    const rule = setting.distribute.find((d) => localityPatternMatches(d.from, caller.locality));
    if (!rule) return flat();
    return groups.map((g) => ({
      locality: g.locality,
      priority: 0,
      weight: Object.entries(rule.to)
        .filter(([pattern]) => localityPatternMatches(pattern, g.locality))
        .reduce((best, [, share]) => Math.max(best, share), 0),
      endpoints: g.endpoints,
    }));
  }

  if (!outlierDetection) return flat();

  const out: PrioritizedLocality[] = [];
  if (setting.failoverPriority && setting.failoverPriority.length > 0) {
    const labels = setting.failoverPriority;
    const callerLabels = topologyLabels(caller.labels, caller.network, caller.cluster, caller.locality);
    for (const g of groups) {
      const byPriority = new Map<number, LbEndpoint[]>();
      for (const e of g.endpoints) {
        const epLabels = topologyLabels(e.endpoint?.workload.labels ?? {}, e.network, e.cluster, g.locality);
        let matched = 0;
        while (matched < labels.length && callerLabels[labels[matched]!] !== undefined && callerLabels[labels[matched]!] === epLabels[labels[matched]!]) matched++;
        const p = labels.length - matched;
        byPriority.set(p, [...(byPriority.get(p) ?? []), e]);
      }
      for (const [p, endpoints] of byPriority) {
        out.push({ locality: g.locality, priority: p * 5 + localityRank(g.locality, caller.locality, setting), weight: sumWeights(endpoints), endpoints });
      }
    }
  } else {
    for (const g of groups) {
      out.push({ locality: g.locality, priority: localityRank(g.locality, caller.locality, setting), weight: sumWeights(g.endpoints), endpoints: g.endpoints });
    }
  }
  return compactPriorities(out);
}

/** 0 same subzone, 1 same zone, 2 same region, 3 a `failover` target of the caller's region, 4 elsewhere. */
function localityRank(l: Locality, caller: Locality, setting: LocalityLbSetting): number {
  if (l.region === caller.region) {
    if (l.zone === caller.zone) return l.subzone === caller.subzone ? 0 : 1;
    return 2;
  }
  const targets = (setting.failover ?? []).filter((f) => f.from === caller.region).map((f) => f.to);
  return targets.includes(l.region) ? 3 : 4;
}

/** Priorities must be consecutive from 0 for Envoy; keep their order, close the gaps. */
function compactPriorities(list: PrioritizedLocality[]): PrioritizedLocality[] {
  const used = [...new Set(list.map((p) => p.priority))].sort((a, b) => a - b);
  return list
    .map((p) => ({ ...p, priority: used.indexOf(p.priority) }))
    .sort((a, b) => a.priority - b.priority || formatLocality(a.locality).localeCompare(formatLocality(b.locality)));
}

function sumWeights(endpoints: readonly LbEndpoint[]): number {
  return endpoints.reduce((s, e) => s + e.weight, 0);
}

/** `us-east`, `us-east/zone-a`, `us-east/zone-a/*`, `*` — Istio's locality patterns. */
function localityPatternMatches(pattern: string, l: Locality): boolean {
  const parts = pattern.split('/');
  const values = [l.region, l.zone, l.subzone];
  return parts.every((p, i) => p === '*' || p === values[i]);
}

function topologyLabels(labels: Readonly<Record<string, string>>, network: string, cluster: string, l: Locality): Record<string, string> {
  return {
    ...labels,
    [LABEL_NETWORK]: network,
    [LABEL_CLUSTER]: cluster,
    [LABEL_REGION]: l.region,
    [LABEL_ZONE]: l.zone,
    [LABEL_SUBZONE]: l.subzone,
  };
}
