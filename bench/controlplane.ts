/**
 * npm run bench:controlplane — propagation latency and cost of the control plane.
 *
 * Two control planes (separate processes, so their CPU and memory are theirs alone) with remote secrets
 * both ways; SERVICES services × ENDPOINTS endpoints in each cluster; PROXIES sidecar ADS clients split
 * across the clusters (BENCH_APPS distinct workloads, the rest replicas of them). Each round adds one workload in cluster A and times until every proxy in A and B
 * has received (and ACKed) the endpoint update. Prints a table and one RESULT line.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIntermediateCa, generateRootCa, writeCacerts } from '../src/ca/index.js';
import { LABEL_API_TOKEN, remoteSecret } from '../src/controlplane/index.js';

import type { Resource } from '../src/api/types.js';
import { buildKubeconfig, createKubeClient } from '../src/registry/kube-client/index.js';
import type { KubeClient } from '../src/registry/kube-client/index.js';
import type { AdsClient, ClusterLoadAssignment } from '../src/xds/index.js';
import { TYPE_URLS, createAdsClient } from '../src/xds/index.js';
import { freePort, tempDir } from '../test/helpers/mesh.js';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 100);
const ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 10);
const PROXIES = Number(process.env.BENCH_PROXIES ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
/** Distinct client workloads; the proxies are their replicas (replicas share generated config). */
const APPS = Number(process.env.BENCH_APPS ?? 20);
const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
const WATCHED = 'outbound|80||svc-0.bench.svc.cluster.local';
/** Extra node flags for the two control planes, e.g. BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

interface Cp {
  name: string;
  child: ChildProcess;
  ports: { xds: number; tls: number; admin: number; api: number };
  client: KubeClient;
  token: string;
}

function procStats(pid: number): { rssMb: number; cpuSec: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rssMb: rssKb / 1024, cpuSec: ticks / 100 };
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startCp(dir: string, name: string, network: string, root: Awaited<ReturnType<typeof generateRootCa>>): Promise<Cp> {
  const cacerts = join(dir, name, 'cacerts');
  writeCacerts(cacerts, await generateIntermediateCa({ root, cluster: name }));
  const ports = { xds: await freePort(), tls: await freePort(), admin: await freePort(), api: await freePort() };
  const data = join(dir, name, 'data');
  const child = spawn(
    process.execPath,
    [...NODE_ARGS, bin, 'control-plane', '--cluster', name, '--network', network, '--data', data, '--cacerts', cacerts, '--xds-port', String(ports.xds), '--xds-tls-port', String(ports.tls), '--admin-port', String(ports.admin), '--api-port', String(ports.api)],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CROSSMESH_LOG_LEVEL: 'warn' } },
  );
  await waitFor(`${name} ready`, () => fetch(`http://127.0.0.1:${ports.admin}/ready`).then((r) => r.ok, () => false), 20_000);
  const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
  return { name, child, ports, token, client: createKubeClient({ server: `https://127.0.0.1:${ports.api}`, token, ca: root.certPem }) };
}

function endpointsOf(cluster: string, s: number, first: number, count: number): Resource[] {
  return Array.from({ length: count }, (_, e) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: `svc-${s}-${cluster}-${first + e}`, namespace: 'bench' },
    spec: { address: `10.${cluster === 'cluster-a' ? 1 : 2}.${s}.${first + e + 1}`, labels: { app: `svc-${s}` }, serviceAccount: `svc-${s}` },
  }));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const dir = tempDir('cm-bench-');
  const root = await generateRootCa();
  const cps: Cp[] = [];
  const proxies: AdsClient[] = [];
  try {
    cps.push(await startCp(dir.path, 'cluster-a', 'net', root), await startCp(dir.path, 'cluster-b', 'net', root));
    const [a, b] = cps as [Cp, Cp];
    for (const cp of cps) {
      const services: Resource[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }];
      for (let s = 0; s < SERVICES; s++) {
        services.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${s}`, namespace: 'bench' }, spec: { selector: { app: `svc-${s}` }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
      }
      await cp.client.apply(services);
      for (let s = 0; s < SERVICES; s += 10) {
        await cp.client.apply(Array.from({ length: Math.min(10, SERVICES - s) }, (_, k) => endpointsOf(cp.name, s + k, 0, ENDPOINTS)).flat());
      }
    }
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const token = `reader-${from.name}`;
      await from.client.apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: token, namespace: 'istio-system', labels: { [LABEL_API_TOKEN]: 'true' } }, stringData: { token, role: 'read' } } as Resource]);
      await to.client.apply([remoteSecret(from.name, buildKubeconfig({ server: `https://127.0.0.1:${from.ports.api}`, ca: root.certPem, token }, from.name))]);
    }

    const seen = new Map<number, Set<string>>();
    const connectStart = Date.now();
    for (let i = 0; i < PROXIES; i++) {
      const cp = cps[i % 2]!;
      const addresses = new Set<string>();
      seen.set(i, addresses);
      const c = createAdsClient({
        address: `127.0.0.1:${cp.ports.xds}`,
        node: { id: `sidecar~10.200.${i >> 8}.${i & 255}~client-${i}.bench~bench.svc.cluster.local`, metadata: { CLUSTER_ID: cp.name, NETWORK: 'net', NAMESPACE: 'bench', LABELS: { app: `client-${i % APPS}` } } },
      });
      c.subscribe(TYPE_URLS.cluster, () => undefined);
      c.subscribe(
        TYPE_URLS.endpoint,
        (u) => {
          addresses.clear();
          const cla = u.resources.get(WATCHED) as ClusterLoadAssignment | undefined;
          for (const l of cla?.endpoints ?? []) for (const e of l.lb_endpoints ?? []) addresses.add(e.endpoint?.address?.socket_address?.address ?? '');
        },
        [WATCHED],
      );
      proxies.push(c);
    }
    const full = ENDPOINTS * 2;
    await waitFor('every proxy to see both clusters', () => [...seen.values()].every((s) => s.size >= full), 180_000);
    const connectMs = Date.now() - connectStart;

    const cpuBefore = cps.map((cp) => procStats(cp.child.pid!));
    const latencies: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const [entry] = endpointsOf('cluster-a', 0, ENDPOINTS + r, 1);
      const address = (entry!.spec as { address: string }).address;
      const t0 = performance.now();
      await a.client.apply([entry!]);
      await waitFor(`round ${r}`, () => [...seen.values()].every((s) => s.has(address)), 60_000);
      latencies.push(performance.now() - t0);
    }
    const cpuAfter = cps.map((cp) => procStats(cp.child.pid!));
    // One topology change (a new service) forces a full push everywhere: time it from the metric.
    await a.client.apply([{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc-extra', namespace: 'bench' }, spec: { selector: { app: 'extra' }, ports: [{ name: 'http', port: 80 }] } }]);
    await new Promise((r) => setTimeout(r, 5000));
    const metric = async (cp: Cp, name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(await (await fetch(`http://127.0.0.1:${cp.ports.admin}/metrics`)).text())?.[1] ?? NaN);
    const fullPush = await Promise.all(cps.map((cp) => metric(cp, 'crossmesh_full_push_duration_ms')));
    const edsPush = await Promise.all(cps.map((cp) => metric(cp, 'crossmesh_endpoint_push_duration_ms')));
    latencies.sort((x, y) => x - y);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const rows: Array<[string, string]> = [
      ['services × endpoints × clusters', `${SERVICES} × ${ENDPOINTS} × 2`],
      ['connected proxies (workloads × replicas)', `${PROXIES} (${APPS} × ${PROXIES / APPS})`],
      ['initial sync of all proxies (ms)', connectMs.toFixed(0)],
      ['change → all proxies ACKed, p50 (ms)', p50.toFixed(1)],
      ['change → all proxies ACKed, p99 (ms)', p99.toFixed(1)],
      ...cps.map((cp, i): [string, string] => [`${cp.name} full push (ms)`, fullPush[i]!.toFixed(1)]),
      ...cps.map((cp, i): [string, string] => [`${cp.name} endpoint-only push (ms)`, edsPush[i]!.toFixed(1)]),
      ...cps.map((cp, i): [string, string] => [`${cp.name} RSS (MB)`, cpuAfter[i]!.rssMb.toFixed(0)]),
      ...cps.map((cp, i): [string, string] => [`${cp.name} CPU per change (ms)`, (((cpuAfter[i]!.cpuSec - cpuBefore[i]!.cpuSec) * 1000) / ROUNDS).toFixed(1)]),
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log(`\ncontrol plane benchmark (${ROUNDS} rounds)\n`);
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    console.log(
      'RESULT ' +
        JSON.stringify({
          services: SERVICES, endpoints_per_service: ENDPOINTS, clusters: 2, proxies: PROXIES, client_workloads: APPS,
          propagation_p50_ms: +p50.toFixed(1), propagation_p99_ms: +p99.toFixed(1), initial_sync_ms: connectMs,
          full_push_ms: fullPush.map((v) => +v.toFixed(1)), endpoint_push_ms: edsPush.map((v) => +v.toFixed(1)), cp_rss_mb: cpuAfter.map((s) => +s.rssMb.toFixed(0)),
          cp_cpu_ms_per_change: cps.map((_, i) => +(((cpuAfter[i]!.cpuSec - cpuBefore[i]!.cpuSec) * 1000) / ROUNDS).toFixed(1)),
        }),
    );
  } finally {
    for (const p of proxies) p.close();
    for (const cp of cps) {
      cp.client.close();
      cp.child.kill('SIGTERM');
    }
    // A profiled control plane needs time to write its profile after SIGTERM.
    const grace = NODE_ARGS.length ? 15_000 : 300;
    await Promise.all(cps.map((cp) => (cp.child.exitCode !== null || cp.child.signalCode !== null ? undefined : new Promise((r) => { cp.child.once('exit', r); setTimeout(r, grace); }))));
    for (const cp of cps) cp.child.kill('SIGKILL');
    dir.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench:controlplane failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
