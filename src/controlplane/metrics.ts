import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { RemoteClusterStatus } from './remote-clusters.js';
import type { AdsServer } from './server/index.js';
import type { Pusher } from './push.js';

/**
 * The control plane's own metrics, with Istio's names where Istio has one (pilot_xds, pilot_xds_pushes,
 * pilot_total_xds_rejects) and crossmesh_* for multi-cluster state Istio keeps in logs only.
 * Gauges are read at scrape time, so nothing on the push path pays for them.
 */
export function registerControlPlaneMetrics(registry: Registry, sources: { ads: AdsServer; pusher: Pusher; remotes: () => RemoteClusterStatus[] }): { nack: () => void } {
  new Gauge({
    name: 'pilot_xds',
    help: 'Connected xDS streams',
    registers: [registry],
    collect() {
      this.set(sources.ads.stats().streams);
    },
  });
  new Gauge({
    name: 'pilot_xds_pushes',
    help: 'Responses pushed to proxies since start',
    registers: [registry],
    collect() {
      this.set(sources.ads.stats().pushes);
    },
  });
  const rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Configuration rejected by proxies (NACKs)', registers: [registry] });
  new Gauge({
    name: 'crossmesh_full_push_duration_ms',
    help: 'Time the last full regeneration of every proxy group took',
    registers: [registry],
    collect() {
      this.set(sources.pusher.stats().lastFullPushMs);
    },
  });
  new Gauge({
    name: 'crossmesh_config_generation_errors',
    help: 'Proxy groups whose configuration could not be generated (they keep the last good one)',
    registers: [registry],
    collect() {
      this.set(sources.pusher.stats().generationErrors);
    },
  });
  new Gauge({
    name: 'crossmesh_remote_cluster_synced',
    help: '1 when the remote cluster is synced, 0 when syncing, stale (endpoints kept) or in error',
    labelNames: ['cluster', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of sources.remotes()) this.set({ cluster: r.cluster, status: r.status }, r.status === 'synced' ? 1 : 0);
    },
  });
  return { nack: () => rejects.inc() };
}
