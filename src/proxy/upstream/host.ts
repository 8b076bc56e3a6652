/**
 * One upstream endpoint of one cluster: how to connect to it (plain TCP or mTLS with the workload's current
 * credentials, SNI, ALPN and a SPIFFE ID check), a keep-alive HTTP/1.1 pool or multiplexed HTTP/2 sessions, and the counters outlier
 * detection and the least-request balancer read.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Http1Pool } from './http1.js';
import { Http2Pool } from './http2.js';
import type { EndpointSpec, UpstreamTls } from './types.js';
import { CONNECTED, PEER_ID, TRANSPORT_FAILURE } from './socket.js';
import type { UpstreamSocket } from './socket.js';

/** Where an upstream connection gets its certificate, key and roots; undefined until credentials exist. */
export interface SecureContextSource {
  current(): tls.SecureContext | undefined;
}

export { CONNECTED, TRANSPORT_FAILURE, PEER_ID } from './socket.js';
export type { UpstreamSocket } from './socket.js';

/**
 * Per-cluster connection counters every endpoint of the cluster shares: Envoy's `upstream_cx_active`
 * (what `max_connections` is checked against) and `upstream_cx_overflow`.
 */
export interface ConnectionCounters {
  active: number;
  overflow: number;
}

export interface HostLimits {
  connectTimeoutMs: number;
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  maxConnections: number;
}

/** The URI SANs of a peer certificate (`URI:spiffe://…` entries of subjectaltname). */
export function uriSans(cert: tls.PeerCertificate | undefined): string[] {
  const alt = cert?.subjectaltname;
  if (!alt) return [];
  const out: string[] = [];
  for (const part of alt.split(', ')) if (part.startsWith('URI:')) out.push(part.slice(4));
  return out;
}

export function sanMatches(ids: readonly string[], sans: UpstreamTls['sans']): boolean {
  if (sans.length === 0) return true;
  for (const id of ids) for (const m of sans) if ((m.exact !== undefined && id === m.exact) || (m.prefix !== undefined && id.startsWith(m.prefix))) return true;
  return false;
}

export class UpstreamHost {
  readonly key: string;
  active = 0;
  connections = 0;
  consecutive5xx = 0;
  consecutiveGateway = 0;
  ejectedUntil = 0;
  timesEjected = 0;
  /** Smooth weighted round robin state. */
  currentWeight = 0;
  private pool: Http1Pool | undefined;
  private h2pool: Http2Pool | undefined;

  constructor(
    readonly spec: EndpointSpec,
    readonly tls: UpstreamTls | null,
    private readonly contexts: SecureContextSource,
    private limits: HostLimits,
    private readonly counters: ConnectionCounters = { active: 0, overflow: 0 },
  ) {
    this.key = `${spec.address}:${spec.port}`;
  }

  get address(): string {
    return this.spec.address;
  }
  get port(): number {
    return this.spec.port;
  }

  setLimits(limits: HostLimits): void {
    this.limits = limits;
    this.pool?.setLimits(limits);
    this.h2pool?.setLimits(limits);
  }

  /** True when EDS says the endpoint may take traffic (ejection is the cluster's business). */
  edsHealthy(): boolean {
    const h = this.spec.health;
    return h === 'UNKNOWN' || h === 'HEALTHY' || h === 'DEGRADED';
  }

  /**
   * Opens a connection: TCP, or TLS verified against the roots and the SPIFFE IDs this endpoint may present.
   * `halfOpen` is for tcp_proxy (FIN passes through); HTTP pools must see a peer's FIN as the end.
   * `idleTimeoutMs` replaces the connect timeout once connected (0: none).
   */
  connect(halfOpen = false, idleTimeoutMs = 0): UpstreamSocket {
    const { connectTimeoutMs } = this.limits;
    let sock: UpstreamSocket;
    const t = this.tls;
    if (t) {
      const ctx = this.contexts.current();
      const servername = t.sni && net.isIP(t.sni) === 0 ? t.sni : undefined;
      // Nagle off on the TCP socket itself: set on the TLS socket it may never reach the TCP handle, and every
      // small request then waits for the peer's delayed ACK.
      const tsock: UpstreamSocket = tls.connect({
        socket: net.connect({ host: this.spec.address, port: this.spec.port, noDelay: true }),
        ...(ctx ? { secureContext: ctx } : {}),
        ...(servername ? { servername } : {}),
        ALPNProtocols: t.alpn as string[],
        rejectUnauthorized: true,
        checkServerIdentity: (_host, cert) => {
          const ids = uriSans(cert);
          if (!sanMatches(ids, t.sans)) {
            const reason = `peer SPIFFE ID ${ids.join(',') || '(none)'} does not match ${t.sans.map((s) => s.exact ?? `${s.prefix}*`).join(',')}`;
            tsock[TRANSPORT_FAILURE] = reason;
            return new Error(reason);
          }
          tsock[PEER_ID] = ids[0];
          return undefined;
        },
      });
      sock = tsock;
      if (!ctx) process.nextTick(() => sock.destroy(Object.assign(new Error('no workload certificate yet'), { code: 'ENOCERT' })));
      sock.once('secureConnect', () => {
        sock[CONNECTED] = true;
        sock.setTimeout(idleTimeoutMs);
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        if (!sock[CONNECTED] && !sock[TRANSPORT_FAILURE] && (err.code?.startsWith('ERR_SSL') || err.code?.includes('CERT') || /SSL|TLS|certificate/i.test(err.message))) {
          sock[TRANSPORT_FAILURE] = `TLS error: ${err.message}`;
        }
      });
    } else {
      sock = net.connect({ host: this.spec.address, port: this.spec.port, allowHalfOpen: halfOpen, noDelay: true });
      sock.once('connect', () => {
        sock[CONNECTED] = true;
        sock.setTimeout(idleTimeoutMs);
      });
    }
    sock.setTimeout(connectTimeoutMs, () => {
      if (!sock[CONNECTED]) sock.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    });
    this.connections++;
    this.counters.active++;
    // 'close' fires once per socket whatever ends it, so the slot is given back exactly once.
    sock.once('close', () => {
      this.connections--;
      this.counters.active--;
    });
    return sock;
  }

  /** The keep-alive HTTP/1.1 pool for this endpoint, created on first use. */
  http1(): Http1Pool {
    this.pool ??= new Http1Pool((idleTimeoutMs) => this.connect(false, idleTimeoutMs), this.limits, this.counters);
    return this.pool;
  }

  /** The multiplexed HTTP/2 sessions to this endpoint, created on first use. */
  http2(): Http2Pool {
    this.h2pool ??= new Http2Pool(() => this.connect(), this.limits);
    return this.h2pool;
  }

  /** No new requests will come here: idle connections close now, busy ones when their request ends. */
  retire(): void {
    this.pool?.retire();
    this.h2pool?.retire();
  }

  /** Drops pooled idle connections (new ones pick up rotated credentials); busy ones finish first. */
  dropIdle(): void {
    this.pool?.dropIdle();
    this.h2pool?.dropIdle();
  }
}
