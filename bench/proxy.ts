/**
 * npm run bench:proxy — a 1 KB HTTP/1.1 keep-alive load (wrk) through:
 *   direct:  wrk → app
 *   haproxy: wrk → HAProxy (client side) → TLS → HAProxy (server side) → app, two processes (and, for
 *            reference, both sides in one process)
 *   ours:    wrk → crossmesh sidecar (explicit proxy) → mTLS → crossmesh sidecar (inbound) → app, once
 *            without access log (like the HAProxy pair) and once logging every request as JSON
 * Each row: requests/s, p50, p99, CPU-seconds per 1000 requests of the proxies, their RSS. Ends with one
 * RESULT line. Needs `wrk` and `haproxy` on PATH (Debian: apt-get install wrk haproxy); it installs nothing
 * and says what is missing.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Resource } from '../src/api/types.js';
import { caMaterialFromPem, generateIntermediateCa, generateRootCa, generateWorkloadCert, writeCacerts } from '../src/ca/index.js';
import { startControlPlane } from '../src/controlplane/index.js';
import { requestThroughSidecar } from '../src/lab/checks.js';
import { tempDir } from '../test/helpers/mesh.js';

const run = promisify(execFile);
const DURATION = process.env.BENCH_DURATION ?? '10s';
/** Unmeasured load before each measured run: the JIT of a Node process (ours) warms up; HAProxy's gains nothing. */
const WARMUP = process.env.BENCH_WARMUP ?? '3s';
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
const BODY = Buffer.alloc(1024, 'x');
/** Extra node flags for the two sidecars, e.g. BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

function missingTools(): string[] {
  return ['wrk', 'haproxy'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
}

/** wrk with a Lua script that reports latency percentiles as JSON; an absolute URL makes it talk to a proxy. */
async function wrk(target: { host: string; port: number }, path: string, hostHeader: string, dir: string, duration = DURATION): Promise<WrkResult> {
  const script = join(dir, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  writeFileSync(
    script,
    `wrk.path = "${path}"\nwrk.headers["Host"] = "${hostHeader}"\n` +
      `done = function(summary, latency, requests)\n  io.write(string.format('JSON {"requests":%d,"errors":%d,"p50":%f,"p99":%f,"duration":%d}\\n', summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout, latency:percentile(50)/1000, latency:percentile(99)/1000, summary.duration))\nend\n`,
  );
  const { stdout } = await run('wrk', ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', duration, '--latency', '-s', script, `http://${target.host}:${target.port}`], { maxBuffer: 1 << 20 });
  const m = /JSON (\{.*\})/.exec(stdout);
  if (!m) throw new Error(`wrk printed no result: ${stdout}`);
  const j = JSON.parse(m[1]!) as { requests: number; errors: number; p50: number; p99: number; duration: number };
  return { rps: j.requests / (j.duration / 1e6), p50: j.p50, p99: j.p99, requests: j.requests, errors: j.errors };
}

function procStats(pids: number[]): { cpuSec: number; rssMb: number } {
  let cpu = 0;
  let rss = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      cpu += (Number(stat[11]) + Number(stat[12])) / 100;
      rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    } catch {
      // process gone: counts nothing
    }
  }
  return { cpuSec: cpu, rssMb: rss };
}

/** CPU time of the proxies in milliseconds per 1000 requests served. */
function cpuMsPer1k(cpuSec: number, requests: number): number {
  return (cpuSec * 1000) / (requests / 1000);
}

