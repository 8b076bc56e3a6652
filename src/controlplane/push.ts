import type { Any, XdsNode } from '../xds/index.js';
import { SDS_ROOT_SECRET, TYPE_URLS } from '../xds/index.js';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import type { SnapshotCache } from './cache/index.js';
import { createSnapshot } from './cache/index.js';
import type { MeshInputs } from './mesh-inputs.js';
import type { ProxyInfo } from './translate/index.js';
import {
  generateEndpointsForProxy,
  generateForProxy,
  generateOutboundClusters,
  generateProxyOwnResources,
  outboundClustersKey,
  proxyGroupKey,
  proxyInfoFromNode,
} from './translate/index.js';
import type { ResourceEncoder } from './resource-encoder.js';
import { createResourceEncoder } from './resource-encoder.js';

export interface PushStats {
  /** Full regenerations of all groups. */
  fullPushes: number;
  /** Batches served by regenerating endpoints only. */
  endpointPushes: number;
  lastEndpointPushMs: number;
  /** Groups whose generation failed (their last good snapshot stays). */
  generationErrors: number;
  lastFullPushMs: number;
  groups: number;
  /** Packed resources kept for reuse across groups and pushes, and how often one was reused. */
  encoderEntries: number;
  encoderHits: number;
  encoderMisses: number;
}

/**
 * Turns the mesh inputs into one snapshot per proxy group. Generation happens here, outside the xDS
 * request path; a failure for one group is logged and counted and leaves that group's last good
 * snapshot in place, so one bad resource for one proxy never stops pushes to the others.
 */
export interface Pusher {
  /** The ADS server's nodeGroup: remembers the proxy and generates its first snapshot if it has none. */
  groupFor(node: XdsNode): string;
  /**
   * Regenerates every known group from new inputs, yielding to the event loop between groups so a large
   * push never starves xDS streams, the resource API or remote watches.
   */
  pushAll(inputs: MeshInputs): Promise<void>;
  /**
   * The EDS fast path, for batches that changed only workloads: every group gets new endpoint
   * assignments and nothing else (gateways, whose listeners may change, get a full generation).
   */
  pushEndpoints(inputs: MeshInputs): Promise<void>;
  /** Drops groups no connected proxy uses any more. */
  forget(group: string): void;
  proxies(): ReadonlyMap<string, ProxyInfo>;
  stats(): PushStats;
}

/**
 * Labels (and the proxy's cluster, a topology label) change endpoint assignments only through
 * `failoverPriority`; without it they are left out of the key.
 */
function endpointsKey(p: ProxyInfo, byLabels: boolean): string {
  const labels = byLabels ? `${p.cluster}|${Object.keys(p.labels).sort().map((k) => `${k}=${p.labels[k]}`).join(',')}` : '';
  return `${p.role}|${p.proxyless}|${p.network}|${p.locality.region}/${p.locality.zone}/${p.locality.subzone}|${p.namespace}|${labels}`;
}

/**
 * Packed outbound clusters and endpoint assignments shared by the groups of one push: groups with equal
 * `outboundClustersKey` get the same clusters, groups with equal `endpointsKey` the same assignments.
 * Only ever used for one MeshInputs.
 */
interface SharedParts {
  byLabels: boolean;
  clusters: Map<string, Any[]>;
  endpoints: Map<string, Any[]>;
}

function sharedParts(inputs: MeshInputs): SharedParts {
  return { byLabels: usesFailoverPriority(inputs), clusters: new Map(), endpoints: new Map() };
}

function usesFailoverPriority(inputs: MeshInputs): boolean {
  const rules = inputs.config.destinationRules.flatMap((dr) => [dr.spec?.trafficPolicy, ...(dr.spec?.subsets ?? []).map((s) => s.trafficPolicy)]);
  const settings = [inputs.mesh.localityLbSetting, ...rules.flatMap((p) => [p?.loadBalancer?.localityLbSetting, ...(p?.portLevelSettings ?? []).map((x) => x.loadBalancer?.localityLbSetting)])];
  return settings.some((l) => (l?.failoverPriority?.length ?? 0) > 0);
}

/**
 * The mesh trust bundle as the SDS secret `ROOTCA` that clusters and listeners reference. Workload keys
 * are never here: each proxy makes its own and gets it signed by the CA (Istio's agent model), and serves
 * `default` to its data path itself.
 */
function rootCaSecret(rootsPem: string): object {
  return { name: SDS_ROOT_SECRET, validation_context: { trusted_ca: { inline_string: rootsPem } } };
}

