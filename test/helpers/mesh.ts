import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../src/api/types.js';
import { generateIntermediateCa, generateRootCa, writeCacerts } from '../../src/ca/index.js';
import type { RootCaPem } from '../../src/ca/index.js';
import type { ControlPlane, ControlPlaneOptions } from '../../src/controlplane/index.js';
import { LABEL_API_TOKEN, remoteSecret, startControlPlane } from '../../src/controlplane/index.js';

import { buildKubeconfig } from '../../src/registry/kube-client/index.js';

/** A port that was free a moment ago, for processes that must be told their port up front. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A temporary directory removed by `cleanup`. */
export function tempDir(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestCluster {
  name: string;
  network: string;
  cp: ControlPlane;
  dataDir: string;
  cacertsDir: string;
}

/** Control planes on loopback with ephemeral ports, each with an intermediate of one shared root. */
export async function startClusters(
  specs: Array<{ name: string; network: string; locality?: string }>,
  options: Partial<ControlPlaneOptions> & { root?: RootCaPem } = {},
): Promise<{ clusters: TestCluster[]; root: RootCaPem; dir: string; stop(): Promise<void> }> {
  const dir = tempDir('cm-mesh-');
  const root = options.root ?? (await generateRootCa());
  const clusters: TestCluster[] = [];
  try {
    for (const s of specs) {
      const cacertsDir = join(dir.path, s.name, 'cacerts');
      await writeCacerts(cacertsDir, await generateIntermediateCa({ root, cluster: s.name }));
      const dataDir = join(dir.path, s.name, 'data');
      const cp = await startControlPlane({
        cluster: s.name,
        network: s.network,
        ...(s.locality ? { locality: s.locality } : {}),
        dataDir,
        cacertsDir,
        ports: { xds: 0, xdsTls: 0, admin: 0, api: 0 },
        debounce: { quietMs: 20, maxDelayMs: 100 },
        readyTimeoutMs: 2000,
        ...options,
      });
      clusters.push({ name: s.name, network: s.network, cp, dataDir, cacertsDir });
    }
  } catch (err) {
    for (const c of clusters) await c.cp.stop();
    dir.cleanup();
    throw err;
  }
  return {
    clusters,
    root,
    dir: dir.path,
    async stop() {
      for (const c of clusters) await c.cp.stop();
      dir.cleanup();
    },
  };
}

/**
 * What `crossmesh create-remote-secret` makes for `from`, applied to `to`: a read-only token stored in
 * `from`, and a remote secret naming `from` stored in `to`.
 */
export async function exchangeRemoteSecret(from: TestCluster, to: TestCluster, root: RootCaPem, options: { clusterId?: string; token?: string } = {}): Promise<Resource> {
  const token = options.token ?? `reader-${from.name}-${Math.random().toString(36).slice(2)}`;
  await from.cp.store.apply([
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: `reader-${to.name}`, namespace: 'istio-system', labels: { [LABEL_API_TOKEN]: 'true' } }, stringData: { token, role: 'read' } } as Resource,
  ]);
  const id = options.clusterId ?? from.name;
  const secret = remoteSecret(id, buildKubeconfig({ server: from.cp.addresses().api, ca: root.certPem, token }, id));
  await to.cp.store.apply([secret]);
  return secret;
}

export function service(ns: string, name: string, port: number, targetPort = port, extra: Record<string, unknown> = {}): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { selector: { app: name }, ports: [{ name: 'http', port, targetPort }], ...extra } };
}

export function workloadEntry(ns: string, name: string, address: string, labels: Record<string, string>, sa = 'default'): Resource {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: ns }, spec: { address, labels, serviceAccount: sa } };
}

export function eastWestGatewayService(network: string, ...ips: string[]): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels: { 'topology.istio.io/network': network, istio: 'eastwestgateway' } },
    spec: { selector: { istio: 'eastwestgateway' }, ports: [{ name: 'tls', port: 15443 }], externalIPs: ips },
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await fn();
  while (!last && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, intervalMs));
    last = await fn();
  }
  return last;
}
