/**
 * Byte splicing between two TCP sockets, as Envoy's tcp_proxy does it: backpressure both ways (pipe pauses
 * the reader while the writer's buffer is full), half-close passed through (a FIN one way leaves the other
 * way open), a reset on either side resets the other, and one idle timer for the pair.
 */
import type net from 'node:net';
import type { Clock } from '../../shared/clock.js';

/** One upstream address. */
export interface Endpoint {
  address: string;
  port: number;
}

/**
 * The endpoints one connection will try, in order: round robin from `cursor`, then the following ones, up
 * to `max` distinct endpoints, so a refused connect moves on to the next endpoint.
 */
export function pickOrder<T>(endpoints: readonly T[], cursor: number, max: number): T[] {
  const n = endpoints.length;
  const out: T[] = [];
  for (let i = 0; i < Math.min(n, max); i++) out.push(endpoints[(cursor + i) % n]!);
  return out;
}

export interface SpliceOutcome {
  idleTimeout: boolean;
  /** The first socket error seen on either side, if any. */
  downstreamError?: string;
  upstreamError?: string;
}

/**
 * Writes `initial` (bytes already read from `down`) to `up`, then copies both ways until both sockets have
 * closed. Both sockets must allow half-open; `down` may be paused. Resolves, never rejects.
 */
export function spliceSockets(
  down: net.Socket,
  up: net.Socket,
  initial: Buffer,
  options: { idleTimeoutMs: number; clock: Clock },
): Promise<SpliceOutcome> {
  return new Promise((resolve) => {
    const outcome: SpliceOutcome = { idleTimeout: false };
    let lastActivity = options.clock.now();
    let closed = 0;
    let timer: { cancel(): void } | undefined;

    const touch = (): void => {
      lastActivity = options.clock.now();
    };
    const armIdle = (delay: number): void => {
      timer = options.clock.setTimeout(() => {
        const idle = options.clock.now() - lastActivity;
        if (idle >= options.idleTimeoutMs) {
          outcome.idleTimeout = true;
          down.destroy();
          up.destroy();
        } else {
          armIdle(options.idleTimeoutMs - idle);
        }
      }, delay);
    };
    // When one side is fully closed there is nobody left to talk to: flush what is queued to the other
    // side, then close it even if its peer never sends FIN (Envoy closes the downstream the same way).
    const closeAfterFlush = (s: net.Socket): void => {
      if (s.destroyed) return;
      s.end();
      if (s.writableFinished) s.destroy();
      else s.once('finish', () => s.destroy());
    };
    const onClose = (other: net.Socket) => (hadError: boolean) => {
      if (hadError) other.destroy();
      else closeAfterFlush(other);
      if (++closed === 2) {
        timer?.cancel();
        resolve(outcome);
      }
    };

    down.on('error', (err) => {
      outcome.downstreamError ??= err.message;
      up.destroy();
    });
    up.on('error', (err) => {
      outcome.upstreamError ??= err.message;
      down.destroy();
    });
    down.once('close', onClose(up));
    up.once('close', onClose(down));
    down.on('data', touch);
    up.on('data', touch);
    armIdle(options.idleTimeoutMs);

    if (initial.length > 0) up.write(initial);
    down.pipe(up);
    up.pipe(down);
  });
}
