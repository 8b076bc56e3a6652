/**
 * npm run bench:proxy — a 1 KB HTTP/1.1 keep-alive load (wrk) through:
 *   direct:  wrk → app
 *   haproxy: wrk → HAProxy (client side) → TLS → HAProxy (server side) → app, two processes (and, for
 *            reference, both sides in one process)
 *   pipe:    wrk → Node byte pipe → TLS → Node byte pipe → app (reference: the floor of Node's net/tls streams)
 *   ours:    wrk → crossmesh sidecar (explicit proxy) → mTLS → crossmesh sidecar (inbound) → app, once
 *            without access log (like the HAProxy pair) and once logging every request as JSON
 * All paths run at once and the measured runs take turns (BENCH_ROUNDS rounds of BENCH_DURATION each), so a
 * slow stretch of a shared machine falls on every path alike. Each row: median requests/s, p50 and p99 over
 * the rounds, CPU milliseconds per 1000 requests of the proxies, their RSS. Ends with one RESULT line. Needs
 * `wrk` and `haproxy` on PATH (Debian: apt-get install wrk haproxy); it installs nothing and says what is
 * missing.
 * BENCH_BASELINE=/path/to/another/checkout (built) adds a pair of that build's sidecars as one more path and
 * prints ours / baseline: an A/B of two builds under the same load, round for round.
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
const DURATION = process.env.BENCH_DURATION ?? '5s';
/** Unmeasured load before each measured run: the JIT of a Node process (ours) warms up; HAProxy's gains nothing. */
const WARMUP = process.env.BENCH_WARMUP ?? '3s';
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** Measured runs per path; the paths take turns, so the machine's slow stretches hit all of them alike. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;
const BODY = Buffer.alloc(1024, 'x');
/** Extra node flags for the two sidecars, e.g. BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** Another checkout whose sidecars run as an extra path, for an A/B of two builds. */
const BASELINE = process.env.BENCH_BASELINE;

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

/** The two halves of a Node.js TLS byte pipe: what any proxy built on Node's net/tls streams costs at least. */
const PIPE_CLIENT = `
import net from 'node:net'; import tls from 'node:tls'; import { readFileSync } from 'node:fs';
const [listenPort, serverPort, rootFile] = process.argv.slice(2);
const ca = readFileSync(rootFile);
net.createServer({ noDelay: true }, (down) => {
  const up = tls.connect({ socket: net.connect({ host: '127.0.0.1', port: Number(serverPort), noDelay: true }), ca, checkServerIdentity: () => undefined });
  down.pipe(up).pipe(down);
  down.on('error', () => up.destroy());
  up.on('error', () => down.destroy());
}).listen(Number(listenPort), '127.0.0.1');
`;
const PIPE_SERVER = `
import net from 'node:net'; import tls from 'node:tls'; import { readFileSync } from 'node:fs';
const [listenPort, appPort, pemFile] = process.argv.slice(2);
const pem = readFileSync(pemFile);
tls.createServer({ key: pem, cert: pem }, (down) => {
  down.setNoDelay(true);
  const up = net.connect({ host: '127.0.0.1', port: Number(appPort), noDelay: true });
  down.pipe(up).pipe(down);
  down.on('error', () => up.destroy());
  up.on('error', () => down.destroy());
}).listen(Number(listenPort), '127.0.0.1');
`;

/** One measured path: where wrk sends, and the processes whose CPU it costs. */
interface Path {
  name: string;
  target: { host: string; port: number };
  url: string;
  hostHeader: string;
  pids: number[];
}

