import type { Resource } from '../api/types.js';
import { formatLocality } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import type { Store } from './store/index.js';
import type { ProxyInfo } from './translate/index.js';

export const ANNOTATION_AUTO_REGISTERED = 'crossmesh.io/auto-registered';
export const ANNOTATION_PROXY_ID = 'crossmesh.io/proxy-id';
/** `unhealthy` keeps a workload's endpoints out of load balancing (read by the registry). */
export const ANNOTATION_HEALTH = 'crossmesh.io/health';

/**
 * Workload auto-registration, as Istio does it for WorkloadEntries: a proxy that connects registers its
 * workload (address, labels, service account, network, locality); when its last stream has been gone for
 * `graceMs` the entry is removed. A WorkloadEntry the user wrote by hand is never touched.
 * A proxy that reports its health (Istio's HealthInformation over ADS) registers unhealthy and turns healthy
 * when it says it is ready, so no traffic reaches a workload whose sidecar cannot take it yet.
 */
export interface Registration {
  connected(proxy: ProxyInfo): void;
  health(proxy: ProxyInfo, healthy: boolean): void;
  disconnected(proxy: ProxyInfo): void;
  close(): void;
}

export function createRegistration(options: { store: Store; graceMs: number; clock: Clock; logger: Logger }): Registration {
  const { store, clock, logger } = options;
  const streams = new Map<string, number>();
  const pendingRemoval = new Map<string, { cancel(): void }>();
  /** Last reported health per proxy id, while it has streams. */
  const reported = new Map<string, boolean>();
  /** Store writes for one workload happen in order (a health report may arrive before registration ends). */
  const queues = new Map<string, Promise<void>>();
  const serially = (p: ProxyInfo, what: string, work: () => Promise<void>): void => {
    const next = (queues.get(p.id) ?? Promise.resolve())
      .then(work)
      .catch((err) => logger.error(`workload ${what} failed`, { proxy: p.id, error: errorMessage(err) }));
    queues.set(p.id, next);
    void next.then(() => {
      if (queues.get(p.id) === next) queues.delete(p.id);
    });
  };

  const key = (p: ProxyInfo) => ({ group: 'networking.istio.io', kind: 'WorkloadEntry', namespace: p.namespace, name: p.podName });
  const registrable = (p: ProxyInfo) => !p.proxyless && p.ip !== '' && p.podName !== '';

  const register = async (p: ProxyInfo) => {
    const existing = store.get(key(p));
    if (existing && existing.metadata.annotations?.[ANNOTATION_AUTO_REGISTERED] !== 'true') {
      logger.warn('a hand-written WorkloadEntry has the name of a connecting proxy; leaving it alone', { workloadEntry: `${p.namespace}/${p.podName}`, proxy: p.id });
      return;
    }
    const entry: Resource = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: {
        name: p.podName,
        namespace: p.namespace,
        labels: p.labels,
        annotations: { [ANNOTATION_AUTO_REGISTERED]: 'true', [ANNOTATION_PROXY_ID]: p.id, ...healthAnnotation(p, existing) },
      },
      spec: {
        address: p.ip,
        labels: p.labels,
        serviceAccount: p.serviceAccount,
        ...(p.network ? { network: p.network } : {}),
        ...(formatLocality(p.locality) ? { locality: formatLocality(p.locality) } : {}),
      },
    };
    await store.apply([entry]);
    logger.info('workload registered', { workloadEntry: `${p.namespace}/${p.podName}`, address: p.ip });
  };

  /** Unhealthy until the proxy reports ready; a re-registration of the same proxy keeps what it reported. */
  const healthAnnotation = (p: ProxyInfo, existing: Resource | undefined): Record<string, string> => {
    if (!p.reportsHealth) return {};
    const known = reported.get(p.id) ?? (existing?.metadata.annotations?.[ANNOTATION_PROXY_ID] === p.id ? existing.metadata.annotations?.[ANNOTATION_HEALTH] !== 'unhealthy' : false);
    return known ? {} : { [ANNOTATION_HEALTH]: 'unhealthy' };
  };

  const setHealth = async (p: ProxyInfo, healthy: boolean) => {
    const existing = store.get(key(p));
    const annotations = existing?.metadata.annotations;
    if (!existing || annotations?.[ANNOTATION_AUTO_REGISTERED] !== 'true' || annotations[ANNOTATION_PROXY_ID] !== p.id) return;
    if ((annotations[ANNOTATION_HEALTH] !== 'unhealthy') === healthy) return;
    const next = { ...annotations };
    if (healthy) delete next[ANNOTATION_HEALTH];
    else next[ANNOTATION_HEALTH] = 'unhealthy';
    await store.apply([{ ...existing, metadata: { ...existing.metadata, annotations: next } }]);
    logger.info(healthy ? 'workload ready' : 'workload not ready', { workloadEntry: `${p.namespace}/${p.podName}` });
  };

  const unregister = async (p: ProxyInfo) => {
    const existing = store.get(key(p));
    if (!existing || existing.metadata.annotations?.[ANNOTATION_PROXY_ID] !== p.id) return;
    await store.delete([key(p)]);
    logger.info('workload unregistered', { workloadEntry: `${p.namespace}/${p.podName}` });
  };

  return {
    connected(p) {
      if (!registrable(p)) return;
      streams.set(p.id, (streams.get(p.id) ?? 0) + 1);
      pendingRemoval.get(p.id)?.cancel();
      pendingRemoval.delete(p.id);
      serially(p, 'registration', () => register(p));
    },
    health(p, healthy) {
      if (!registrable(p)) return;
      reported.set(p.id, healthy);
      serially(p, 'health update', () => setHealth(p, healthy));
    },
    disconnected(p) {
      if (!registrable(p)) return;
      const left = (streams.get(p.id) ?? 1) - 1;
      if (left > 0) {
        streams.set(p.id, left);
        return;
      }
      streams.delete(p.id);
      reported.delete(p.id);
      pendingRemoval.set(
        p.id,
        clock.setTimeout(() => {
          pendingRemoval.delete(p.id);
          if (streams.has(p.id)) return;
          serially(p, 'unregistration', () => unregister(p));
        }, options.graceMs),
      );
    },
    close() {
      for (const t of pendingRemoval.values()) t.cancel();
      pendingRemoval.clear();
    },
  };
}
