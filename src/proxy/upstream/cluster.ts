/**
 * One cluster at run time: its endpoints (kept across config updates so pools and outlier state survive),
 * Envoy's priority and locality selection, the load balancer, circuit-breaker counters and outlier
 * detection.
 */
import type { Clock } from '../../shared/clock.js';
import { hash32 } from './hash.js';
import { UpstreamHost } from './host.js';
import type { ConnectionCounters, SecureContextSource } from './host.js';
import type { ClusterSettings, LocalityGroup, UpstreamTls } from './types.js';

/** Envoy's default overprovisioning factor: a priority at ≥ 1/1.4 healthy still takes all its load. */
const OVERPROVISION = 1.4;
/** At or above this, max_connections is "unlimited" (Istio sends 2^32-1) and is not accounted per pick. */
const UNLIMITED_CONNECTIONS = 1_000_000;

interface LocalityState {
  locality: string;
  weight: number;
  hosts: UpstreamHost[];
  all: UpstreamHost[];
}

interface PriorityState {
  /** Cumulative load bound (0..100] for picking this priority. */
  bound: number;
  panic: boolean;
  localities: LocalityState[];
  totalWeight: number;
  /** Hosts to balance over when the locality is not used (ring hash) — healthy, or all in panic. */
  chosen: UpstreamHost[];
  ring?: { points: Uint32Array; hosts: UpstreamHost[] };
}

/** What happened on one attempt, for outlier detection. */
export type HostOutcome = 'success' | 'error-5xx' | 'error-gateway' | 'local-failure';

export interface PickOptions {
  hash?: number | undefined;
  exclude?: ReadonlySet<UpstreamHost> | undefined;
  attempts?: number;
}

export class ClusterRuntime {
  settings: ClusterSettings;
  active = 0;
  retriesActive = 0;
  /** Shared by every endpoint, removed ones included: their open connections still hold breaker slots. */
  readonly connections: ConnectionCounters = { active: 0, overflow: 0 };
  private hosts = new Map<string, UpstreamHost>();
  private groups: LocalityGroup[] = [];
  private priorities: PriorityState[] = [];
  private dirty = true;
  private rr = 0;
  /** Hosts out of rotation by outlier detection; only the interval sweep brings them back, as in Envoy. */
  private readonly ejected = new Set<UpstreamHost>();
  /** When each host last came back, to decay its ejection multiplier after a healthy interval. */
  private readonly unejectedAt = new Map<UpstreamHost, number>();
  private sweepTimer: { cancel(): void } | undefined;
  private sweepEvery = 0;
  private closed = false;
  /** ORIGINAL_DST: hosts made on demand for wherever the app was going. */
  private readonly dynamic = new Map<string, UpstreamHost>();

  constructor(
    settings: ClusterSettings,
    private readonly contexts: SecureContextSource,
    private readonly clock: Clock,
  ) {
    this.settings = settings;
  }

  private limits() {
    const s = this.settings;
    return { connectTimeoutMs: s.connectTimeoutMs, maxRequestsPerConnection: s.maxRequestsPerConnection, idleTimeoutMs: s.idleTimeoutMs, maxConnections: s.maxConnections };
  }

  tlsFor(match: Record<string, unknown>): UpstreamTls | null {
    for (const m of this.settings.tlsMatches) {
      let ok = true;
      for (const [k, v] of Object.entries(m.match)) if (match[k] !== v) ok = false;
      if (ok) return m.tls;
    }
    return this.settings.defaultTls;
  }

  /** Applies new settings and endpoints; hosts whose address and TLS are unchanged keep pools and state. */
  update(settings: ClusterSettings, groups: LocalityGroup[]): void {
    this.settings = settings;
    this.groups = groups;
    const next = new Map<string, UpstreamHost>();
    for (const g of groups) {
      for (const spec of g.endpoints) {
        const key = `${spec.address}:${spec.port}`;
        const tls = this.tlsFor(spec.transportMatch);
        const old = this.hosts.get(key) ?? next.get(key);
        if (old && JSON.stringify(old.tls) === JSON.stringify(tls)) {
          // Same endpoint: keep its pool and outlier state, take the new health and metadata.
          Object.assign(old.spec, spec);
          old.setLimits(this.limits());
          next.set(key, old);
        } else {
          next.set(key, new UpstreamHost({ ...spec }, tls, this.contexts, this.limits(), this.connections));
        }
      }
    }
    for (const [key, h] of this.hosts) {
      if (next.get(key) === h) continue;
      h.retire();
      this.ejected.delete(h);
      this.unejectedAt.delete(h);
    }
    for (const h of this.dynamic.values()) h.setLimits(this.limits());
    this.hosts = next;
    this.dirty = true;
    if (!settings.outlier) {
      this.ejected.clear();
      this.unejectedAt.clear();
    }
    this.armSweep();
  }

