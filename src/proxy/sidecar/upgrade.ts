/**
 * HTTP/1.1 upgrades (WebSocket and the like) as Envoy's connection manager treats them: whether an upgrade
 * type may pass (route's upgrade_configs over the connection manager's), and, once the upstream answered
 * 101, the tunnel that splices the two connections with backpressure, half-close and one idle timer.
 */
import type net from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { spliceSockets } from '../gateway/index.js';
import type { CompiledRoute } from './compile-routes.js';
import type { HttpChainFilter } from './compile-listeners.js';

/**
 * Envoy's rule: a route that names the type decides (disabled refuses even if the connection manager allows
 * it); otherwise the connection manager must list the type as enabled.
 */
export function upgradeAllowed(type: string, chain: HttpChainFilter, route: CompiledRoute): boolean {
  const perRoute = route.action.type === 'route' ? route.action.upgrades?.get(type) : undefined;
  return perRoute ?? chain.upgrades.get(type) ?? false;
}

/** The idle timeout of a tunnel on `route`: the route's idle_timeout, else the connection manager's stream_idle_timeout. */
export function tunnelIdleTimeoutMs(chain: HttpChainFilter, route: CompiledRoute): number {
  const ms = (route.action.type === 'route' ? route.action.idleTimeoutMs : undefined) ?? chain.streamIdleTimeoutMs;
  // 0 disables the timer, as in Envoy.
  return ms > 0 ? ms : 2 ** 31 - 1;
}

export interface TunnelEnds {
  down: net.Socket;
  /** Bytes the client sent after its request head, not yet forwarded. */
  downHead: Buffer;
  up: net.Socket;
  /** Bytes the upstream sent after its 101 head, not yet forwarded. */
  upRest: Buffer;
}

export interface TunnelOutcome {
  /** Payload bytes from the client and to the client, heads excluded (Envoy's bytes_received / bytes_sent). */
  bytesIn: number;
  bytesOut: number;
  idleTimeout: boolean;
}

/**
 * Copies bytes both ways until both connections have closed: closing or resetting one side tears down the
 * other, a FIN passes through as a half-close, and `idleTimeoutMs` without traffic closes both. Resolves,
 * never rejects.
 */
export async function runTunnel(ends: TunnelEnds, options: { idleTimeoutMs: number; clock: Clock }): Promise<TunnelOutcome> {
  const { down, up } = ends;
  let bytesIn = ends.downHead.length;
  let bytesOut = ends.upRest.length;
  // Pooled upstream connections are opened without half-open (an HTTP peer's FIN ends the response); a
  // tunnel passes the FIN on instead.
  up.allowHalfOpen = true;
  down.allowHalfOpen = true;
  down.on('data', (c: Buffer) => (bytesIn += c.length));
  up.on('data', (c: Buffer) => (bytesOut += c.length));
  if (ends.upRest.length) down.write(ends.upRest);
  const outcome = await spliceSockets(down, up, ends.downHead, options);
  return { bytesIn, bytesOut, idleTimeout: outcome.idleTimeout };
}
