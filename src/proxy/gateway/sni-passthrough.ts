/**
 * The east-west gateway's data path (Istio's AUTO_PASSTHROUGH): read the SNI from the ClientHello without
 * terminating TLS, map `outbound_.PORT_.SUBSET_.FQDN` to local endpoints through an injected resolver, and
 * splice the client's bytes to one of them. The TLS session stays end to end between the two sidecars, so
 * the backend sees the original client's certificate. No mesh policy lives here: what is routable is
 * whatever `resolve` says.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { ValidationError } from '../../shared/errors.js';
import type { Problem } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { silentLogger } from '../../shared/log.js';
import { peekClientHello } from '../tls/index.js';
import type { AccessLogRecord } from '../telemetry/index.js';
import { completeAccessLogRecord, formatAddress, formatResponseFlags } from '../telemetry/index.js';
import { parseOutboundSni } from '../../xds/index.js';
import type { OutboundSni } from '../../xds/index.js';
import { pickOrder, spliceSockets } from './splice.js';
import type { Endpoint } from './splice.js';

export interface SniPassthroughGatewayOptions {
  /** Listening port; default 15443. 0 picks a free one. */
  port?: number;
  /** Listening address; default 0.0.0.0. */
  host?: string;
  /**
   * Local endpoints for a parsed SNI. undefined: no such host here (refused, `NR`); empty: known but no
   * healthy endpoint (`UH`). Called once per connection, synchronously, so it must be a cheap lookup.
   */
  resolve(target: OutboundSni): readonly Endpoint[] | undefined;
  /** One record per downstream connection, after it closed (or was refused). */
  onLog?(record: AccessLogRecord): void;
  logger?: Logger;
  clock?: Clock;
  /** Time allowed for the whole ClientHello to arrive; default 10 s. */
  peekTimeoutMs?: number;
  /** Largest ClientHello accepted; default 64 KiB. */
  maxClientHelloBytes?: number;
  /** Per-attempt upstream connect timeout; default 10 s (Istio's cluster default). */
  connectTimeoutMs?: number;
  /** Endpoints tried per connection before giving up with `UF`; default 3. */
  maxConnectAttempts?: number;
  /** A connection with no bytes in either direction for this long is closed; default 1 h (Envoy's tcp_proxy). */
  idleTimeoutMs?: number;
  /** Downstream connections open at once; Node closes further ones on accept. Default unlimited. */
  maxConnections?: number;
  /** Upstream dialer, injectable for tests; default net.connect with half-close allowed. */
  connect?(endpoint: Endpoint): net.Socket;
  /** How long close() lets live connections finish before resetting them; default 5 s (Istio's drain duration). */
  drainTimeoutMs?: number;
  /**
   * TCP telemetry while bytes flow: `opened` once, `bytes` deltas every `tcpReportIntervalMs` while the
   * connection is open and once at its end, then `closed`. A refused connection reports all three at once.
   */
  onTcp?(event: GatewayTcpEvent): void;
  /** Period of `bytes` reports for open connections; default 5 s (Istio's tcp_reporting_duration). */
  tcpReportIntervalMs?: number;
}

/** One TCP telemetry event; `sent`/`received` are downstream bytes since the previous event of this connection. */
export interface GatewayTcpEvent {
  phase: 'opened' | 'bytes' | 'closed';
  sni: string | undefined;
  responseFlags: string;
  sent: number;
  received: number;
}

/**
 * A running gateway. Listening starts with listen(). close() drains: it stops accepting at once, lets live
 * connections finish for up to `drainTimeoutMs`, then resets the rest; it resolves when all are gone.
 */
export interface SniPassthroughGateway {
  listen(): Promise<AddressInfo>;
  /** The bound address once listening. */
  address(): AddressInfo | undefined;
  /** Downstream connections currently open. */
  connectionCount(): number;
  close(): Promise<void>;
}

export const DEFAULT_GATEWAY_PORT = 15443;

