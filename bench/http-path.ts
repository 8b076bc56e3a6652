/**
 * npm run bench:http-path — the JavaScript cost of one HTTP/1.1 request through the sidecar's request path,
 * in one process: the server codec parses a request, the router picks the route and endpoint, the upstream
 * pool writes the head, parses a 1 KB response, and the response goes back with Istio metrics recorded. The
 * sockets are in-memory stand-ins that answer at once, so there is no kernel, no TLS and no event loop in
 * the number: it isolates the code that bench:proxy cannot resolve on a noisy machine (a change of a few
 * percent there drowns in the run-to-run spread).
 *
 * BENCH_BASELINE=/path/to/another/checkout (built) measures that build too, the two taking turns, and prints
 * the ratio. BENCH_REQUESTS (per round, default 100000) and BENCH_ROUNDS (default 5) tune it.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';

import type * as RouterModule from '../src/proxy/sidecar/http-router.js';
import type * as UpstreamModule from '../src/proxy/upstream/index.js';
import type * as RoutesModule from '../src/proxy/sidecar/compile-routes.js';
import type * as ConfigUtilModule from '../src/proxy/sidecar/config-util.js';
import type * as ServerModule from '../src/proxy/sidecar/http1-server.js';
import type * as TelemetryModule from '../src/proxy/telemetry/index.js';
import type { HttpChainFilter } from '../src/proxy/sidecar/compile-listeners.js';
import type { ClusterSettings } from '../src/proxy/upstream/types.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BODY = 'x'.repeat(1024);
const RESPONSE = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nDate: Fri, 04 Dec 2026 18:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n${BODY}`);
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: app.bench.svc.cluster.local:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n');

/** Just enough of a net.Socket for the codecs: writes are counted and handed to `onWrite`. */
class MemorySocket extends EventEmitter {
  readable = true;
  writable = true;
  destroyed = false;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 40000;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 50000;
  constructor(private readonly onWrite: () => void) {
    super();
  }
  write(): boolean {
    this.onWrite();
    return true;
  }
  cork(): void {}
  uncork(): void {}
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    this.emit('close');
    return this;
  }
}

/** One build's request path, wired with in-memory sockets; `one()` runs a request to completion. */
async function load(root: string): Promise<{ one(): void; responses(): number }> {
  const dist = (m: string) => `${root}/dist/src/proxy/${m}`;
  const upstream = (await import(dist('upstream/index.js'))) as typeof UpstreamModule;
  const { CONNECTED, PEER_ID } = upstream;
  const routes = (await import(dist('sidecar/compile-routes.js'))) as typeof RoutesModule;
  const { Problems } = (await import(dist('sidecar/config-util.js'))) as typeof ConfigUtilModule;
  const { createRouter } = (await import(dist('sidecar/http-router.js'))) as typeof RouterModule;
  const { Http1ServerConnection } = (await import(dist('sidecar/http1-server.js'))) as typeof ServerModule;
  const { createMeshMetrics } = (await import(dist('telemetry/index.js'))) as typeof TelemetryModule;

  let pending: MemorySocket | undefined;
  upstream.UpstreamHost.prototype.connect = function connect() {
    const s = new MemorySocket(() => (pending = s));
    Object.assign(s, { [CONNECTED]: true, [PEER_ID]: 'spiffe://cluster.local/ns/bench/sa/app' });
    return s as never;
  };
  const clock = {
    now: () => performance.now(),
    setTimeout: (fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      return { cancel: () => clearTimeout(t) };
    },
  };
  const name = 'outbound|8080||app.bench.svc.cluster.local';
  const settings: ClusterSettings = {
    name, type: 'EDS', lbPolicy: 'ROUND_ROBIN', connectTimeoutMs: 1000, maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3,
    maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, http2: false, panicThreshold: 0, ringSize: 1024, tlsMatches: [], defaultTls: null,
    service: { host: 'app.bench.svc.cluster.local', name: 'app', namespace: 'bench' },
  };
  const cluster = new upstream.ClusterRuntime(settings, { current: () => undefined }, clock);
  cluster.update(settings, [{ locality: 'r/z/', priority: 0, weight: 1, endpoints: [{ address: '127.0.9.2', port: 15006, health: 'HEALTHY', weight: 1, transportMatch: {}, workload: 'app-1;bench', cluster: 'bench' }] }]);
  // What the control plane sends for a service: a virtual host with its name variants, Istio's default retries.
  const problems = new Problems();
  const vh = (svc: string, cl: string) => ({
    name: `${svc}.bench.svc.cluster.local:8080`,
    domains: [`${svc}.bench.svc.cluster.local`, `${svc}.bench.svc.cluster.local:8080`, svc, `${svc}:8080`, `${svc}.bench`, `${svc}.bench:8080`],
    routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: cl, timeout: '0s', retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: 2, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }], host_selection_retry_max_attempts: '5', retriable_status_codes: [503] } } }],
  });
  const table = routes.compileRouteTable({ name: '8080', virtual_hosts: [vh('other', 'outbound|8080||other.bench.svc.cluster.local'), vh('app', name)] }, problems);
  if (problems.list.length) throw new Error(`route table: ${JSON.stringify(problems.list)}`);
  const router = createRouter({
    routeTable: () => table,
    cluster: (n) => (n === name ? cluster : undefined),
    clock,
    metrics: createMeshMetrics(new Registry()),
    identity: { cluster: 'bench', namespace: 'bench', workload: 'client', network: 'net' },
    spiffeId: () => 'spiffe://cluster.local/ns/bench/sa/client',
  });
  const chain: HttpChainFilter = { kind: 'http', statPrefix: 'outbound_0.0.0.0_8080', rds: '8080', fault: false, xfcc: 'SANITIZE', upgrades: new Map([['websocket', true]]), streamIdleTimeoutMs: 300_000, codec: 'HTTP1' };
  const info = { chain, inbound: false, tls: false, localAddress: '127.0.9.1:15001', remoteAddress: '127.0.0.1:50000', remoteIp: '127.0.0.1' };
  let responses = 0;
  const down = new MemorySocket(() => responses++);
  new Http1ServerConnection(down as never, {
    idleTimeoutMs: 60_000,
    request: (req, res) => router(req, res, info),
    parseError: (err) => {
      throw err;
    },
  });
  return {
    one() {
      down.emit('data', REQUEST);
      const up = pending;
      pending = undefined;
      if (!up) throw new Error('the request did not reach the upstream socket');
      up.emit('data', RESPONSE);
    },
    responses: () => responses,
  };
}