export function createPusher(options: {
  cache: SnapshotCache;
  logger: Logger;
  current: () => MeshInputs | undefined;
  /** The mesh root(s), served as the SDS secret ROOTCA. */
  rootsPem?: () => string;
  now?: () => number;
  /** Where packed resources are reused from; a new one unless given (tests pass one to look inside). */
  encoder?: ResourceEncoder;
}): Pusher {
  const groups = new Map<string, ProxyInfo>();
  const now = options.now ?? (() => performance.now());
  const stats = { fullPushes: 0, endpointPushes: 0, lastEndpointPushMs: 0, generationErrors: 0, lastFullPushMs: 0 };

  const encoder: ResourceEncoder = options.encoder ?? createResourceEncoder();
  const pack = (typeUrl: string, values: Iterable<object>): Any[] => [...values].map((v) => encoder.encode(typeUrl, v));

  /** Sidecars and proxyless clients: outbound clusters and endpoints from `shared`, the rest of their own. */
  const generateParts = (proxy: ProxyInfo, inputs: MeshInputs, shared: SharedParts) => {
    const input = { ...inputs, proxy };
    const own = generateProxyOwnResources(input);
    if (!own) return undefined;
    const clustersKey = outboundClustersKey(proxy);
    let clusters = shared.clusters.get(clustersKey);
    if (!clusters) shared.clusters.set(clustersKey, (clusters = pack(TYPE_URLS.cluster, generateOutboundClusters(input)!.values())));
    const eKey = endpointsKey(proxy, shared.byLabels);
    let endpoints = shared.endpoints.get(eKey);
    if (!endpoints) shared.endpoints.set(eKey, (endpoints = pack(TYPE_URLS.endpoint, generateEndpointsForProxy(input)!.values())));
    return { own, clusters: [...clusters, ...pack(TYPE_URLS.cluster, own.clusters.values())], endpoints };
  };

  const generate = (group: string, proxy: ProxyInfo, inputs: MeshInputs, shared: SharedParts = sharedParts(inputs)) => {
    try {
      const parts = generateParts(proxy, inputs, shared);
      const r = parts?.own ?? generateForProxy({ ...inputs, proxy });
      options.cache.setSnapshot(
        group,
        createSnapshot({
          [TYPE_URLS.cluster]: parts?.clusters ?? pack(TYPE_URLS.cluster, r.clusters.values()),
          [TYPE_URLS.endpoint]: parts?.endpoints ?? pack(TYPE_URLS.endpoint, r.endpoints.values()),
          [TYPE_URLS.listener]: pack(TYPE_URLS.listener, r.listeners.values()),
          [TYPE_URLS.route]: pack(TYPE_URLS.route, r.routes.values()),
          ...(r.nameTable ? { [TYPE_URLS.nameTable]: [encoder.encode(TYPE_URLS.nameTable, r.nameTable)] } : {}),
          ...(options.rootsPem ? { [TYPE_URLS.secret]: [encoder.encode(TYPE_URLS.secret, rootCaSecret(options.rootsPem()))] } : {}),
        }),
      );
    } catch (err) {
      stats.generationErrors++;
      options.logger.error('config generation failed; the proxy keeps its last good config', { group, proxy: proxy.id, error: errorMessage(err) });
    }
  };

  return {
    groupFor(node) {
      const proxy = proxyInfoFromNode(node);
      const group = proxyGroupKey(proxy);
      if (!groups.has(group)) {
        groups.set(group, proxy);
        const inputs = options.current();
        if (inputs && !options.cache.getSnapshot(group)) generate(group, proxy, inputs);
      }
      return group;
    },
    async pushAll(inputs) {
      const t0 = now();
      const pass = encoder.beginPass();
      const shared = sharedParts(inputs);
      for (const [group, proxy] of [...groups]) {
        if (groups.get(group) !== proxy) continue;
        generate(group, proxy, inputs, shared);
        await new Promise((r) => setImmediate(r));
      }
      // Whatever no group used in this push belongs to removed services or forgotten groups.
      encoder.endPass(pass);
      stats.fullPushes++;
      stats.lastFullPushMs = now() - t0;
    },
    async pushEndpoints(inputs) {
      const t0 = now();
      // Endpoint assignments depend on the caller's network, locality, namespace (DestinationRule choice)
      // and labels (failoverPriority) only, so groups that agree on those share one encoding per push.
      const pass = encoder.beginPass();
      const shared = sharedParts(inputs);
      for (const [group, proxy] of [...groups]) {
        if (groups.get(group) !== proxy) continue;
        try {
          const key = endpointsKey(proxy, shared.byLabels);
          let packed = shared.endpoints.get(key);
          if (!packed && proxy.role !== 'router') {
            const endpoints = generateEndpointsForProxy({ ...inputs, proxy });
            packed = endpoints && pack(TYPE_URLS.endpoint, endpoints.values());
            if (packed) shared.endpoints.set(key, packed);
          }
          if (!packed || !options.cache.getSnapshot(group)) generate(group, proxy, inputs, shared);
          else options.cache.setEndpoints(group, packed);
        } catch (err) {
          stats.generationErrors++;
          options.logger.error('endpoint generation failed; the proxy keeps its last good config', { group, proxy: proxy.id, error: errorMessage(err) });
        }
        await new Promise((r) => setImmediate(r));
      }
      // Only endpoint assignments were regenerated: other types' entries are still what snapshots hold.
      encoder.endPass(pass, [TYPE_URLS.endpoint]);
      stats.endpointPushes++;
      stats.lastEndpointPushMs = now() - t0;
    },
    forget(group) {
      groups.delete(group);
      options.cache.clearSnapshot(group);
    },
    proxies: () => groups,
    stats: () => {
      const e = encoder.stats();
      return { ...stats, groups: groups.size, encoderEntries: e.entries, encoderHits: e.hits, encoderMisses: e.misses };
    },
  };
}
