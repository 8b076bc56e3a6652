import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { MeshConfigSpec } from '../api/index.js';
import { loadResources, validateResources } from '../api/index.js';
import type { Resource } from '../api/types.js';
import type { CertificateAuthority } from '../ca/index.js';
import { addCaService, createCaMetrics, createCaServerCredentials, createCertificateAuthority } from '../ca/index.js';
import { LABEL_NETWORK } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import { CrossmeshError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { silentLogger } from '../shared/log.js';
import { createAdminServer } from './admin.js';
import { registerControlPlaneMetrics } from './metrics.js';
import type { AdminServer } from './admin.js';
import type { ApiServer, TokenEntry } from './api-server/index.js';
import { createApiServer } from './api-server/index.js';
import { createSnapshotCache } from './cache/index.js';
import type { MeshInputs } from './mesh-inputs.js';
import { buildMeshInputs } from './mesh-inputs.js';
import { createPusher } from './push.js';
import type { Pusher } from './push.js';
import { createRegistration } from './registration.js';
import type { RemoteClusters } from './remote-clusters.js';
import { ANNOTATION_CLUSTER_ID, ANNOTATION_LOCALITY, SYSTEM_NAMESPACE, createRemoteClusters } from './remote-clusters.js';
import type { AdsServer } from './server/index.js';
import { createAdsServer, createDebouncer } from './server/index.js';
import type { Store } from './store/index.js';
import { createFileStore } from './store/index.js';
import { identitySignature, proxyGroupKey, proxyInfoFromNode } from './translate/index.js';

export const DEFAULT_PORTS = { xds: 15010, xdsTls: 15012, admin: 15014, api: 6443 } as const;
/** Secrets in istio-system with this label hold API tokens (`data.token`, `data.role`: read | write). */
export const LABEL_API_TOKEN = 'crossmesh.io/api-token';

export interface ControlPlaneOptions {
  cluster: string;
  network: string;
  /** `region/zone/subzone` of this cluster. */
  locality?: string;
  /** Where the store, the admin token and generated keys live. */
  dataDir: string;
  /** Istio plug-in CA files; without them the CA makes its own root (no cross-cluster trust). */
  cacertsDir?: string;
  /** A file with a MeshConfig resource; overrides a MeshConfig stored in the cluster. */
  meshFile?: string;
  /** Address every port binds to. */
  host?: string;
  /** Names and addresses other hosts use to reach this control plane; they go into its TLS certificates. */
  advertise?: { dnsNames?: string[]; ipAddresses?: string[] };
  /** Port 0 picks a free one (tests). */
  ports?: Partial<Record<keyof typeof DEFAULT_PORTS, number>>;
  /** How long an unreachable remote cluster keeps its endpoints (default 5 min). */
  remoteStaleMs?: number;
  /** How long readiness waits for remote clusters' first sync before going ready anyway (default 10 s). */
  readyTimeoutMs?: number;
  /** How long a disconnected proxy's workload stays registered (default 30 s). */
  registrationGraceMs?: number;
  debounce?: { quietMs?: number; maxDelayMs?: number };
  clock?: Clock;
  logger?: Logger;
}

export interface ControlPlaneAddresses {
  /** HOST:PORT of plaintext ADS (15010). */
  xds: string;
  /** HOST:PORT of ADS and the CA over TLS (15012). */
  xdsTls: string;
  /** http://HOST:PORT of /ready, /metrics and /debug (15014). */
  admin: string;
  /** https://HOST:PORT of the resource API. */
  api: string;
}

/** One cluster's control plane in universal mode: store, resource API, CA, registry, translation, xDS. */
export interface ControlPlane {
  readonly cluster: string;
  readonly store: Store;
  readonly ca: CertificateAuthority;
  readonly ads: AdsServer;
  /** Read-write token for the resource API, created on first start and kept in the data dir. */
  readonly adminToken: string;
  addresses(): ControlPlaneAddresses;
  ready(): { ready: boolean; reasons: string[] };
  /** Runs any pending rebuild and push now (tests). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export class ControlPlaneError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CONTROL_PLANE', message, options);
  }
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({ cluster: options.cluster });
  const host = options.host ?? '127.0.0.1';
  const ports = { ...DEFAULT_PORTS, ...options.ports };
  await mkdir(options.dataDir, { recursive: true });
  const meshFile = options.meshFile ? await readMeshFile(options.meshFile) : undefined;

  const closers: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
  };
  try {
    const store = await createFileStore({ dir: join(options.dataDir, 'store'), clock, logger });
    closers.push(() => store.close());
    await ensureSystemNamespace(store, options);
    const adminToken = await ensureAdminToken(options.dataDir);

    const metrics = new Registry();
    const ca = await createCertificateAuthority({
      ...(options.cacertsDir ? { cacertsDir: options.cacertsDir } : {}),
      ...(meshFile?.trustDomain ? { trustDomain: meshFile.trustDomain } : {}),
      cluster: options.cluster,
      clock,
      logger,
      metrics: createCaMetrics(metrics),
    });
    if (ca.selfSigned) logger.warn('no --cacerts given: using a self-signed root; workloads of other clusters will not be trusted');

    const cache = createSnapshotCache({ logger });
    let inputs: MeshInputs | undefined;
    const pusher: Pusher = createPusher({ cache, logger, current: () => inputs, rootsPem: () => ca.rootsPem() });
    const registration = createRegistration({ store, graceMs: options.registrationGraceMs ?? 30_000, clock, logger });
    closers.push(() => registration.close());
    const groupStreams = new Map<string, number>();
    const ads = createAdsServer({
      cache,
      logger,
      clock,
      controlPlaneId: `crossmesh-${options.cluster}`,
      nodeGroup: (node) => pusher.groupFor(node),
      hooks: {
        onStreamOpen: (p) => {
          const proxy = proxyInfoFromNode(p.node);
          const group = proxyGroupKey(proxy);
          groupStreams.set(group, (groupStreams.get(group) ?? 0) + 1);
          registration.connected(proxy);
        },
        onStreamClosed: (p) => {
          const proxy = proxyInfoFromNode(p.node);
          const group = proxyGroupKey(proxy);
          const left = (groupStreams.get(group) ?? 1) - 1;
          if (left > 0) groupStreams.set(group, left);
          else {
            groupStreams.delete(group);
            pusher.forget(group);
          }
          registration.disconnected(proxy);
        },
        onHealth: (p, healthy) => registration.health(proxyInfoFromNode(p.node), healthy),
        onNack: (p, typeUrl, nack) => {
          cpMetrics.nack();
          logger.warn('proxy rejected config', { proxy: p.node.id, typeUrl, version: nack.version, error: nack.message });
        },
      },
    });
    closers.push(() => ads.close());

    const remotes: RemoteClusters = createRemoteClusters({
      localCluster: options.cluster,
      store,
      staleAfterMs: options.remoteStaleMs ?? 300_000,
      clock,
      logger,
      onChange: (what) => debouncer.trigger(what === 'endpoints' ? 'remote:endpoints' : 'remote'),
    });

    const cpMetrics = registerControlPlaneMetrics(metrics, { ads, pusher, remotes: () => remotes.status() });
    let pushes = 0;
    let identities = '';
    /** Batches that only added, changed or removed workloads take the EDS fast path. */
    const endpointsOnly = (reasons: readonly string[]) => reasons.length > 0 && reasons.every((r) => r === 'store:WorkloadEntry' || r === 'remote:endpoints');
    const rebuild = async (reasons: readonly string[] = []) => {
      const previousIdentities = identities;
      inputs = buildMeshInputs({
        identity: { clusterId: options.cluster, network: options.network, ...(options.locality ? { locality: options.locality } : {}) },
        local: store.list().items,
        remotes: remotes.registries(),
        ...(meshFile ? { meshFile } : {}),
        logger,
      });
      identities = identitySignature(inputs.view, inputs.mesh.trustDomain);
      if (endpointsOnly(reasons) && identities === previousIdentities) await pusher.pushEndpoints(inputs);
      else await pusher.pushAll(inputs);
      pushes++;
    };
    const debouncer = createDebouncer<string>({ quietMs: options.debounce?.quietMs ?? 100, maxDelayMs: options.debounce?.maxDelayMs ?? 1000, clock, logger }, async (batch) => {
      try {
        await rebuild(batch.reasons);
      } catch (err) {
        logger.error('rebuilding the mesh failed; proxies keep their last config', { error: errorMessage(err) });
      }
    });
    closers.push(() => debouncer.close());
    await rebuild();
    const storeWatch = store.watch(store.revision(), (e) => debouncer.trigger(`store:${e.object.kind}`));
    closers.push(() => storeWatch.cancel());
    remotes.start();
    closers.push(() => remotes.stop());

    const ipAddresses = [...new Set(['127.0.0.1', ...(host !== '0.0.0.0' ? [host] : []), ...(options.advertise?.ipAddresses ?? [])])];
    const dnsNames = ['localhost', `istiod.${SYSTEM_NAMESPACE}.svc`, ...(options.advertise?.dnsNames ?? [])];
    const plain = new grpc.Server();
    ads.register(plain);
    const xdsPort = await bind(plain, `${host}:${ports.xds}`, grpc.ServerCredentials.createInsecure());
    closers.push(() => shutdown(plain));
    const secure = new grpc.Server();
    ads.register(secure);
    addCaService(secure, ca, undefined, { logger });
    const xdsTlsPort = await bind(secure, `${host}:${ports.xdsTls}`, await createCaServerCredentials(ca, { dnsNames, ipAddresses }));
    closers.push(() => shutdown(secure));

    const serverCert = await ca.issueServerCertificate({ dnsNames, ipAddresses });
    const api: ApiServer = createApiServer({
      store,
      logger,
      clock,
      validate: (resources: Resource[]) => [...validateResources(resources.map((value, i) => ({ file: 'request', index: i + 1, value }))).problems],
      auth: { tokens: () => apiTokens(store, adminToken) },
      tls: { cert: serverCert.certChainPem, key: serverCert.keyPem },
    });
    const apiAddress = await api.listen(ports.api, host);
    closers.push(() => api.close());

    const startedAt = clock.now();
    const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    const ready = () => {
      const reasons: string[] = [];
      if (pushes === 0) reasons.push('no configuration generated yet');
      const waited = clock.now() - startedAt >= readyTimeoutMs;
      if (!remotes.settled() && !waited) {
        reasons.push(...remotes.status().filter((r) => r.status === 'syncing').map((r) => `remote cluster ${r.cluster} not synced yet`));
      }
      return { ready: reasons.length === 0, reasons };
    };

    const admin: AdminServer = createAdminServer({
      metrics,
      ready,
      debug: {
        registry: () => debugRegistry(inputs),
        endpointz: () => debugEndpoints(inputs),
        connections: () => ads.connectedProxies(),
        'remote-clusters': () => remotes.status(),
        push: () => ({ ...pusher.stats(), ads: ads.stats(), skippedResources: inputs?.skipped ?? [] }),
        'config-conflicts': () => inputs?.view.conflicts ?? [],
      },
      logger,
    });
    const adminPort = await admin.listen(ports.admin, host);
    closers.push(() => admin.close());

    const shown = host === '0.0.0.0' ? '127.0.0.1' : host;
    logger.info('control plane started', { network: options.network, xds: `${shown}:${xdsPort}`, xdsTls: `${shown}:${xdsTlsPort}`, api: apiAddress.url, admin: `http://${shown}:${adminPort}` });
    return {
      cluster: options.cluster,
      store,
      ca,
      ads,
      adminToken,
      addresses: () => ({ xds: `${shown}:${xdsPort}`, xdsTls: `${shown}:${xdsTlsPort}`, admin: `http://${shown}:${adminPort}`, api: apiAddress.url }),
      ready,
      flush: () => debouncer.flush(),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    if (err instanceof CrossmeshError) throw err;
    throw new ControlPlaneError(`cluster ${options.cluster}: cannot start: ${errorMessage(err)}`, { cause: err });
  }
}

async function readMeshFile(path: string): Promise<MeshConfigSpec> {
  const resources = await loadResources([path], { cwd: process.cwd() });
  const mesh = resources.find((r) => r.kind === 'MeshConfig');
  if (!mesh) throw new ControlPlaneError(`--mesh ${path}: no MeshConfig resource in the file`);
  return mesh.spec as MeshConfigSpec;
}

/** Labels this cluster's istio-system Namespace with its network and identity, as remote control planes read them. */
async function ensureSystemNamespace(store: Store, options: ControlPlaneOptions): Promise<void> {
  const key = { group: '', kind: 'Namespace', namespace: '', name: SYSTEM_NAMESPACE };
  const existing = store.get(key);
  const labels = { ...(existing?.metadata.labels ?? {}), [LABEL_NETWORK]: options.network };
  const annotations = {
    ...(existing?.metadata.annotations ?? {}),
    [ANNOTATION_CLUSTER_ID]: options.cluster,
    ...(options.locality ? { [ANNOTATION_LOCALITY]: options.locality } : {}),
  };
  await store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE, labels, annotations } }]);
}

