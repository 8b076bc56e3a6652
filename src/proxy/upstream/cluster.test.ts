import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../shared/clock.js';
import { ClusterRuntime } from './cluster.js';
import type { ClusterSettings, LocalityGroup } from './types.js';

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

test('outlier detection: consecutive 5xx eject for base x times, capped by max_ejection_percent, then return', () => {
  const c = clock();
  const od = { consecutive5xx: 2, enforcing5xx: 100, consecutiveGateway: 0, enforcingGateway: 0, intervalMs: 1000, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 };
  const s = settings({ outlier: od });
  const rt = new ClusterRuntime(s, { current: () => undefined }, c);
  rt.update(s, [group('', 0, ['a', 'b'])]);
  const [a, b] = rt.allHosts();
  rt.report(a!, 'error-5xx');
  assert.equal(rt.isEjected(a!), false);
  rt.report(a!, 'error-5xx');
  assert.equal(rt.isEjected(a!), true);
  assert.deepEqual([...counts(rt, 10).keys()], ['b']);
  rt.report(b!, 'local-failure');
  rt.report(b!, 'local-failure');
  assert.equal(rt.isEjected(b!), false, 'a second ejection would exceed 50%');
  c.t = 30_000;
  assert.equal(rt.isEjected(a!), false);
  assert.equal(counts(rt, 10).size, 2, 'back in rotation after the ejection time');
  rt.report(a!, 'error-5xx');
  rt.report(a!, 'error-5xx');
  assert.equal(a!.ejectedUntil, 30_000 + 60_000, 'second ejection lasts twice as long');
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