interface Row {
  name: string;
  rounds: WrkResult[];
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuMsPer1k?: number;
  rssMb?: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

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
  let cp: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  const start = (cmd: string, args: string[], opts: Parameters<typeof spawn>[2] = { stdio: 'inherit' }): ChildProcess => {
    const c = spawn(cmd, args, opts);
    children.push(c);
    return c;
  };
  try {
    const root = await generateRootCa();
    const inter = await generateIntermediateCa({ root, cluster: 'bench' });
    writeCacerts(join(dir.path, 'cacerts'), inter);
    const server = await generateWorkloadCert({ material: await caMaterialFromPem(inter), spiffeId: 'spiffe://cluster.local/ns/bench/sa/server', ttlSeconds: 3600 });
    writeFileSync(join(dir.path, 'server.pem'), server.certChainPem + server.keyPem);
    writeFileSync(join(dir.path, 'root.pem'), root.certPem);

    // HAProxy pair: one terminates client keep-alive and originates TLS, the other terminates TLS. The server
    // certificate carries only a SPIFFE URI SAN, as ours do: HAProxy verifies the chain (no SNI, so no hostname
    // check), which is what our sidecars verify too, plus the SPIFFE ID.
    const common = `global\n  maxconn 4096\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n`;
    const clientSide = (port: number, tlsPort: number) =>
      `frontend client_side_${port}\n  bind 127.0.0.1:${port}\n  default_backend to_server_side_${port}\nbackend to_server_side_${port}\n  server s 127.0.0.1:${tlsPort} ssl verify required ca-file ${join(dir.path, 'root.pem')} alpn http/1.1\n`;
    const serverSide = (tlsPort: number) =>
      `frontend server_side_${tlsPort}\n  bind 127.0.0.1:${tlsPort} ssl crt ${join(dir.path, 'server.pem')}\n  default_backend app_${tlsPort}\nbackend app_${tlsPort}\n  server a 127.0.0.1:${appPort}\n`;
    const haproxy = (name: string, configs: string[]): ChildProcess[] =>
      configs.map((cfg, i) => {
        const file = join(dir.path, `haproxy-${name}-${i}.cfg`);
        writeFileSync(file, common + cfg);
        return start('haproxy', ['-f', file]);
      });
    // A pair is two processes, as two sidecars are; both sides in one HAProxy process saves the hop between
    // processes and is shown for reference only.
    const hPair = haproxy('pair', [clientSide(18081, 18443), serverSide(18443)]);
    const hOne = haproxy('one', [clientSide(18082, 18444) + serverSide(18444)]);

    // Reference: two Node processes that only move bytes (no HTTP parsing, routing or telemetry), TLS between.
    writeFileSync(join(dir.path, 'pipe-client.mjs'), PIPE_CLIENT);
    writeFileSync(join(dir.path, 'pipe-server.mjs'), PIPE_SERVER);
    const pipe = [
      start(process.execPath, [join(dir.path, 'pipe-server.mjs'), '18093', String(appPort), join(dir.path, 'server.pem')]),
      start(process.execPath, [join(dir.path, 'pipe-client.mjs'), '18091', '18093', join(dir.path, 'root.pem')]),
    ];

    // Our pairs: a control plane, a server-side sidecar in front of the app, a client-side sidecar wrk talks
    // to. Two pairs, each with a service of its own: without access log (the same work as the HAProxy pair,
    // which logs nothing) and with every request logged as JSON (to /dev/null: formatting and writes).
    cp = await startControlPlane({ cluster: 'bench', network: 'net', dataDir: join(dir.path, 'cp'), cacertsDir: join(dir.path, 'cacerts'), host: '127.0.0.1', ports: { xds: 0, xdsTls: 0, admin: 0, api: 0 }, debounce: { quietMs: 10, maxDelayMs: 50 } });
    const service = (name: string): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'bench' }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 8080, targetPort: appPort }] } });
    await cp.store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }, service('app'), service('logged'), ...(BASELINE ? [service('base')] : [])]);
    const token = (sa: string) => cp!.ca.createJoinToken({ namespace: 'bench', serviceAccount: sa, ttlSeconds: 3600 });
    const a = cp.addresses();
    const proxy = (ip: string, pod: string, sa: string, labels: string, accessLog: string, cli = bin) =>
      start(process.execPath, [...NODE_ARGS, cli, 'proxy', '--role', 'sidecar', '--discovery', a.xds, '--ca-address', a.xdsTls, '--ca-root', join(dir.path, 'root.pem'), '--cluster', 'bench', '--network', 'net', '--namespace', 'bench', '--service-account', sa, '--labels', labels, '--ip', ip, '--pod', pod, '--token', token(sa), '--interception', 'none', '--app-host', '127.0.0.1', '--admin-host', ip, '--access-log', accessLog], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CROSSMESH_LOG_LEVEL: 'warn' } });
    const ours = [proxy('127.0.9.2', 'app-1', 'app', 'app=app', 'off'), proxy('127.0.9.1', 'client-1', 'client', 'app=client', 'off')];
    const logged = [proxy('127.0.9.4', 'logged-1', 'app', 'app=logged', '/dev/null'), proxy('127.0.9.3', 'client-2', 'client', 'app=client', '/dev/null')];
    const baselineBin = BASELINE ? join(BASELINE, 'bin', 'crossmesh.js') : undefined;
    const base = baselineBin ? [proxy('127.0.9.6', 'base-1', 'app', 'app=base', 'off', baselineBin), proxy('127.0.9.5', 'client-3', 'client', 'app=client', 'off', baselineBin)] : [];

    const url = (svc: string) => `http://${svc}.bench.svc.cluster.local:8080/`;
    const paths: Path[] = [
      { name: 'direct', target: { host: '127.0.0.1', port: appPort }, url: '/', hostHeader: `127.0.0.1:${appPort}`, pids: [] },
      { name: 'haproxy pair (TLS)', target: { host: '127.0.0.1', port: 18081 }, url: '/', hostHeader: 'app', pids: hPair.map((c) => c.pid!) },
      { name: 'crossmesh pair (mTLS)', target: { host: '127.0.9.1', port: 15001 }, url: url('app'), hostHeader: 'app.bench.svc.cluster.local:8080', pids: ours.map((c) => c.pid!) },
      { name: 'crossmesh pair (mTLS) + access log', target: { host: '127.0.9.3', port: 15001 }, url: url('logged'), hostHeader: 'logged.bench.svc.cluster.local:8080', pids: logged.map((c) => c.pid!) },
      { name: 'haproxy, both sides in one process', target: { host: '127.0.0.1', port: 18082 }, url: '/', hostHeader: 'app', pids: hOne.map((c) => c.pid!) },
      { name: 'node byte pipe (TLS), reference', target: { host: '127.0.0.1', port: 18091 }, url: '/', hostHeader: 'app', pids: pipe.map((c) => c.pid!) },
      ...(BASELINE ? [{ name: 'crossmesh pair (mTLS), baseline build', target: { host: '127.0.9.5', port: 15001 }, url: url('base'), hostHeader: 'base.bench.svc.cluster.local:8080', pids: base.map((c) => c.pid!) }] : []),
    ];
    await waitFor('haproxy and the byte pipe', async () => (await Promise.all([18081, 18082, 18091].map((port) => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false)))).every(Boolean));
    const pairs: Array<readonly [string, string, string]> = [['127.0.9.1', '127.0.9.2', 'app'], ['127.0.9.3', '127.0.9.4', 'logged'], ...(BASELINE ? [['127.0.9.5', '127.0.9.6', 'base'] as const] : [])];
    for (const [clientIp, serverIp, svc] of pairs) {
      await waitFor('both sidecars ready', async () => (await Promise.all([clientIp, serverIp].map((ip) => fetch(`http://${ip}:15000/ready`).then((r) => r.ok, () => false)))).every(Boolean));
      await waitFor('a request through the pair', () => requestThroughSidecar(clientIp, url(svc)).then((r) => r.status === 200, () => false));
    }

    // Every path is up at once, and the measured runs take turns, round after round: a slow stretch of the
    // machine then falls on all paths alike instead of on whichever ran at that moment.
    for (const p of paths) await wrk(p.target, p.url, p.hostHeader, dir.path, WARMUP);
    const measured = new Map<Path, { rounds: WrkResult[]; cpuSec: number }>(paths.map((p) => [p, { rounds: [], cpuSec: 0 }]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of paths) {
        const before = procStats(p.pids);
        const r = await wrk(p.target, p.url, p.hostHeader, dir.path);
        const m = measured.get(p)!;
        m.rounds.push(r);
        m.cpuSec += procStats(p.pids).cpuSec - before.cpuSec;
      }
    }
    const rows: Row[] = paths.map((p) => {
      const m = measured.get(p)!;
      const requests = m.rounds.reduce((n, r) => n + r.requests, 0);
      return {
        name: p.name,
        rounds: m.rounds,
        rps: median(m.rounds.map((r) => r.rps)),
        p50: median(m.rounds.map((r) => r.p50)),
        p99: median(m.rounds.map((r) => r.p99)),
        errors: m.rounds.reduce((n, r) => n + r.errors, 0),
        ...(p.pids.length ? { cpuMsPer1k: cpuMsPer1k(m.cpuSec, requests), rssMb: procStats(p.pids).rssMb } : {}),
      };
    });
    const [, h, o, lg, , pp, bl] = rows as [Row, Row, Row, Row, Row, Row, Row | undefined];

    console.log(`\n1 KB HTTP/1.1 keep-alive, wrk -t${THREADS} -c${CONNECTIONS}: ${ROUNDS} rounds of ${DURATION} per path, paths taking turns, after ${WARMUP} of warm-up each; req/s, p50 and p99 are the medians of the rounds\n`);
    const header = ['path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'proxy CPU ms per 1k req', 'proxy RSS MB'];
    const table = rows.map((x) => [x.name, x.rps.toFixed(0), x.p50.toFixed(2), x.p99.toFixed(2), String(x.errors), x.cpuMsPer1k?.toFixed(0) ?? '-', x.rssMb?.toFixed(0) ?? '-']);
    const widths = header.map((hd, i) => Math.max(hd.length, ...table.map((t) => t[i]!.length)));
    for (const line of [header, ...table]) console.log(line.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    const ratio = (x: Row, ref: Row): string =>
      `throughput ${(x.rps / ref.rps).toFixed(2)}×, p99 ${(x.p99 / ref.p99).toFixed(2)}×, CPU per request ${((x.cpuMsPer1k ?? 0) / (ref.cpuMsPer1k ?? 1)).toFixed(2)}×`;
    const perRound = (x: Row, ref: Row): string => x.rounds.map((r, i) => (r.rps / ref.rounds[i]!.rps).toFixed(2)).join(' ');
    console.log(`\nours / haproxy: ${ratio(o, h)} (throughput per round: ${perRound(o, h)})`);
    console.log(`ours with access log / haproxy: ${ratio(lg, h)}`);
    console.log(`node byte pipe / haproxy: ${ratio(pp, h)}`);
    console.log(`ours / node byte pipe: ${ratio(o, pp)}`);
    if (bl) console.log(`ours / baseline build: ${ratio(o, bl)} (throughput per round: ${perRound(o, bl)})`);
    console.log(
      'RESULT ' +
        JSON.stringify({
          direct_rps: Math.round(rows[0]!.rps), haproxy_rps: Math.round(h.rps), ours_rps: Math.round(o.rps),
          haproxy_p99_ms: +h.p99.toFixed(2), ours_p99_ms: +o.p99.toFixed(2),
          haproxy_cpu_ms_per_1k: +(h.cpuMsPer1k ?? 0).toFixed(1), ours_cpu_ms_per_1k: +(o.cpuMsPer1k ?? 0).toFixed(1),
          ours_rss_mb: Math.round(o.rssMb ?? 0),
          ours_logged_rps: Math.round(lg.rps), ours_logged_p99_ms: +lg.p99.toFixed(2), ours_logged_cpu_ms_per_1k: +(lg.cpuMsPer1k ?? 0).toFixed(1),
          pipe_rps: Math.round(pp.rps), pipe_p99_ms: +pp.p99.toFixed(2), pipe_cpu_ms_per_1k: +(pp.cpuMsPer1k ?? 0).toFixed(1),
        }),
    );
  } finally {
    // Sidecars drain on SIGTERM; whatever is still there after 10 s is killed.
    const killer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 10_000);
    await stopAll(children);
    clearTimeout(killer);
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
