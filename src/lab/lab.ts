import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../api/types.js';
import { createJoinToken, generateIntermediateCa, generateRootCa, loadCacerts, writeCacerts, writeRootCa } from '../ca/index.js';
import { createRemoteSecret } from '../controlplane/index.js';
import { createKubeClient } from '../registry/kube-client/index.js';
import type { KubeClient } from '../registry/kube-client/index.js';
import type { Logger } from '../shared/log.js';
import { CrossmeshError, errorMessage } from '../shared/errors.js';
import { loopbackAddresses as addr } from './addresses.js';
import type { ClusterPlan, LabPlan, PodPlan } from './plan.js';
import { eastWestGatewayService } from './plan.js';
import type { LabState } from './state.js';
import { writeLabState } from './state.js';
import type { Supervisor } from './supervisor.js';
import { createSupervisor } from './supervisor.js';

export class LabError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_LAB', message, options);
  }
}

export const BIN = fileURLToPath(new URL('../../../bin/crossmesh.js', import.meta.url));

export interface RunningLab {
  state: LabState;
  supervisor: Supervisor;
  stop(): Promise<void>;
}

export interface StartLabOptions {
  plan: LabPlan;
  dir: string;
  logger: Logger;
  progress?: (line: string) => void;
  /** Longest wait for every control plane and proxy to be ready. */
  readyTimeoutMs?: number;
}

async function waitReady(what: string, url: string, timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason) throw new LabError(`${what} did not start: ${reason}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new LabError(`${what} not ready after ${Math.round(timeoutMs / 1000)} s (${url})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return 'no log';
  }
}

/**
 * Starts a whole mesh on this machine in loopback isolation: a root CA and one intermediate per cluster,
 * a control plane per cluster, remote secrets both ways between every pair, east-west gateways, and every
 * Deployment's pods as an app process plus a `crossmesh proxy` sidecar. On any failure everything started
 * so far is stopped again.
 */
