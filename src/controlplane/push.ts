import type { Any, XdsNode } from '../xds/index.js';
import { SDS_ROOT_SECRET, TYPE_URLS, encodeResource } from '../xds/index.js';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import type { SnapshotCache } from './cache/index.js';
import { createSnapshot } from './cache/index.js';
import type { MeshInputs } from './mesh-inputs.js';
import type { ProxyInfo } from './translate/index.js';
import { generateEndpointsForProxy, generateForProxy, proxyGroupKey, proxyInfoFromNode } from './translate/index.js';

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

/** Labels change endpoint assignments only through `failoverPriority`; without it they are left out of the key. */
function endpointsKey(p: ProxyInfo, byLabels: boolean): string {
  const labels = byLabels ? Object.keys(p.labels).sort().map((k) => `${k}=${p.labels[k]}`).join(',') : '';
  return `${p.role}|${p.proxyless}|${p.network}|${p.locality.region}/${p.locality.zone}/${p.locality.subzone}|${p.namespace}|${labels}`;
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
}): Pusher {
  const groups = new Map<string, ProxyInfo>();
  const now = options.now ?? (() => performance.now());
  const stats: PushStats = { fullPushes: 0, endpointPushes: 0, lastEndpointPushMs: 0, generationErrors: 0, lastFullPushMs: 0, groups: 0 };

  const generate = (group: string, proxy: ProxyInfo, inputs: MeshInputs) => {
    try {
      const r = generateForProxy({ ...inputs, proxy });
      const pack = (typeUrl: string, values: Iterable<object>): Any[] => [...values].map((v) => encodeResource(typeUrl, v));
      options.cache.setSnapshot(
        group,
        createSnapshot({
          [TYPE_URLS.cluster]: pack(TYPE_URLS.cluster, r.clusters.values()),
          [TYPE_URLS.endpoint]: pack(TYPE_URLS.endpoint, r.endpoints.values()),
          [TYPE_URLS.listener]: pack(TYPE_URLS.listener, r.listeners.values()),
          [TYPE_URLS.route]: pack(TYPE_URLS.route, r.routes.values()),
          ...(r.nameTable ? { [TYPE_URLS.nameTable]: [encodeResource(TYPE_URLS.nameTable, r.nameTable)] } : {}),
          ...(options.rootsPem ? { [TYPE_URLS.secret]: [encodeResource(TYPE_URLS.secret, rootCaSecret(options.rootsPem()))] } : {}),
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
      for (const [group, proxy] of [...groups]) {
        if (groups.get(group) !== proxy) continue;
        generate(group, proxy, inputs);
        await new Promise((r) => setImmediate(r));
      }
      stats.fullPushes++;
      stats.lastFullPushMs = now() - t0;
      stats.groups = groups.size;
    },
    async pushEndpoints(inputs) {
      const t0 = now();
      // Endpoint assignments depend on the caller's network, locality, namespace (DestinationRule choice)
      // and labels (failoverPriority) only, so groups that agree on those share one encoding per push.
      const shared = new Map<string, Any[]>();
      const byLabels = usesFailoverPriority(inputs);
      for (const [group, proxy] of [...groups]) {
        if (groups.get(group) !== proxy) continue;
        try {
          const key = endpointsKey(proxy, byLabels);
          let packed = shared.get(key);
          if (!packed && proxy.role !== 'router') {
            const endpoints = generateEndpointsForProxy({ ...inputs, proxy });
            packed = endpoints && [...endpoints.values()].map((v) => encodeResource(TYPE_URLS.endpoint, v));
            if (packed) shared.set(key, packed);
          }
          if (!packed || !options.cache.getSnapshot(group)) generate(group, proxy, inputs);
          else options.cache.setEndpoints(group, packed);
        } catch (err) {
          stats.generationErrors++;
          options.logger.error('endpoint generation failed; the proxy keeps its last good config', { group, proxy: proxy.id, error: errorMessage(err) });
        }
        await new Promise((r) => setImmediate(r));
      }
      stats.endpointPushes++;
      stats.lastEndpointPushMs = now() - t0;
    },
    forget(group) {
      groups.delete(group);
      options.cache.clearSnapshot(group);
      stats.groups = groups.size;
    },
    proxies: () => groups,
    stats: () => ({ ...stats, groups: groups.size }),
  };
}
