import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { createFakeClock } from '../../../test/helpers/fake-clock.js';
import { ClusterRuntime } from './cluster.js';
import { buildRequestHead } from './http1.js';
import type { UpstreamHost } from './host.js';
import type { ClusterSettings, LocalityGroup, OutlierSettings } from './types.js';

function clock(): Clock & { t: number } {
  const c = { t: 0, now: () => c.t, setTimeout: () => ({ cancel() {} }) };
  return c;
}

const settings = (over: Partial<ClusterSettings> = {}): ClusterSettings => ({
  name: 'c',
  type: 'EDS',
  lbPolicy: 'ROUND_ROBIN',
  connectTimeoutMs: 1000,
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  maxRequestsPerConnection: 0,
  idleTimeoutMs: 60_000,
  http2: false,
  panicThreshold: 0,
  ringSize: 1024,
  tlsMatches: [],
  defaultTls: null,
  ...over,
});

const group = (locality: string, priority: number, addresses: string[], opts: { weight?: number; health?: string } = {}): LocalityGroup => ({
  locality,
  priority,
  weight: opts.weight ?? 1,
  endpoints: addresses.map((address) => ({ address, port: 80, health: opts.health ?? 'HEALTHY', weight: 1, transportMatch: {} })),
});

function counts(rt: ClusterRuntime, n: number, hash?: () => number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = rt.pick({ hash: hash?.() });
    const k = h ? h.address : 'none';
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

test('priorities: a degraded priority 0 keeps 1.4 x its health, the rest spills to priority 1', () => {
  const rt = new ClusterRuntime(settings(), { current: () => undefined }, clock());
  const p0 = group('r/a/', 0, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  p0.endpoints[0]!.health = 'UNHEALTHY';
  p0.endpoints[1]!.health = 'UNHEALTHY';
  rt.update(settings(), [p0, group('r/b/', 1, ['10.0.1.1'])]);
  const c = counts(rt, 4000);
  const p1 = c.get('10.0.1.1') ?? 0;
  // 2/4 healthy x 1.4 = 70% stays on priority 0.
  assert.ok(p1 > 1000 && p1 < 1400, `priority 1 got ${p1} of 4000`);
  assert.equal(c.get('10.0.0.1'), undefined);
});

test('localities within a priority are weighted', () => {
  const rt = new ClusterRuntime(settings(), { current: () => undefined }, clock());
  rt.update(settings(), [group('r/a/', 0, ['10.0.0.1'], { weight: 3 }), group('r/b/', 0, ['10.0.0.2'], { weight: 1 })]);
  const c = counts(rt, 4000);
  const b = c.get('10.0.0.2') ?? 0;
  assert.ok(b > 850 && b < 1150, `weight-1 locality got ${b} of 4000`);
});

test('round robin visits every endpoint in turn; no healthy endpoint means none', () => {
  const rt = new ClusterRuntime(settings(), { current: () => undefined }, clock());
  rt.update(settings(), [group('', 0, ['a', 'b', 'c'])]);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => rt.pick()!.address), ['a', 'b', 'c', 'a', 'b', 'c']);
  rt.update(settings(), [group('', 0, ['a'], { health: 'UNHEALTHY' })]);
  assert.equal(rt.pick(), undefined);
});

test('panic threshold: below it, a priority balances over all its hosts', () => {
  const s = settings({ panicThreshold: 50 });
  const rt = new ClusterRuntime(s, { current: () => undefined }, clock());
  rt.update(s, [group('', 0, ['a', 'b'], { health: 'UNHEALTHY' })]);
  assert.ok(rt.pick());
});

test('ring hash: a key always lands on the same endpoint, and keys spread', () => {
  const s = settings({ lbPolicy: 'RING_HASH' });
  const rt = new ClusterRuntime(s, { current: () => undefined }, clock());
  rt.update(s, [group('', 0, ['a', 'b', 'c'])]);
  const first = rt.pick({ hash: 12345 })!.address;
  for (let i = 0; i < 20; i++) assert.equal(rt.pick({ hash: 12345 })!.address, first);
  let k = 0;
  const spread = counts(rt, 300, () => (k = (k + 0x9e3779b1) >>> 0));
  assert.equal(spread.size, 3);
});

