import type { Resource } from '../api/types.js';
import { formatLocality } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import type { Store } from './store/index.js';
import type { ProxyInfo } from './translate/index.js';

export const ANNOTATION_AUTO_REGISTERED = 'crossmesh.io/auto-registered';
export const ANNOTATION_PROXY_ID = 'crossmesh.io/proxy-id';

/**
 * Workload auto-registration, as Istio does it for WorkloadEntries: a proxy that connects registers its
 * workload (address, labels, service account, network, locality); when its last stream has been gone for
 * `graceMs` the entry is removed. A WorkloadEntry the user wrote by hand is never touched.
 */
export interface Registration {
  connected(proxy: ProxyInfo): void;
  disconnected(proxy: ProxyInfo): void;
  close(): void;
}

export function createRegistration(options: { store: Store; graceMs: number; clock: Clock; logger: Logger }): Registration {
  const { store, clock, logger } = options;
  const streams = new Map<string, number>();
  const pendingRemoval = new Map<string, { cancel(): void }>();

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
        annotations: { [ANNOTATION_AUTO_REGISTERED]: 'true', [ANNOTATION_PROXY_ID]: p.id },
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
      register(p).catch((err) => logger.error('workload registration failed', { proxy: p.id, error: errorMessage(err) }));
    },
    disconnected(p) {
      if (!registrable(p)) return;
      const left = (streams.get(p.id) ?? 1) - 1;
      if (left > 0) {
        streams.set(p.id, left);
        return;
      }
      streams.delete(p.id);
      pendingRemoval.set(
        p.id,
        clock.setTimeout(() => {
          pendingRemoval.delete(p.id);
          if (streams.has(p.id)) return;
          unregister(p).catch((err) => logger.error('workload unregistration failed', { proxy: p.id, error: errorMessage(err) }));
        }, options.graceMs),
      );
    },
    close() {
      for (const t of pendingRemoval.values()) t.cancel();
      pendingRemoval.clear();
    },
  };
}