/** SIGTERM, then wait until every process has exited. */
function stopAll(procs: ChildProcess[]): Promise<unknown> {
  return Promise.all(procs.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : (c.once('exit', resolve), c.kill('SIGTERM'))))));
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const missing = missingTools();
  if (missing.length) {
    console.error(`bench:proxy needs ${missing.join(' and ')} on PATH; on Debian: apt-get install ${missing.join(' ')}. Nothing was installed.`);
    process.exit(2);
  }
  const dir = tempDir('cm-bench-proxy-');
  const children: ChildProcess[] = [];
  const app = createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length }).end(BODY);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  const rows: Array<{ name: string; r: WrkResult; cpuMsPer1k?: number; rssMb?: number }> = [];
  let cp: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  try {
    await wrk({ host: '127.0.0.1', port: appPort }, '/', `127.0.0.1:${appPort}`, dir.path, WARMUP);
    rows.push({ name: 'direct', r: await wrk({ host: '127.0.0.1', port: appPort }, '/', `127.0.0.1:${appPort}`, dir.path) });

    // HAProxy pair: one terminates client keep-alive and originates TLS, the other terminates TLS.
    const root = await generateRootCa();
    const inter = await generateIntermediateCa({ root, cluster: 'bench' });
    writeCacerts(join(dir.path, 'cacerts'), inter);
    const server = await generateWorkloadCert({ material: await caMaterialFromPem(inter), spiffeId: 'spiffe://cluster.local/ns/bench/sa/server', ttlSeconds: 3600 });
    writeFileSync(join(dir.path, 'server.pem'), server.certChainPem + server.keyPem);
    writeFileSync(join(dir.path, 'root.pem'), root.certPem);
    const common = `global\n  maxconn 4096\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n`;
    const clientSide = `frontend client_side\n  bind 127.0.0.1:18081\n  default_backend to_server_side\nbackend to_server_side\n  server s 127.0.0.1:18443 ssl verify required ca-file ${join(dir.path, 'root.pem')} alpn http/1.1\n`;
    const serverSide = `frontend server_side\n  bind 127.0.0.1:18443 ssl crt ${join(dir.path, 'server.pem')}\n  default_backend app\nbackend app\n  server a 127.0.0.1:${appPort}\n`;
    // The server certificate carries only a SPIFFE URI SAN, as ours do: HAProxy verifies the chain (no SNI,
    // so no hostname check), which is what our sidecars verify too, plus the SPIFFE ID.
    const haproxy = async (name: string, configs: string[]): Promise<(typeof rows)[number]> => {
      const procs = configs.map((cfg, i) => {
        const file = join(dir.path, `haproxy-${rows.length}-${i}.cfg`);
        writeFileSync(file, common + cfg);
        const p = spawn('haproxy', ['-f', file], { stdio: 'inherit' });
        children.push(p);
        return p;
      });
      await waitFor('haproxy', () => fetch('http://127.0.0.1:18081/').then((r) => r.ok, () => false));
      await wrk({ host: '127.0.0.1', port: 18081 }, '/', 'app', dir.path, WARMUP);
      const pids = procs.map((p) => p.pid!);
      const before = procStats(pids);
      const r = await wrk({ host: '127.0.0.1', port: 18081 }, '/', 'app', dir.path);
      const after = procStats(pids);
      await stopAll(procs);
      return { name, r, cpuMsPer1k: cpuMsPer1k(after.cpuSec - before.cpuSec, r.requests), rssMb: after.rssMb };
    };
    // A pair is two processes, as two sidecars are; both sides in one HAProxy process saves the hop between
    // processes and is shown for reference only.
    rows.push(await haproxy('haproxy pair (TLS)', [clientSide, serverSide]));
    const haproxyOneProcess = await haproxy('haproxy, both sides in one process', [clientSide + serverSide]);

    // Our pair: a control plane, a server-side sidecar in front of the app, a client-side sidecar wrk talks to.
    cp = await startControlPlane({ cluster: 'bench', network: 'net', dataDir: join(dir.path, 'cp'), cacertsDir: join(dir.path, 'cacerts'), host: '127.0.0.1', ports: { xds: 0, xdsTls: 0, admin: 0, api: 0 }, debounce: { quietMs: 10, maxDelayMs: 50 } });
    const svc: Resource = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'app', namespace: 'bench' }, spec: { selector: { app: 'app' }, ports: [{ name: 'http', port: 8080, targetPort: appPort }] } };
    await cp.store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }, svc]);
    const token = (sa: string) => cp!.ca.createJoinToken({ namespace: 'bench', serviceAccount: sa, ttlSeconds: 3600 });
    const a = cp.addresses();
    const proxy = (ip: string, pod: string, sa: string, labels: string, accessLog: string) =>
      spawn(process.execPath, [...NODE_ARGS, bin, 'proxy', '--role', 'sidecar', '--discovery', a.xds, '--ca-address', a.xdsTls, '--ca-root', join(dir.path, 'root.pem'), '--cluster', 'bench', '--network', 'net', '--namespace', 'bench', '--service-account', sa, '--labels', labels, '--ip', ip, '--pod', pod, '--token', token(sa), '--interception', 'none', '--app-host', '127.0.0.1', '--admin-host', ip, '--access-log', accessLog], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CROSSMESH_LOG_LEVEL: 'warn' } });
    const url = 'http://app.bench.svc.cluster.local:8080/';
    // Two runs of the pair: without access log (the same work as the HAProxy pair, which logs nothing) and
    // with every request logged as JSON (to /dev/null: the formatting and the writes, not the disk).
    const pair = async (name: string, clientIp: string, serverIp: string, accessLog: string): Promise<void> => {
      const serverSide = proxy(serverIp, 'app-1', 'app', 'app=app', accessLog);
      const clientSide = proxy(clientIp, 'client-1', 'client', 'app=client', accessLog);
      children.push(serverSide, clientSide);
      await waitFor('both sidecars ready', async () => (await Promise.all([clientIp, serverIp].map((ip) => fetch(`http://${ip}:15000/ready`).then((r) => r.ok, () => false)))).every(Boolean));
      await waitFor('a request through the pair', () => requestThroughSidecar(clientIp, url).then((r) => r.status === 200, () => false));
      const pids = [serverSide.pid!, clientSide.pid!];
      await wrk({ host: clientIp, port: 15001 }, url, 'app.bench.svc.cluster.local:8080', dir.path, WARMUP);
      const before = procStats(pids);
      const r = await wrk({ host: clientIp, port: 15001 }, url, 'app.bench.svc.cluster.local:8080', dir.path);
      const after = procStats(pids);
      rows.push({ name, r, cpuMsPer1k: cpuMsPer1k(after.cpuSec - before.cpuSec, r.requests), rssMb: after.rssMb });
      // Gone before the next pair starts, so its drain does not share the CPU with the next run.
      await stopAll([serverSide, clientSide]);
    };
    await pair('crossmesh pair (mTLS)', '127.0.9.1', '127.0.9.2', 'off');
    // The same addresses and pod names: the second pair replaces the first as the service's only endpoint.
    await pair('crossmesh pair (mTLS) + access log', '127.0.9.1', '127.0.9.2', '/dev/null');

    const h = rows[1]!;
    const o = rows[2]!;
    const logged = rows[3]!;
    rows.push(haproxyOneProcess);
    console.log(`\n1 KB HTTP/1.1 keep-alive, wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} after ${WARMUP} of warm-up per path\n`);
    const header = ['path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'proxy CPU ms per 1k req', 'proxy RSS MB'];
    const table = rows.map((x) => [x.name, x.r.rps.toFixed(0), x.r.p50.toFixed(2), x.r.p99.toFixed(2), String(x.r.errors), x.cpuMsPer1k?.toFixed(0) ?? '-', x.rssMb?.toFixed(0) ?? '-']);
    const widths = header.map((hd, i) => Math.max(hd.length, ...table.map((t) => t[i]!.length)));
    for (const line of [header, ...table]) console.log(line.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    const ratio = (x: (typeof rows)[number]): string =>
      `throughput ${(x.r.rps / h.r.rps).toFixed(2)}×, p99 ${(x.r.p99 / h.r.p99).toFixed(2)}×, CPU per request ${((x.cpuMsPer1k ?? 0) / (h.cpuMsPer1k ?? 1)).toFixed(2)}×`;
    console.log(`\nours / haproxy: ${ratio(o)}\nours with access log / haproxy: ${ratio(logged)}`);
    console.log(
      'RESULT ' +
        JSON.stringify({
          direct_rps: Math.round(rows[0]!.r.rps), haproxy_rps: Math.round(h.r.rps), ours_rps: Math.round(o.r.rps),
          haproxy_p99_ms: +h.r.p99.toFixed(2), ours_p99_ms: +o.r.p99.toFixed(2),
          haproxy_cpu_ms_per_1k: +(h.cpuMsPer1k ?? 0).toFixed(1), ours_cpu_ms_per_1k: +(o.cpuMsPer1k ?? 0).toFixed(1),
          ours_rss_mb: Math.round(o.rssMb ?? 0),
          ours_logged_rps: Math.round(logged.r.rps), ours_logged_p99_ms: +logged.r.p99.toFixed(2), ours_logged_cpu_ms_per_1k: +(logged.cpuMsPer1k ?? 0).toFixed(1),
        }),
    );
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of children) c.kill('SIGKILL');
    await cp?.stop();
    app.close();
    dir.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench:proxy failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