const od = (over: Partial<OutlierSettings> = {}): OutlierSettings => ({
  consecutive5xx: 2,
  enforcing5xx: 100,
  consecutiveGateway: 0,
  enforcingGateway: 0,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 50,
  ...over,
});

function ejectNow(rt: ClusterRuntime, h: UpstreamHost, n = 2): void {
  for (let i = 0; i < n; i++) rt.report(h, 'error-5xx');
}

test('outlier detection: an ejected host stays out past its ejection time until the interval sweep brings it back', () => {
  const c = createFakeClock();
  const s = settings({ outlier: od({ intervalMs: 7_000 }) });
  const rt = new ClusterRuntime(s, { current: () => undefined }, c);
  rt.update(s, [group('', 0, ['a', 'b'])]);
  const [a] = rt.allHosts();
  assert.equal(c.pending(), 0, 'no timer while nothing is ejected');
  rt.report(a!, 'error-5xx');
  assert.equal(rt.isEjected(a!), false);
  c.advance(4_000);
  rt.report(a!, 'error-5xx');
  assert.equal(rt.isEjected(a!), true);
  assert.deepEqual([...counts(rt, 10).keys()], ['b']);
  // Ejected at t=4 s for 30 s; the sweeps run at 11, 18, 25, 32, 39 s: the first one past 34 s returns it.
  c.advance(30_000);
  assert.equal(rt.isEjected(a!), true, 'ejection time over, but no sweep yet');
  assert.deepEqual([...counts(rt, 10).keys()], ['b']);
  c.advance(4_999);
  assert.equal(rt.isEjected(a!), true);
  c.advance(1);
  assert.equal(rt.isEjected(a!), false, 'back at the sweep at 39 s');
  assert.equal(counts(rt, 10).size, 2);
});

test('outlier detection: ejection time grows with times ejected, capped by max_ejection_time, and decays while healthy', () => {
  const c = createFakeClock();
  const s = settings({ outlier: od({ intervalMs: 1_000, baseEjectionMs: 10_000, maxEjectionMs: 25_000 }) });
  const rt = new ClusterRuntime(s, { current: () => undefined }, c);
  rt.update(s, [group('', 0, ['a', 'b', 'c'])]);
  const a = rt.allHosts()[0]!;
  const ejectedFor = (): number => {
    const from = c.now();
    ejectNow(rt, a);
    assert.equal(rt.isEjected(a), true);
    while (rt.isEjected(a)) c.advance(1_000);
    return c.now() - from;
  };
  assert.equal(ejectedFor(), 10_000);
  assert.equal(ejectedFor(), 20_000, 'second ejection: base x 2');
  assert.equal(ejectedFor(), 25_000, 'third: capped by max_ejection_time');
  assert.equal(ejectedFor(), 25_000);
  // Healthy for several intervals: the multiplier comes down one step per interval.
  c.advance(2_000);
  assert.equal(ejectedFor(), 20_000);
  c.advance(10_000);
  assert.equal(ejectedFor(), 10_000, 'fully decayed after a long healthy spell');
  c.advance(10_000);
  assert.equal(c.pending(), 0, 'the sweep stops once there is nothing left to do');
});

test('outlier detection: max_ejection_percent is honoured, but one host may always go', () => {
  const c = createFakeClock();
  const s = settings({ outlier: od({ maxEjectionPercent: 10 }) });
  const rt = new ClusterRuntime(s, { current: () => undefined }, c);
  rt.update(s, [group('', 0, ['a', 'b', 'c', 'd'])]);
  const [a, b] = rt.allHosts();
  ejectNow(rt, a!);
  assert.equal(rt.isEjected(a!), true, '10% of 4 rounds to nothing; one host still goes');
  ejectNow(rt, b!);
  assert.equal(rt.isEjected(b!), false);
  const s50 = settings({ outlier: od({ maxEjectionPercent: 50 }) });
  rt.update(s50, [group('', 0, ['a', 'b', 'c', 'd'])]);
  ejectNow(rt, b!);
  assert.equal(rt.isEjected(b!), true, '2 of 4 = 50%');
  const [, , cc] = rt.allHosts();
  ejectNow(rt, cc!);
  assert.equal(rt.isEjected(cc!), false, '3 of 4 would exceed 50%');
});