export async function startLab(options: StartLabOptions): Promise<RunningLab> {
  const { plan, dir, logger } = options;
  const say = options.progress ?? (() => undefined);
  const timeout = options.readyTimeoutMs ?? 60_000;
  if (plan.isolation !== 'loopback') throw new LabError('only loopback isolation is implemented by this runner');
  for (const sub of ['logs', 'pki', 'data']) mkdirSync(join(dir, sub), { recursive: true });
  const supervisor = createSupervisor({ stateDir: dir, logger });
  const clients: KubeClient[] = [];
  const stop = async () => {
    for (const c of clients) c.close();
    await supervisor.stopAll(3000);
  };

  try {
    say(`certificates: one root, ${plan.clusters.length} intermediates`);
    const root = await generateRootCa({ trustDomain: plan.trustDomain });
    writeRootCa(join(dir, 'pki', 'root'), root, true);
    const rootCert = join(dir, 'pki', 'root', 'root-cert.pem');
    for (const c of plan.clusters) writeCacerts(join(dir, 'pki', c.name), await generateIntermediateCa({ root, cluster: c.name }), true);

    const state: LabState = { isolation: 'loopback', dir, pid: process.pid, rootCert, tokens: {}, clusters: [], gateways: [], pods: [] };
    const apis = new Map<string, { client: KubeClient; api: string }>();
    for (const c of plan.clusters) {
      const host = addr.controlPlane(c);
      const log = join(dir, 'logs', `${c.name}.control-plane.log`);
      say(`control plane ${c.name} on ${host}`);
      const proc = supervisor.start({
        name: `${c.name}/control-plane`,
        command: process.execPath,
        args: [BIN, 'control-plane', '--cluster', c.name, '--network', c.network, ...(c.locality ? ['--locality', c.locality] : []), '--data', join(dir, 'data', c.name), '--cacerts', join(dir, 'pki', c.name), '--host', host, '--registration-grace', '5s', '--ready-timeout', '5s'],
        logFile: log,
      });
      let exited = false;
      void proc.exited.then(() => (exited = true));
      await waitReady(`control plane ${c.name}`, `http://${host}:15014/ready`, timeout, () => (exited ? tail(log) : undefined));
      const token = readFileSync(join(dir, 'data', c.name, 'admin-token'), 'utf8').trim();
      const api = `https://${host}:6443`;
      const client = createKubeClient({ server: api, token, ca: root.certPem });
      clients.push(client);
      apis.set(c.name, { client, api });
      state.tokens[c.name] = token;
      state.clusters.push({ name: c.name, network: c.network, locality: c.locality, controlPlane: { xds: `${host}:15010`, api, admin: `http://${host}:15014` } });
    }

    for (const c of plan.clusters) {
      const extra: Resource[] = c.gateways.length ? [eastWestGatewayService(c, c.gateways.map((g) => addr.gateway(c, g)))] : [];
      const namespaces = new Set(c.pods.map((p) => p.namespace).concat(c.resources.map((r) => r.metadata.namespace ?? '').filter(Boolean)));
      const declared = new Set(c.resources.filter((r) => r.kind === 'Namespace').map((r) => r.metadata.name));
      const implicit: Resource[] = [...namespaces].filter((n) => !declared.has(n) && n !== 'istio-system').map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
      await apis.get(c.name)!.client.apply([...implicit, ...c.resources, ...extra]);
    }
    for (const from of plan.clusters) {
      for (const to of plan.clusters) {
        if (from === to) continue;
        const { client, api } = apis.get(from.name)!;
        const secret = await createRemoteSecret(client, { cluster: from.name, server: api, caPem: root.certPem });
        await apis.get(to.name)!.client.apply([secret]);
      }
    }
    say(`remote secrets exchanged between ${plan.clusters.length} clusters`);

    const now = Date.now();
    const tokenFor = async (c: ClusterPlan, namespace: string, serviceAccount: string) => {
      const material = await loadCacerts(join(dir, 'pki', c.name), now);
      return createJoinToken({ signingKey: material.signer.key.privateKey, trustDomain: plan.trustDomain, namespace, serviceAccount, cluster: c.name, ttlSeconds: 7 * 24 * 3600, nowMs: now });
    };
    const proxyArgs = (c: ClusterPlan, role: string, ip: string, pod: string, namespace: string, sa: string, labels: Record<string, string>, token: string) => [
      BIN, 'proxy', '--role', role, '--discovery', `${addr.controlPlane(c)}:15010`, '--ca-address', `${addr.controlPlane(c)}:15012`, '--ca-root', rootCert,
      '--cluster', c.name, '--network', c.network, ...(c.locality ? ['--locality', c.locality] : []), '--namespace', namespace, '--service-account', sa,
      '--labels', Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','), '--ip', ip, '--pod', pod, '--token', token,
      '--interception', 'none', '--admin-host', ip, '--trust-domain', plan.trustDomain,
    ];

    const waits: Array<Promise<void>> = [];
    for (const c of plan.clusters) {
      for (const g of c.gateways) {
        const ip = addr.gateway(c, g);
        const log = join(dir, 'logs', `${c.name}.${g.name}.log`);
        const token = await tokenFor(c, 'istio-system', 'istio-eastwestgateway');
        const proc = supervisor.start({
          name: `${c.name}/${g.name}`,
          command: process.execPath,
          args: [...proxyArgs(c, 'eastwest-gateway', ip, g.name, 'istio-system', 'istio-eastwestgateway', { istio: 'eastwestgateway', 'topology.istio.io/network': c.network }, token), '--gateway-port', String(g.port)],
          logFile: log,
        });
        let exited = false;
        void proc.exited.then(() => (exited = true));
        waits.push(waitReady(`gateway ${c.name}/${g.name}`, `http://${ip}:15000/ready`, timeout, () => (exited ? tail(log) : undefined)));
        state.gateways.push({ name: g.name, cluster: c.name, network: c.network, address: `${ip}:${g.port}`, admin: `http://${ip}:15000` });
      }
      for (const p of c.pods) waits.push(startPod(c, p, await tokenFor(c, p.namespace, p.serviceAccount)));
    }

    async function startPod(c: ClusterPlan, p: PodPlan, token: string): Promise<void> {
      const ip = addr.pod(c, p);
      const appHost = addr.app(c, p);
      const ports = p.ports.length ? p.ports : p.app?.defaultPort ? [p.app.defaultPort] : [];
      const appLog = join(dir, 'logs', `${c.name}.${p.name}.app.log`);
      const proxyLog = join(dir, 'logs', `${c.name}.${p.name}.proxy.log`);
      if (p.app && p.app.kind !== 'sleep') {
        supervisor.start({
          name: `${c.name}/${p.name}/app`,
          command: process.execPath,
          args: [BIN, 'lab', 'run-app', '--image', p.image, '--pod', p.name, '--host', appHost, ...ports.flatMap((port) => ['--port', String(port)])],
          env: p.env,
          logFile: appLog,
        });
      }
      const proc = supervisor.start({
        name: `${c.name}/${p.name}/proxy`,
        command: process.execPath,
        args: [...proxyArgs(c, 'sidecar', ip, p.name, p.namespace, p.serviceAccount, p.labels, token), '--app-host', appHost, ...ports.flatMap((port) => ['--app-port', String(port)]), '--access-log', proxyLog + '.access'],
        logFile: proxyLog,
      });
      let exited = false;
      void proc.exited.then(() => (exited = true));
      state.pods.push({
        name: p.name,
        cluster: c.name,
        namespace: p.namespace,
        app: p.labels.app ?? p.app?.kind ?? p.deployment,
        version: p.labels.version ?? p.app?.version ?? '',
        ip,
        netns: null,
        admin: `http://${ip}:15000`,
        appAddress: appHost,
      });
      await waitReady(`pod ${c.name}/${p.name}`, `http://${ip}:15000/ready`, timeout, () => (exited ? tail(proxyLog) : undefined));
    }

    await Promise.all(waits);
    writeLabState(dir, state);
    return { state, supervisor, stop };
  } catch (err) {
    logger.error('lab failed to start; stopping what was started', { error: errorMessage(err) });
    await stop();
    throw err instanceof CrossmeshError ? err : new LabError(errorMessage(err), { cause: err });
  }
}
