import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../api/types.js';
import { createJoinToken, generateIntermediateCa, generateRootCa, loadCacerts, writeCacerts, writeRootCa } from '../ca/index.js';
import { createRemoteSecret } from '../controlplane/index.js';
import { createKubeClient } from '../registry/kube-client/index.js';
import type { KubeClient } from '../registry/kube-client/index.js';
import type { Logger } from '../shared/log.js';
import { CrossmeshError, errorMessage } from '../shared/errors.js';
import type { Host, LabHosts } from './hosts.js';
import { loopbackHosts, netnsHosts } from './hosts.js';
import { checkNetnsSupport } from './netns/index.js';
import type { ClusterPlan, LabPlan, PodPlan } from './plan.js';
import { DEFAULT_TRUST_ROOT, eastWestGatewayService } from './plan.js';
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
  /** Stops every process and removes every namespace the lab made. */
  stop(): Promise<void>;
}

export interface StartLabOptions {
  plan: LabPlan;
  dir: string;
  logger: Logger;
  progress?: (line: string) => void;
  /** Longest wait for each control plane and proxy to be ready. */
  readyTimeoutMs?: number;
  /** Longest wait, once everything is ready, for the mesh to settle (see waitSettled). */
  settleTimeoutMs?: number;
}

async function poll(what: string, check: () => Promise<boolean>, timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason) throw new LabError(`${what} did not start: ${reason}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new LabError(`${what} not ready after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const httpOk = (url: string) => fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok);

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return 'no log';
  }
}

/** True when something already accepts connections on host:port (another lab, another program). */
function inUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(500, () => (s.destroy(), resolve(false)));
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** A proxy's own readiness (certificate and first full config), asked from inside its namespace. */
function readyInNamespace(netns: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', netns, 'curl', '-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:15021/healthz/ready'], (_err, stdout) => resolve(stdout.trim() === '200'));
  });
}

interface EndpointView {
  address: string;
  port: number;
  healthy: boolean;
}
interface ConnectionView {
  node: { id: string };
  types: Array<{ typeUrl: string; sync: string }>;
}

/** Why one control plane's view is not settled yet, or undefined; `endpoints` collects what it sees. */
async function unsettledAt(admin: string, endpoints: Set<string>): Promise<string | undefined> {
  const get = async <T>(view: string) => (await fetch(`${admin}/debug/${view}`, { signal: AbortSignal.timeout(2000) })).json() as Promise<T>;
  const byService = await get<Record<string, Record<string, EndpointView[]>>>('endpointz');
  for (const [service, byCluster] of Object.entries(byService)) {
    for (const [cluster, list] of Object.entries(byCluster)) {
      for (const e of list) {
        if (!e.healthy) return `${admin}: ${service} endpoint ${e.address} in ${cluster} is not ready yet`;
        endpoints.add(`${service} ${cluster} ${e.address}:${e.port}`);
      }
    }
  }
  for (const c of await get<ConnectionView[]>('connections')) {
    const behind = c.types.find((t) => t.sync !== 'SYNCED');
    if (behind) return `${admin}: proxy ${c.node.id} is ${behind.sync} on ${behind.typeUrl.slice(behind.typeUrl.lastIndexOf('.') + 1)}`;
  }
  return undefined;
}

/**
 * Waits until the mesh has settled, so that the first calls see it whole: every control plane sees the
 * same endpoints, all healthy (auto-registered workloads turn healthy when their proxy is ready), and every
 * connected proxy has ACKed its control plane's current config, steadily for longer than a push debounce.
 * Returns why it has not settled when the time is up.
 */