function validate(options: SniPassthroughGatewayOptions): void {
  const problems: Problem[] = [];
  const positive = (name: keyof SniPassthroughGatewayOptions): void => {
    const v = options[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
      problems.push({ path: name, message: `must be a positive number (got ${String(v)})` });
    }
  };
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)) {
    problems.push({ path: 'port', message: `must be an integer 0..65535 (got ${String(options.port)})` });
  }
  if (typeof options.resolve !== 'function') problems.push({ path: 'resolve', message: 'must be a function' });
  for (const name of ['peekTimeoutMs', 'maxClientHelloBytes', 'connectTimeoutMs', 'maxConnectAttempts', 'idleTimeoutMs', 'maxConnections', 'tcpReportIntervalMs'] as const) positive(name);
  const drain = options.drainTimeoutMs;
  if (drain !== undefined && (typeof drain !== 'number' || !Number.isFinite(drain) || drain < 0)) {
    problems.push({ path: 'drainTimeoutMs', message: `must be a number >= 0 (got ${String(drain)})` });
  }
  if (problems.length > 0) throw new ValidationError(problems.map((p) => ({ resource: 'SniPassthroughGateway', ...p })));
}

/** Closes with a TCP RST where Node can (`resetAndDestroy`), as Envoy resets connections left after a drain. */
function reset(s: net.Socket): void {
  if (s.destroyed) return;
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else s.destroy();
}

