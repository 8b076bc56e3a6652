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
}

/** A running gateway. Listening starts with listen(); close() stops accepting and resets live connections. */
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
  for (const name of ['peekTimeoutMs', 'maxClientHelloBytes', 'connectTimeoutMs', 'maxConnectAttempts', 'idleTimeoutMs', 'maxConnections'] as const) positive(name);
  if (problems.length > 0) throw new ValidationError(problems.map((p) => ({ resource: 'SniPassthroughGateway', ...p })));
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
  const cursors = new Map<string, number>();
  const live = new Set<net.Socket>();

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    live.add(down);
    down.once('close', () => live.delete(down));
    void handle(down).catch((err: unknown) => {
      logger.error('gateway connection handler failed', { error: String(err) });
      down.destroy();
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
    const refuse = (flags: string, why: string, fields: Partial<AccessLogRecord> = {}): void => {
      logger.info('gateway refused connection', { reason: why, remote: base.downstream_remote_address, sni: fields.requested_server_name ?? null });
      down.destroy();
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
      const outcome = await spliceSockets(down, upstream, peek.buffered, { idleTimeoutMs, clock });
      if (outcome.idleTimeout) logger.debug('gateway connection idle timeout', { sni: peek.sni });
      // tcp_proxy sets no flag for resets after the upstream connected; the reason still goes to the log.
      emit({ ...upstreamFields, response_flags: formatResponseFlags([]) });
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
      new Promise((resolve) => {
        if (!server.listening) {
          for (const s of live) s.destroy();
          resolve();
          return;
        }
        server.close(() => resolve());
        for (const s of live) s.destroy();
      }),
  };
}