async function ensureAdminToken(dataDir: string): Promise<string> {
  const file = join(dataDir, 'admin-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  await writeFile(file, token + '\n', { mode: 0o600 });
  return token;
}

function apiTokens(store: Store, adminToken: string): TokenEntry[] {
  const entries: TokenEntry[] = [{ token: adminToken, role: 'write', name: 'admin' }];
  for (const s of store.list('Secret', SYSTEM_NAMESPACE, `${LABEL_API_TOKEN}=true`).items) {
    const data = s.data ?? {};
    const token = data.token ? Buffer.from(data.token, 'base64').toString('utf8') : s.stringData?.token;
    const role = (data.role ? Buffer.from(data.role, 'base64').toString('utf8') : s.stringData?.role) === 'write' ? 'write' : 'read';
    if (token) entries.push({ token, role, name: `secret/${s.metadata.name}` });
  }
  return entries;
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(new ControlPlaneError(`cannot listen on ${address}: ${err.message}`, { cause: err })) : resolve(port)));
  });
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function debugRegistry(inputs: MeshInputs | undefined): unknown {
  if (!inputs) return { services: [] };
  return {
    services: [...inputs.view.services.values()].map((s) => ({
      hostname: s.hostname,
      namespace: s.namespace,
      ports: s.ports,
      clusters: [...s.definitions.keys()],
      vip: inputs.vipOf(s),
    })),
    gateways: inputs.view.gateways,
  };
}

function debugEndpoints(inputs: MeshInputs | undefined): unknown {
  if (!inputs) return {};
  const out: Record<string, Record<string, Array<{ address: string; port: number; cluster: string; network: string; locality: string; healthy: boolean }>>> = {};
  for (const s of inputs.view.services.values()) {
    for (const p of s.ports) {
      const byCluster: Record<string, Array<{ address: string; port: number; cluster: string; network: string; locality: string; healthy: boolean }>> = {};
      for (const e of inputs.view.endpoints(s.hostname, p.port)) {
        const w = e.workload;
        (byCluster[w.cluster] ??= []).push({
          address: e.address,
          port: e.port,
          cluster: w.cluster,
          network: w.network,
          locality: [w.locality.region, w.locality.zone, w.locality.subzone].filter(Boolean).join('/'),
          healthy: w.healthy,
        });
      }
      out[`${s.hostname}:${p.port}`] = byCluster;
    }
  }
  return out;
}