  allHosts(): UpstreamHost[] {
    return [...this.hosts.values(), ...this.dynamic.values()];
  }

  groupOf(host: UpstreamHost): { locality: string; priority: number } {
    for (const g of this.groups) for (const e of g.endpoints) if (e.address === host.address && e.port === host.port) return { locality: g.locality, priority: g.priority };
    return { locality: '', priority: 0 };
  }

  /** True from an ejection until the interval sweep that finds its ejection time over. */
  isEjected(h: UpstreamHost): boolean {
    return this.ejected.has(h);
  }

  /** Connections open to this cluster's endpoints: what Envoy's `max_connections` counts. */
  connectionCount(): number {
    return this.connections.active;
  }

  /**
   * Takes the breaker's verdict for one new tcp_proxy connection: false (and one more overflow counted)
   * when it would exceed the cluster's `max_connections`, which tcp_proxy answers with `UO`.
   */
  admitConnection(): boolean {
    const max = this.settings.maxConnections;
    if (max >= UNLIMITED_CONNECTIONS || this.connections.active < max) return true;
    this.connections.overflow++;
    return false;
  }

  /** ORIGINAL_DST: a plaintext host for the original destination, pooled while the cluster lives. */
  originalDestination(address: string, port: number): UpstreamHost {
    const key = `${address}:${port}`;
    let h = this.dynamic.get(key);
    if (!h) {
      if (this.dynamic.size >= 1024) {
        const [firstKey, first] = this.dynamic.entries().next().value as [string, UpstreamHost];
        first.retire();
        this.dynamic.delete(firstKey);
      }
      h = new UpstreamHost({ address, port, health: 'HEALTHY', weight: 1, transportMatch: {} }, null, this.contexts, this.limits(), this.connections);
      this.dynamic.set(key, h);
    }
    return h;
  }