async function waitSettled(admins: string[], timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let reason: string | undefined;
  let steadySince: number | undefined;
  let last = '';
  for (;;) {
    const views = admins.map(() => new Set<string>());
    reason = undefined;
    try {
      for (let i = 0; i < admins.length && !reason; i++) reason = await unsettledAt(admins[i]!, views[i]!);
    } catch (err) {
      reason = `control plane debug view: ${errorMessage(err)}`;
    }
    const seen = views.map((v) => [...v].sort().join('|'));
    if (!reason && seen.some((s) => s !== seen[0])) reason = 'control planes do not see the same endpoints yet';
    if (!reason && seen[0] !== last) reason = 'endpoints still changing';
    last = seen[0] ?? '';
    if (reason) steadySince = undefined;
    else if (steadySince === undefined) steadySince = Date.now();
    else if (Date.now() - steadySince >= 1500) return undefined;
    if (Date.now() > deadline) return reason ?? 'not steady long enough';
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Starts a whole mesh on this machine: a root CA and one intermediate per cluster, a control plane per
 * cluster, remote secrets between every pair, east-west gateways, and every Deployment's pods as an app
 * process with a `crossmesh proxy` sidecar. On any failure everything started so far is stopped and
 * removed again.
 */
export async function startLab(options: StartLabOptions): Promise<RunningLab> {
  const { plan, dir, logger } = options;
  const say = options.progress ?? (() => undefined);
  const timeout = options.readyTimeoutMs ?? 60_000;
  if (plan.isolation === 'netns') {
    const problem = await checkNetnsSupport();
    if (problem) throw new LabError(problem);
  }
  for (const sub of ['logs', 'pki', 'data']) mkdirSync(join(dir, sub), { recursive: true });
  const netnsPrefix = plan.isolation === 'netns' ? `cm${randomBytes(2).toString('hex')}` : undefined;
  const supervisor = createSupervisor({ stateDir: dir, logger });
  const clients: KubeClient[] = [];
  let hosts: LabHosts | undefined;
  const stop = async () => {
    for (const c of clients) c.close();
    await supervisor.stopAll(3000);
    await hosts?.destroy();
  };

  try {
    hosts = plan.isolation === 'netns' ? await netnsHosts(plan, netnsPrefix!) : loopbackHosts();
    const netns = plan.isolation === 'netns';
    const rootNames = [...new Set(plan.clusters.map((c) => c.trustRoot))];
    say(`certificates: ${rootNames.length === 1 ? 'one root' : `${rootNames.length} roots (${rootNames.join(', ')})`}, ${plan.clusters.length} intermediates`);
    const roots = new Map<string, Awaited<ReturnType<typeof generateRootCa>>>();
    for (const name of rootNames) {
      const root = await generateRootCa({ trustDomain: plan.trustDomain });
      roots.set(name, root);
      writeRootCa(join(dir, 'pki', name === DEFAULT_TRUST_ROOT ? 'root' : `root-${name}`), root, true);
    }
    const rootOf = (c: ClusterPlan) => roots.get(c.trustRoot)!;
    // Each cluster's own root file verifies its CA and is its workloads' trust anchor; the lab's tools talk
    // to every control plane, so they get a bundle of all roots.
    const clusterRoot = (c: ClusterPlan) => join(dir, 'pki', c.name, 'root-cert.pem');
    for (const c of plan.clusters) writeCacerts(join(dir, 'pki', c.name), await generateIntermediateCa({ root: rootOf(c), cluster: c.name }), true);
    let rootCert = join(dir, 'pki', 'root', 'root-cert.pem');
    if (rootNames.length > 1 || rootNames[0] !== DEFAULT_TRUST_ROOT) {
      rootCert = join(dir, 'pki', 'roots.pem');
      writeFileSync(rootCert, [...roots.values()].map((r) => r.certPem).join(''));
    }

    const state: LabState = { isolation: plan.isolation, dir, pid: process.pid, rootCert, tokens: {}, clusters: [], gateways: [], pods: [], ...(netnsPrefix ? { netnsPrefix } : {}) };
    // Written at once, so that `crossmesh down` can clean up even if this process dies half way.
    writeLabState(dir, state);
    const cps = new Map<string, { host: Host; client: KubeClient; api: string; admin: string }>();
    for (const c of plan.clusters) {
      const host = await hosts.controlPlane(c);
      if (await inUse(host.publicAddress, 15014)) {
        throw new LabError(`${host.publicAddress}:15014 is already in use: is another lab running? (\`crossmesh down\` in its directory stops it)`);
      }
      const log = join(dir, 'logs', `${c.name}.control-plane.log`);
      say(`control plane ${c.name} (network ${c.network}) on ${host.address}${host.publicAddress !== host.address ? `, public ${host.publicAddress}` : ''}`);
      const proc = supervisor.start({
        name: `${c.name}/control-plane`,
        command: process.execPath,
        args: [
          BIN, 'control-plane', '--cluster', c.name, '--network', c.network, ...(c.locality ? ['--locality', c.locality] : []),
          '--data', join(dir, 'data', c.name), '--cacerts', join(dir, 'pki', c.name), '--host', host.bind,
          '--advertise', [...new Set([host.address, host.publicAddress])].join(','), '--registration-grace', '5s', '--ready-timeout', '5s',
        ],
        ...(host.netns ? { netns: host.netns } : {}),
        logFile: log,
      });
      let exited = false;
      void proc.exited.then(() => (exited = true));
      const admin = `http://${host.publicAddress}:15014`;
      await poll(`control plane ${c.name}`, () => httpOk(`${admin}/ready`), timeout, () => (exited ? tail(log) : undefined));
      const token = readFileSync(join(dir, 'data', c.name, 'admin-token'), 'utf8').trim();
      const api = `https://${host.publicAddress}:6443`;
      const client = createKubeClient({ server: api, token, ca: rootOf(c).certPem });
      clients.push(client);
      cps.set(c.name, { host, client, api, admin });
      state.tokens[c.name] = token;
      state.clusters.push({ name: c.name, network: c.network, locality: c.locality, controlPlane: { xds: `${host.publicAddress}:15010`, api, admin } });
    }

    const gatewayHosts = new Map<string, Host>();
    for (const c of plan.clusters) for (const g of c.gateways) gatewayHosts.set(`${c.name}/${g.name}`, await hosts.gateway(c, g));
    for (const c of plan.clusters) {
      const publics = c.gateways.map((g) => gatewayHosts.get(`${c.name}/${g.name}`)!.publicAddress);
      const extra: Resource[] = c.gateways.length ? [eastWestGatewayService(c, publics)] : [];
      const namespaces = new Set([...c.pods.map((p) => p.namespace), ...c.resources.map((r) => r.metadata.namespace ?? '').filter(Boolean)]);
      const declared = new Set(c.resources.filter((r) => r.kind === 'Namespace').map((r) => r.metadata.name));
      const implicit: Resource[] = [...namespaces].filter((n) => !declared.has(n) && n !== 'istio-system').map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
      await cps.get(c.name)!.client.apply([...implicit, ...c.resources, ...extra]);
    }
    for (const from of plan.clusters) {
      for (const to of plan.clusters) {
        if (from === to) continue;
        const { client, api } = cps.get(from.name)!;
        await cps.get(to.name)!.client.apply([await createRemoteSecret(client, { cluster: from.name, server: api, caPem: rootOf(from).certPem })]);
      }
    }
    say(`remote secrets exchanged between ${plan.clusters.length} clusters`);

    const now = Date.now();
    const signingKeys = new Map<string, Awaited<ReturnType<typeof loadCacerts>>>();
    const tokenFor = async (c: ClusterPlan, namespace: string, serviceAccount: string) => {
      if (!signingKeys.has(c.name)) signingKeys.set(c.name, await loadCacerts(join(dir, 'pki', c.name), now));
      const material = signingKeys.get(c.name)!;
      return createJoinToken({ signingKey: material.signer.key.privateKey, trustDomain: plan.trustDomain, namespace, serviceAccount, cluster: c.name, ttlSeconds: 7 * 24 * 3600, nowMs: now });
    };
    const proxyArgs = (c: ClusterPlan, role: string, h: Host, pod: string, namespace: string, sa: string, labels: Record<string, string>, token: string) => {
      const cp = cps.get(c.name)!.host;
      return [
        BIN, 'proxy', '--role', role, '--discovery', `${cp.address}:15010`, '--ca-address', `${cp.address}:15012`, '--ca-root', clusterRoot(c),
        '--cluster', c.name, '--network', c.network, ...(c.locality ? ['--locality', c.locality] : []), '--namespace', namespace, '--service-account', sa,
        '--labels', Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','), '--ip', h.address, '--pod', pod, '--token', token,
        '--admin-host', h.bind, '--trust-domain', plan.trustDomain,
        ...(netns ? (role === 'sidecar' ? ['--interception', 'redirect', '--capture'] : []) : ['--interception', 'none']),
        ...(role === 'sidecar' && !c.dnsCapture ? ['--dns-capture', 'false'] : []),
      ];
    };
    const waitProxy = (c: ClusterPlan, h: Host, pod: string, log: string, exited: () => boolean) =>
      poll(
        `${c.name}/${pod}`,
        () => (h.netns ? readyInNamespace(h.netns) : httpOk(`http://${h.address}:15000/ready`)),
        timeout,
        () => (exited() ? tail(log) : undefined),
      );

    const waits: Array<Promise<void>> = [];
    for (const c of plan.clusters) {
      for (const g of c.gateways) {
        const h = gatewayHosts.get(`${c.name}/${g.name}`)!;
        const log = join(dir, 'logs', `${c.name}.${g.name}.proxy.log`);
        const token = await tokenFor(c, 'istio-system', 'istio-eastwestgateway');
        const proc = supervisor.start({
          name: `${c.name}/${g.name}/proxy`,
          command: process.execPath,
          args: [...proxyArgs(c, 'eastwest-gateway', h, g.name, 'istio-system', 'istio-eastwestgateway', { istio: 'eastwestgateway', 'topology.istio.io/network': c.network }, token), '--gateway-port', String(g.port), '--access-log', `${log}.access`],
          ...(h.netns ? { netns: h.netns } : {}),
          logFile: log,
        });
        let exited = false;
        void proc.exited.then(() => (exited = true));
        waits.push(waitProxy(c, h, g.name, log, () => exited));
        state.gateways.push({ name: g.name, cluster: c.name, network: c.network, address: `${h.publicAddress}:${g.port}`, admin: `http://${h.address}:15000` });
      }
      for (const p of c.pods) waits.push(startPod(c, p, await tokenFor(c, p.namespace, p.serviceAccount)));
    }

    async function startPod(c: ClusterPlan, p: PodPlan, token: string): Promise<void> {
      const h = await hosts!.pod(c, p);
      const ports = p.ports.length ? p.ports : p.app?.defaultPort ? [p.app.defaultPort] : [];
      const appLog = join(dir, 'logs', `${c.name}.${p.name}.app.log`);
      const proxyLog = join(dir, 'logs', `${c.name}.${p.name}.proxy.log`);
      if (p.app && p.app.kind !== 'sleep') {
        supervisor.start({
          name: `${c.name}/${p.name}/app`,
          command: process.execPath,
          args: [BIN, 'lab', 'run-app', '--image', p.image, '--pod', p.name, '--host', h.appBind, ...ports.flatMap((port) => ['--port', String(port)])],
          env: p.env,
          ...(h.netns ? { netns: h.netns } : {}),
          logFile: appLog,
        });
      }
      const proc = supervisor.start({
        name: `${c.name}/${p.name}/proxy`,
        command: process.execPath,
        args: [...proxyArgs(c, 'sidecar', h, p.name, p.namespace, p.serviceAccount, p.labels, token), '--app-host', h.appHost, ...ports.flatMap((port) => ['--app-port', String(port)]), '--access-log', `${proxyLog}.access`],
        ...(h.netns ? { netns: h.netns } : {}),
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
        ip: h.address,
        netns: h.netns ?? null,
        admin: `http://${h.address}:15000`,
        appAddress: h.appHost,
      });
      await waitProxy(c, h, p.name, proxyLog, () => exited);
    }

    await Promise.all(waits);
    const unsettled = await waitSettled([...cps.values()].map((c) => c.admin), options.settleTimeoutMs ?? 30_000);
    if (unsettled) logger.warn('the mesh has not settled; first calls may not yet see every endpoint', { reason: unsettled });
    else say('mesh settled: every workload healthy and every proxy synced');
    writeLabState(dir, state);
    return { state, supervisor, stop };
  } catch (err) {
    logger.error('lab failed to start; stopping what was started', { error: errorMessage(err) });
    await stop();
    throw err instanceof CrossmeshError ? err : new LabError(errorMessage(err), { cause: err });
  }
}