test('outlier detection: the sweep timer stops when the cluster is closed, and an endpoint that leaves is forgotten', () => {
  const c = createFakeClock();
  const s = settings({ outlier: od() });
  const rt = new ClusterRuntime(s, { current: () => undefined }, c);
  rt.update(s, [group('', 0, ['a', 'b'])]);
  ejectNow(rt, rt.allHosts()[0]!);
  assert.equal(c.pending(), 1);
  rt.update(s, [group('', 0, ['b'])]);
  assert.equal(c.pending(), 0, 'the ejected endpoint left; nothing to sweep');
  ejectNow(rt, rt.allHosts()[0]!);
  assert.equal(c.pending(), 1);
  rt.close();
  assert.equal(c.pending(), 0);
});

test('endpoint state survives an update that keeps the endpoint', () => {
  const rt = new ClusterRuntime(settings(), { current: () => undefined }, clock());
  rt.update(settings(), [group('', 0, ['a'])]);
  const h = rt.allHosts()[0]!;
  h.active = 3;
  rt.update(settings(), [group('', 0, ['a', 'b'])]);
  assert.equal(rt.allHosts()[0], h);
});

test('least request (power of two choices) avoids the busy endpoint; random is weighted', () => {
  const s = settings({ lbPolicy: 'LEAST_REQUEST' });
  const rt = new ClusterRuntime(s, { current: () => undefined }, clock());
  rt.update(s, [group('', 0, ['busy', 'idle'])]);
  rt.allHosts().find((h) => h.address === 'busy')!.active = 10;
  assert.deepEqual([...counts(rt, 50).keys()], ['idle']);
  const r = settings({ lbPolicy: 'RANDOM' });
  const rr = new ClusterRuntime(r, { current: () => undefined }, clock());
  const g = group('', 0, ['light', 'heavy']);
  g.endpoints[1]!.weight = 3;
  rr.update(r, [g]);
  const heavy = counts(rr, 4000).get('heavy') ?? 0;
  assert.ok(heavy > 2800 && heavy < 3200, `heavy got ${heavy} of 4000`);
});

test('max_connections is counted per cluster: two endpoints share one budget, extra requests queue', async (t) => {
  const accepted = new Map<number, number>();
  const servers: http.Server[] = [];
  for (let i = 0; i < 2; i++) {
    const server = http.createServer((_req, res) => setTimeout(() => res.end('ok'), 30));
    server.on('connection', () => {
      const port = (server.address() as AddressInfo).port;
      accepted.set(port, (accepted.get(port) ?? 0) + 1);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  const s = settings({ maxConnections: 2 });
  const rt = new ClusterRuntime(s, { current: () => undefined }, createFakeClock());
  t.after(async () => {
    rt.close();
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  rt.update(s, [
    {
      locality: '',
      priority: 0,
      weight: 1,
      endpoints: servers.map((server) => ({ address: '127.0.0.1', port: (server.address() as AddressInfo).port, health: 'HEALTHY', weight: 1, transportMatch: {} })),
    },
  ]);
  const get = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const h = rt.pick()!;
      let body = '';
      h.http1().request(
        { head: buildRequestHead('GET', '/', { host: 'h' }, false), noResponseBody: false },
        { head() {}, data: (c) => ((body += c.toString()), true), end: () => resolve(body), error: reject },
      );
    });
  // Per endpoint, each pool could open 2 connections (4 in all); per cluster, 2 in all.
  const bodies = await Promise.all([1, 2, 3, 4, 5, 6].map(() => get()));
  assert.deepEqual(bodies, ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
  assert.equal([...accepted.values()].reduce((a, b) => a + b, 0), 2, `connections accepted per server: ${JSON.stringify([...accepted])}`);
  assert.equal(rt.connectionCount(), 2, 'idle pooled connections still count');
  assert.equal(rt.admitConnection(), false, 'a third connection would exceed max_connections');
  assert.ok(rt.connections.overflow >= 1);
});