  private rebuild(): void {
    const byPriority = new Map<number, LocalityGroup[]>();
    for (const g of this.groups) {
      const list = byPriority.get(g.priority) ?? [];
      list.push(g);
      byPriority.set(g.priority, list);
    }
    const priorities: PriorityState[] = [];
    const healthPct: number[] = [];
    for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
      const localities: LocalityState[] = [];
      let healthy = 0;
      let total = 0;
      for (const g of byPriority.get(p)!) {
        const all: UpstreamHost[] = [];
        const ok: UpstreamHost[] = [];
        for (const e of g.endpoints) {
          const h = this.hosts.get(`${e.address}:${e.port}`);
          if (!h || all.includes(h)) continue;
          all.push(h);
          if (h.edsHealthy() && !this.ejected.has(h)) ok.push(h);
        }
        healthy += ok.length;
        total += all.length;
        localities.push({ locality: g.locality, weight: g.weight, hosts: ok, all });
      }
      if (total === 0) continue;
      priorities.push({ bound: 0, panic: false, localities, totalWeight: 0, chosen: [] });
      healthPct.push(Math.min(100, Math.floor((OVERPROVISION * 100 * healthy) / total)));
      const pr = priorities[priorities.length - 1]!;
      pr.panic = this.settings.panicThreshold > 0 && (healthy * 100) / total < this.settings.panicThreshold;
    }
    // Priority load: lower priorities take what their health allows, the rest spills over; normalised
    // when the whole cluster is degraded.
    const totalHealth = Math.min(100, healthPct.reduce((a, b) => a + b, 0));
    let remaining = 100;
    let cumulative = 0;
    priorities.forEach((pr, i) => {
      let load: number;
      if (totalHealth === 0) load = i === 0 && pr.panic ? 100 : 0;
      else if (totalHealth < 100) load = (healthPct[i]! * 100) / totalHealth;
      else load = Math.min(remaining, healthPct[i]!);
      remaining -= load;
      cumulative += load;
      pr.bound = cumulative;
      let totalWeight = 0;
      for (const l of pr.localities) {
        const set = pr.panic ? l.all : l.hosts;
        const health = l.all.length ? Math.min(1, (OVERPROVISION * l.hosts.length) / l.all.length) : 0;
        const eff = pr.panic ? l.weight : l.weight * health;
        totalWeight += set.length ? eff : 0;
        pr.chosen.push(...set);
      }
      pr.totalWeight = totalWeight;
    });
    this.priorities = priorities;
    this.dirty = false;
  }

  /** Picks an endpoint, or undefined when no endpoint may take traffic (`UH`). */
  pick(opts: PickOptions = {}): UpstreamHost | undefined {
    if (this.dirty) this.rebuild();
    const attempts = Math.max(1, opts.attempts ?? 1);
    let h: UpstreamHost | undefined;
    for (let i = 0; i < attempts; i++) {
      h = this.pickOnce(opts.hash === undefined ? undefined : opts.hash + i * 0x9e3779b1);
      if (!h || !opts.exclude?.has(h)) break;
    }
    if (h) this.shareConnections(h);
    return h;
  }

  /**
   * Envoy counts `max_connections` per cluster, not per endpoint: an endpoint's pool may only grow into
   * what the other endpoints leave. One connection per endpoint is always allowed (Envoy does the same),
   * so requests queued in a pool always have a connection that will free up. The pool queues requests
   * beyond its share; the router's `max_connections + max_pending_requests` check turns the rest into `UO`.
   */
  private shareConnections(host: UpstreamHost): void {
    const max = this.settings.maxConnections;
    if (max >= UNLIMITED_CONNECTIONS) return;
    const others = this.connectionCount() - host.connections;
    host.setLimits({ ...this.limits(), maxConnections: Math.max(1, max - others) });
  }

  private pickOnce(hash: number | undefined): UpstreamHost | undefined {
    const ps = this.priorities;
    if (ps.length === 0) return undefined;
    let pr = ps[0]!;
    if (ps.length > 1 || pr.bound < 100) {
      const r = Math.random() * 100;
      const found = ps.find((p) => r < p.bound);
      if (!found) return undefined;
      pr = found;
    }
    if (pr.chosen.length === 0) return undefined;
    const policy = this.settings.lbPolicy;
    if (policy === 'RING_HASH') return this.ringPick(pr, hash);
    let hosts = pr.chosen;
    if (pr.localities.length > 1 && pr.totalWeight > 0) {
      let r = Math.random() * pr.totalWeight;
      for (const l of pr.localities) {
        const set = pr.panic ? l.all : l.hosts;
        if (!set.length) continue;
        const health = l.all.length ? Math.min(1, (OVERPROVISION * l.hosts.length) / l.all.length) : 0;
        r -= pr.panic ? l.weight : l.weight * health;
        hosts = set;
        if (r < 0) break;
      }
    }
    return this.balance(hosts, policy);
  }

  private balance(hosts: UpstreamHost[], policy: ClusterSettings['lbPolicy']): UpstreamHost {
    const n = hosts.length;
    if (n === 1) return hosts[0]!;
    if (policy === 'LEAST_REQUEST') {
      const a = hosts[(Math.random() * n) | 0]!;
      let b = hosts[(Math.random() * n) | 0]!;
      if (b === a) b = hosts[(hosts.indexOf(a) + 1) % n]!;
      return b.active < a.active ? b : a;
    }
    let uniform = true;
    let total = 0;
    for (const h of hosts) {
      total += h.spec.weight;
      if (h.spec.weight !== hosts[0]!.spec.weight) uniform = false;
    }
    if (policy === 'RANDOM') {
      if (uniform) return hosts[(Math.random() * n) | 0]!;
      let r = Math.random() * total;
      for (const h of hosts) if ((r -= h.spec.weight) < 0) return h;
      return hosts[n - 1]!;
    }
    if (uniform) return hosts[this.rr++ % n]!;
    // Smooth weighted round robin: deterministic, spreads a heavy host's turns out.
    let best = hosts[0]!;
    for (const h of hosts) {
      h.currentWeight += h.spec.weight;
      if (h.currentWeight > best.currentWeight) best = h;
    }
    best.currentWeight -= total;
    return best;
  }

  private ringPick(pr: PriorityState, hash: number | undefined): UpstreamHost {
    if (hash === undefined) return pr.chosen[(Math.random() * pr.chosen.length) | 0]!;
    if (!pr.ring) {
      const hosts = pr.chosen;
      const total = hosts.reduce((s, h) => s + h.spec.weight, 0);
      const size = Math.max(this.settings.ringSize, hosts.length);
      const entries: Array<[number, UpstreamHost]> = [];
      for (const h of hosts) {
        const replicas = Math.max(1, Math.round((size * h.spec.weight) / total));
        for (let i = 0; i < replicas; i++) entries.push([hash32(`${h.key}_${i}`), h]);
      }
      entries.sort((a, b) => a[0] - b[0]);
      pr.ring = { points: Uint32Array.from(entries.map((e) => e[0])), hosts: entries.map((e) => e[1]) };
    }
    const { points, hosts } = pr.ring;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return hosts[lo === points.length ? 0 : lo]!;
  }

  /** Feeds outlier detection; ejects the host when a consecutive-error threshold is reached. */
  report(host: UpstreamHost, outcome: HostOutcome): void {
    if (outcome === 'success') {
      host.consecutive5xx = 0;
      host.consecutiveGateway = 0;
      return;
    }
    host.consecutive5xx++;
    if (outcome === 'error-5xx') host.consecutiveGateway = 0;
    else host.consecutiveGateway++;
    const od = this.settings.outlier;
    if (!od || this.hosts.get(host.key) !== host || this.ejected.has(host)) return;
    const by5xx = od.consecutive5xx > 0 && host.consecutive5xx >= od.consecutive5xx && Math.random() * 100 < od.enforcing5xx;
    const byGateway = od.consecutiveGateway > 0 && host.consecutiveGateway >= od.consecutiveGateway && Math.random() * 100 < od.enforcingGateway;
    if (!by5xx && !byGateway) return;
    const now = this.clock.now();
    const ejected = this.ejected.size;
    // Envoy always lets one host go even when max_ejection_percent rounds down to nothing.
    if (ejected > 0 && ((ejected + 1) * 100) / this.hosts.size > od.maxEjectionPercent) return;
    // The multiplier only grows while base × n is below the cap, so a long-failing host does not need
    // as many healthy intervals to decay as it had ejections.
    if (od.baseEjectionMs * host.timesEjected < Math.max(od.baseEjectionMs, od.maxEjectionMs)) host.timesEjected++;
    host.ejectedUntil = now + Math.min(od.baseEjectionMs * host.timesEjected, Math.max(od.baseEjectionMs, od.maxEjectionMs));
    host.consecutive5xx = 0;
    host.consecutiveGateway = 0;
    this.ejected.add(host);
    this.unejectedAt.delete(host);
    this.dirty = true;
    this.armSweep();
  }

  /**
   * Envoy's interval timer: it brings back hosts whose ejection time is over, and lowers the ejection
   * multiplier of a host that stayed in rotation for a whole interval. It runs only while there is
   * something to do, so an idle cluster holds no timer.
   */
  private armSweep(): void {
    const od = this.settings.outlier;
    const wanted = !this.closed && od !== undefined && od.intervalMs > 0 && (this.ejected.size > 0 || this.unejectedAt.size > 0);
    if (!wanted) {
      this.sweepTimer?.cancel();
      this.sweepTimer = undefined;
      return;
    }
    if (this.sweepTimer && this.sweepEvery === od.intervalMs) return;
    this.sweepTimer?.cancel();
    this.sweepEvery = od.intervalMs;
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweep();
      this.armSweep();
    }, od.intervalMs);
  }

  private sweep(): void {
    const od = this.settings.outlier;
    if (!od) return;
    const now = this.clock.now();
    for (const [h, since] of this.unejectedAt) {
      if (now - since < od.intervalMs) continue;
      if (h.timesEjected > 0) h.timesEjected--;
      if (h.timesEjected === 0) this.unejectedAt.delete(h);
      else this.unejectedAt.set(h, now);
    }
    for (const h of this.ejected) {
      if (h.ejectedUntil > now) continue;
      this.ejected.delete(h);
      this.unejectedAt.set(h, now);
      this.dirty = true;
    }
  }

  /** Retires every endpoint and stops the outlier timer; the runtime is not used afterwards. */
  close(): void {
    this.closed = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    for (const h of this.hosts.values()) h.retire();
    for (const h of this.dynamic.values()) h.retire();
  }

  dropIdle(): void {
    for (const h of this.allHosts()) h.dropIdle();
  }
}
