import type { Any, XdsNode } from '../xds/index.js';
import { TYPE_URLS, encodeResource } from '../xds/index.js';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import type { SnapshotCache } from './cache/index.js';
import { createSnapshot } from './cache/index.js';
import type { MeshInputs } from './mesh-inputs.js';
import type { ProxyInfo } from './translate/index.js';
import { generateForProxy, proxyGroupKey, proxyInfoFromNode } from './translate/index.js';

export interface PushStats {
  /** Full regenerations of all groups. */
  fullPushes: number;
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
  /** Regenerates every known group from new inputs. */
  pushAll(inputs: MeshInputs): void;
  /** Drops groups no connected proxy uses any more. */
  forget(group: string): void;
  proxies(): ReadonlyMap<string, ProxyInfo>;
  stats(): PushStats;
}

export function createPusher(options: { cache: SnapshotCache; logger: Logger; current: () => MeshInputs | undefined; now?: () => number }): Pusher {
  const groups = new Map<string, ProxyInfo>();
  const now = options.now ?? (() => performance.now());
  const stats: PushStats = { fullPushes: 0, generationErrors: 0, lastFullPushMs: 0, groups: 0 };

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
    pushAll(inputs) {
      const t0 = now();
      for (const [group, proxy] of groups) generate(group, proxy, inputs);
      stats.fullPushes++;
      stats.lastFullPushMs = now() - t0;
      stats.groups = groups.size;
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