/** Runs in a child process per build, so the two never share a heap or JIT state; prints µs per request. */
async function measure(root: string): Promise<void> {
  const path = await load(root);
  for (let i = 0; i < 20_000; i++) path.one();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const before = process.cpuUsage();
    for (let i = 0; i < REQUESTS; i++) path.one();
    const used = process.cpuUsage(before);
    rounds.push((used.user + used.system) / REQUESTS);
  }
  if (path.responses() !== 20_000 + ROUNDS * REQUESTS) throw new Error(`${path.responses()} responses for ${20_000 + ROUNDS * REQUESTS} requests`);
  console.log(`ROUND ${JSON.stringify(rounds)}`);
}

function runChild(root: string): number[] {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--measure', root], { encoding: 'utf8', env: process.env });
  const m = /ROUND (\[.*\])/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`measuring ${root} failed: ${r.stderr || r.stdout}`);
  return JSON.parse(m[1]!) as number[];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  if (process.argv[2] === '--measure') return measure(process.argv[3]!);
  const self = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
  const builds = [{ name: 'this build', root: self, rounds: [] as number[] }];
  if (process.env.BENCH_BASELINE) builds.push({ name: 'baseline build', root: process.env.BENCH_BASELINE, rounds: [] });
  // Three processes per build, taking turns: a slow stretch of the machine falls on both alike.
  for (let i = 0; i < 3; i++) for (const b of builds) b.rounds.push(...runChild(b.root));
  console.log(`\nHTTP/1.1 request path in one process (in-memory sockets, 1 KB response, metrics on): ${ROUNDS} rounds of ${REQUESTS} requests in each of 3 processes per build\n`);
  console.log(['build', 'µs CPU per request, min', 'median'].join('  '));
  for (const b of builds) console.log([b.name.padEnd(14), Math.min(...b.rounds).toFixed(2).padEnd(22), median(b.rounds).toFixed(2)].join('  '));
  const [a, base] = builds;
  if (base) console.log(`\nthis build / baseline: ${(Math.min(...a!.rounds) / Math.min(...base.rounds)).toFixed(2)}× (min), ${(median(a!.rounds) / median(base.rounds)).toFixed(2)}× (median)`);
  console.log(`RESULT ${JSON.stringify({ us_per_request_min: +Math.min(...a!.rounds).toFixed(2), us_per_request_median: +median(a!.rounds).toFixed(2), ...(base ? { baseline_us_per_request_min: +Math.min(...base.rounds).toFixed(2) } : {}) })}`);
}

main().catch((err: unknown) => {
  console.error(`bench:http-path failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