export function createSniPassthroughGateway(options: SniPassthroughGatewayOptions): SniPassthroughGateway {
  validate(options);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const peekTimeoutMs = options.peekTimeoutMs ?? 10_000;
  const maxBytes = options.maxClientHelloBytes ?? 64 * 1024;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const maxAttempts = options.maxConnectAttempts ?? 3;
  const idleTimeoutMs = options.idleTimeoutMs ?? 3_600_000;
  const dial = options.connect ?? ((ep: Endpoint) => net.connect({ host: ep.address, port: ep.port, allowHalfOpen: true }));
  const drainTimeoutMs = options.drainTimeoutMs ?? 5_000;
  const reportEveryMs = options.tcpReportIntervalMs ?? 5_000;
  const cursors = new Map<string, number>();
  const live = new Set<net.Socket>();
  /** Upstream sockets of live connections, reset with them when the drain time runs out. */
  const liveUp = new Set<net.Socket>();
  let onDrained: (() => void) | undefined;
  /** Connection handlers still running: a drain also waits for their access log and telemetry. */
  let handling = 0;
  const checkDrained = (): void => {
    if (live.size === 0 && handling === 0) onDrained?.();
  };
  let closing: Promise<void> | undefined;

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    live.add(down);
    handling++;
    down.once('close', () => {
      live.delete(down);
      checkDrained();
    });
    void handle(down)
      .catch((err: unknown) => {
        logger.error('gateway connection handler failed', { error: String(err) });
        down.destroy();
      })
      .finally(() => {
        handling--;
        checkDrained();
      });
  });

  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;

  async function handle(down: net.Socket): Promise<void> {
    const startedAt = clock.now();
    down.on('error', (err) => logger.debug('downstream error', { error: err.message }));
    const base: Partial<AccessLogRecord> = {
      start_time: new Date(startedAt).toISOString(),
      downstream_remote_address: formatAddress(down.remoteAddress, down.remotePort),
      downstream_local_address: formatAddress(down.localAddress, down.localPort),
    };
    const emit = (fields: Partial<AccessLogRecord>): void => {
      const record = completeAccessLogRecord({
        ...base,
        bytes_received: down.bytesRead,
        bytes_sent: down.bytesWritten,
        duration: Math.max(0, clock.now() - startedAt),
        ...fields,
      } as AccessLogRecord);
      options.onLog?.(record);
    };
    // Telemetry deltas: what the downstream socket counted since the last report.
    let reportedSent = 0;
    let reportedReceived = 0;
    const tcp = (phase: GatewayTcpEvent['phase'], sni: string | undefined, responseFlags: string): void => {
      if (!options.onTcp) return;
      const sent = down.bytesWritten - reportedSent;
      const received = down.bytesRead - reportedReceived;
      reportedSent += sent;
      reportedReceived += received;
      options.onTcp({ phase, sni, responseFlags, sent, received });
    };
    const refuse = (flags: string, why: string, fields: Partial<AccessLogRecord> = {}): void => {
      logger.info('gateway refused connection', { reason: why, remote: base.downstream_remote_address, sni: fields.requested_server_name ?? null });
      down.destroy();
      const sni = fields.requested_server_name ?? undefined;
      tcp('opened', sni, flags);
      tcp('bytes', sni, flags);
      tcp('closed', sni, flags);
      emit({ response_flags: flags, ...fields });
    };

    const peek = await peekClientHello(down, { timeoutMs: peekTimeoutMs, maxBytes, clock });
    if (!peek.ok) return refuse('NR', `${peek.error}: ${peek.reason}`);
    if (peek.sni === undefined) return refuse('NR', 'ClientHello has no SNI');
    const sniFields = { requested_server_name: peek.sni };
    const target = parseOutboundSni(peek.sni);
    if (target === undefined) return refuse('NR', 'SNI is not of the form outbound_.PORT_.SUBSET_.FQDN', sniFields);
    const endpoints = options.resolve(target);
    if (endpoints === undefined) return refuse('NR', 'no local service for SNI', sniFields);
    const clusterFields = { ...sniFields, upstream_cluster: target.clusterName };
    if (endpoints.length === 0) return refuse('UH', 'no healthy endpoint', clusterFields);

    const cursor = cursors.get(target.clusterName) ?? 0;
    if (cursors.size > 10_000) cursors.clear(); // bounded: the cursor only spreads load, losing it is harmless
    cursors.set(target.clusterName, cursor + 1);
    const order = pickOrder(endpoints, cursor, maxAttempts);
    let failure = '';
    for (const ep of order) {
      if (down.destroyed) return emit({ ...clusterFields, response_flags: 'DC', upstream_transport_failure_reason: failure || null });
      const up = await connectWithTimeout(ep);
      if (!('socket' in up)) {
        failure = up.error;
        logger.debug('gateway upstream connect failed', { endpoint: `${ep.address}:${ep.port}`, error: up.error });
        continue;
      }
      const upstream = up.socket;
      const upstreamFields = {
        ...clusterFields,
        upstream_host: formatAddress(ep.address, ep.port),
        upstream_local_address: formatAddress(upstream.localAddress, upstream.localPort),
      };
      if (down.destroyed) {
        upstream.destroy();
        return emit({ ...upstreamFields, response_flags: 'DC' });
      }
      const flags = formatResponseFlags([]);
      tcp('opened', peek.sni, flags);
      let report: { cancel(): void } | undefined;
      const schedule = (): void => {
        report = clock.setTimeout(() => {
          tcp('bytes', peek.sni, flags);
          schedule();
        }, reportEveryMs);
      };
      if (options.onTcp) schedule();
      liveUp.add(upstream);
      const outcome = await spliceSockets(down, upstream, peek.buffered, { idleTimeoutMs, clock });
      liveUp.delete(upstream);
      report?.cancel();
      tcp('bytes', peek.sni, flags);
      tcp('closed', peek.sni, flags);
      if (outcome.idleTimeout) logger.debug('gateway connection idle timeout', { sni: peek.sni });
      // tcp_proxy sets no flag for resets after the upstream connected; the reason still goes to the log.
      emit({ ...upstreamFields, response_flags: flags });
      if (outcome.upstreamError !== undefined || outcome.downstreamError !== undefined) {
        logger.debug('gateway connection reset', { sni: peek.sni, upstream: outcome.upstreamError, downstream: outcome.downstreamError });
      }
      return;
    }
    refuse('UF', 'every upstream connect attempt failed', { ...clusterFields, upstream_transport_failure_reason: failure });
  }

  function connectWithTimeout(ep: Endpoint): Promise<{ socket: net.Socket } | { error: string }> {
    return new Promise((resolve) => {
      const socket = dial(ep);
      const done = (result: { socket: net.Socket } | { error: string }): void => {
        timer.cancel();
        socket.off('connect', onConnect);
        socket.off('error', onError);
        resolve(result);
      };
      const onConnect = (): void => done({ socket });
      const onError = (err: Error): void => {
        socket.destroy();
        done({ error: err.message });
      };
      const timer = clock.setTimeout(() => {
        socket.destroy();
        done({ error: `connect timeout after ${connectTimeoutMs} ms` });
      }, connectTimeoutMs);
      socket.on('error', onError);
      socket.once('connect', onConnect);
    });
  }

  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? DEFAULT_GATEWAY_PORT, options.host ?? '0.0.0.0', () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    address: () => (server.listening ? (server.address() as AddressInfo) : undefined),
    connectionCount: () => live.size,
    close: () =>
      (closing ??= new Promise((resolve) => {
        // Stop accepting now; net.Server's own callback would wait for every connection, so track them here.
        if (server.listening) server.close();
        if (live.size === 0 && handling === 0) {
          resolve();
          return;
        }
        const timer = clock.setTimeout(() => {
          if (live.size > 0) logger.info('gateway drain time over; resetting connections', { connections: live.size });
          for (const s of [...liveUp, ...live]) reset(s);
        }, drainTimeoutMs);
        onDrained = () => {
          onDrained = undefined;
          timer.cancel();
          resolve();
        };
      })),
  };
}
