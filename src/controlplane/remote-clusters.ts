import type { Resource } from '../api/types.js';
import { secretData } from '../api/index.js';
import type { ClusterRegistry } from '../registry/index.js';
import { LABEL_NETWORK, buildClusterRegistry } from '../registry/index.js';
import type { ClusterWatch, SyncState, TypeRef } from '../registry/kube-client/index.js';
import { createKubeClient, parseKubeconfig, watchCluster } from '../registry/kube-client/index.js';
import type { Store } from './store/index.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { silentLogger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';

export const LABEL_MULTICLUSTER = 'istio/multiCluster';
export const ANNOTATION_CLUSTER = 'networking.istio.io/cluster';
/** Set by every crossmesh control plane on its own istio-system Namespace, so remotes can check who they reach. */
export const ANNOTATION_CLUSTER_ID = 'crossmesh.io/cluster-id';
export const ANNOTATION_LOCALITY = 'crossmesh.io/locality';
export const SYSTEM_NAMESPACE = 'istio-system';

const WATCHED: readonly TypeRef[] = [
  { apiVersion: 'v1', kind: 'Namespace' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry' },
];

export interface RemoteClusterStatus {
  cluster: string;
  secret: string;
  server: string;
  status: 'syncing' | 'synced' | 'error' | 'stale';
  reason?: string;
  /** When the current status began (ms since epoch). */
  since: number;
  services: number;
  workloads: number;
}

interface Remote {
  cluster: string;
  secret: string;
  kubeconfig: string;
  server: string;
  watch?: ClusterWatch;
  registry?: ClusterRegistry;
  state: RemoteClusterStatus['status'];
  reason?: string;
  since: number;
  staleTimer?: { cancel(): void };
  /** The watch being replaced during a secret rotation: its registry serves until the new one syncs. */
  previous?: Remote;
}

export interface RemoteClustersOptions {
  localCluster: string;
  store: Store;
  /** How long a remote that stopped answering keeps its endpoints before they are withdrawn. */
  staleAfterMs: number;
  onChange: () => void;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Follows the remote secrets in the local store (istio-system Secrets labelled istio/multiCluster=true,
 * one data key per cluster id holding a kubeconfig) and keeps a registry for each remote cluster:
 * - a new secret starts a list+watch of the remote's Services, WorkloadEntries and Namespaces;
 * - a changed secret (rotation) starts a new watch and keeps serving the old registry until it syncs;
 * - a deleted secret withdraws that cluster at once;
 * - an unreachable remote keeps its last registry for `staleAfterMs`, then it is withdrawn.
 */
export interface RemoteClusters {
  start(): void;
  registries(): ClusterRegistry[];
  status(): RemoteClusterStatus[];
  /** True when no remote is still in its first sync (errors count as settled: readiness must not hang). */
  settled(): boolean;
  stop(): void;
}

export function createRemoteClusters(options: RemoteClustersOptions): RemoteClusters {
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({ component: 'remote-clusters' });
  const remotes = new Map<string, Remote>();
  let storeWatch: { cancel(): void } | undefined;

  const setState = (r: Remote, state: Remote['state'], reason?: string) => {
    if (r.state === state && r.reason === reason) return;
    r.state = state;
    r.reason = reason;
    r.since = clock.now();
    logger.info('remote cluster state', { cluster: r.cluster, state, ...(reason ? { reason } : {}) });
    options.onChange();
  };

  const rebuild = (r: Remote) => {
    const w = r.watch!;
    const namespaces = w.items(WATCHED[0]!);
    const system = namespaces.find((n) => n.metadata.name === SYSTEM_NAMESPACE);
    const claimed = system?.metadata.annotations?.[ANNOTATION_CLUSTER_ID];
    if (claimed && claimed !== r.cluster) {
      r.registry = undefined;
      setState(r, 'error', `remote secret names cluster "${r.cluster}" but ${r.server} is cluster "${claimed}"`);
      return;
    }
    const resources: Resource[] = [...namespaces, ...w.items(WATCHED[1]!), ...w.items(WATCHED[2]!)];
    r.registry = buildClusterRegistry(
      {
        clusterId: r.cluster,
        network: system?.metadata.labels?.[LABEL_NETWORK] ?? '',
        ...(system?.metadata.annotations?.[ANNOTATION_LOCALITY] ? { locality: system.metadata.annotations[ANNOTATION_LOCALITY] } : {}),
      },
      resources,
    );
    options.onChange();
  };

  const onSyncState = (r: Remote, s: SyncState) => {
    if (s.status === 'synced') {
      r.staleTimer?.cancel();
      r.staleTimer = undefined;
      if (r.previous) {
        stopRemote(r.previous);
        r.previous = undefined;
      }
      rebuild(r);
      if (r.state !== 'error' || !r.reason?.startsWith('remote secret names')) setState(r, 'synced');
      return;
    }
    if (s.status === 'error') {
      if (r.registry && !r.staleTimer) {
        setState(r, 'stale', s.reason);
        r.staleTimer = clock.setTimeout(() => {
          logger.warn('remote cluster unreachable for too long: withdrawing its endpoints', { cluster: r.cluster });
          r.registry = undefined;
          setState(r, 'error', `${s.reason} (endpoints withdrawn after ${Math.round(options.staleAfterMs / 1000)} s)`);
        }, options.staleAfterMs);
      } else if (!r.registry) {
        setState(r, 'error', s.reason);
      }
    }
  };

  const startRemote = (r: Remote) => {
    try {
      const target = parseKubeconfig(r.kubeconfig);
      r.server = target.server;
      const client = createKubeClient(target, { clock });
      r.watch = watchCluster({
        client,
        types: WATCHED,
        clock,
        logger,
        onEvent: () => {
          if (r.watch?.state().status === 'synced') rebuild(r);
        },
        onState: (s) => onSyncState(r, s),
      });
      r.watch.start();
    } catch (err) {
      setState(r, 'error', `invalid kubeconfig: ${errorMessage(err)}`);
    }
  };

  const stopRemote = (r: Remote) => {
    r.staleTimer?.cancel();
    r.watch?.stop();
    if (r.previous) stopRemote(r.previous);
  };

  const sync = () => {
    const wanted = new Map<string, { secret: string; kubeconfig: string }>();
    const secrets = options.store.list('Secret', SYSTEM_NAMESPACE, `${LABEL_MULTICLUSTER}=true`).items;
    for (const secret of secrets) {
      for (const [cluster, kubeconfig] of Object.entries(secretData(secret as never))) {
        const name = `${SYSTEM_NAMESPACE}/${secret.metadata.name}`;
        if (cluster === options.localCluster) {
          logger.warn('ignoring remote secret entry for this cluster itself', { secret: name, cluster });
          continue;
        }
        wanted.set(cluster, { secret: name, kubeconfig });
      }
    }
    for (const [cluster, r] of remotes) {
      if (!wanted.has(cluster)) {
        logger.info('remote secret deleted: withdrawing cluster', { cluster });
        stopRemote(r);
        remotes.delete(cluster);
        options.onChange();
      }
    }
    for (const [cluster, w] of wanted) {
      const existing = remotes.get(cluster);
      if (existing && existing.kubeconfig === w.kubeconfig) continue;
      const r: Remote = { cluster, secret: w.secret, kubeconfig: w.kubeconfig, server: '', state: 'syncing', since: clock.now() };
      if (existing) {
        // Rotation: the old watch keeps its registry serving until the new one has synced.
        existing.staleTimer?.cancel();
        r.previous = existing;
        r.registry = existing.registry;
        if (existing.previous) {
          stopRemote(existing.previous);
          existing.previous = undefined;
        }
      }
      remotes.set(cluster, r);
      startRemote(r);
      options.onChange();
    }
  };

  return {
    start() {
      const listed = options.store.list('Secret', SYSTEM_NAMESPACE);
      sync();
      storeWatch = options.store.watch(listed.revision, (e) => {
        if (e.object.kind === 'Secret' && e.object.metadata.namespace === SYSTEM_NAMESPACE) sync();
      });
    },
    registries: () => [...remotes.values()].flatMap((r) => (r.registry ? [r.registry] : [])),
    status: () =>
      [...remotes.values()]
        .map((r) => ({
          cluster: r.cluster,
          secret: r.secret,
          server: r.server,
          status: r.state,
          ...(r.reason ? { reason: r.reason } : {}),
          since: r.since,
          services: r.registry?.services.length ?? 0,
          workloads: r.registry?.workloads.length ?? 0,
        }))
        .sort((a, b) => a.cluster.localeCompare(b.cluster)),
    settled: () => [...remotes.values()].every((r) => r.state !== 'syncing'),
    stop() {
      storeWatch?.cancel();
      for (const r of remotes.values()) stopRemote(r);
      remotes.clear();
    },
  };
}
