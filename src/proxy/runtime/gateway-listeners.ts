/**
 * The east-west gateway's listening sockets, following LDS as Envoy does: one SNI passthrough gateway per
 * port the control plane's listeners name (Istio's AUTO_PASSTHROUGH server, 15443 by default). A port that
 * disappears from LDS, or moves, is drained: it stops accepting, and its live connections get the drain
 * time before they are reset. A pinned port (tests, `--gateway-port`) replaces the listeners' ports and is
 * bound at once, before any LDS.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/index.js';
import type { Listener } from '../../xds/index.js';
import type { SniPassthroughGateway } from '../gateway/index.js';

export interface GatewayListeners {
  /**
   * Binds the ports `listeners` name and drains the others; resolves once the binds have settled. A port
   * that cannot be bound is logged and left out; only a pinned port's failure rejects.
   */
  sync(listeners: ReadonlyMap<string, Listener>): Promise<void>;
  /** Bound addresses, lowest port first. */
  addresses(): AddressInfo[];
  /** Drains every gateway. */
  close(): Promise<void>;
}

export interface GatewayListenersOptions {
  /** Makes a gateway for one port (not yet listening). */
  create(port: number): SniPassthroughGateway;
  /** Listen here whatever LDS says; 0 picks a free port. */
  pinnedPort?: number | undefined;
  logger: Logger;
}

/** The ports of the listeners the gateway should run: every LDS listener with a socket address port. */
export function gatewayPortsOf(listeners: ReadonlyMap<string, Listener>): number[] {
  const ports = new Set<number>();
  for (const l of listeners.values()) {
    const port = l.address?.socket_address?.port_value;
    if (typeof port === 'number' && port > 0 && port <= 65535) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

export function createGatewayListeners(options: GatewayListenersOptions): GatewayListeners {
  const { logger } = options;
  const running = new Map<number, { gateway: SniPassthroughGateway; address?: AddressInfo }>();
  let closed = false;

  async function bind(port: number): Promise<unknown> {
    const gateway = options.create(port);
    const entry: { gateway: SniPassthroughGateway; address?: AddressInfo } = { gateway };
    running.set(port, entry);
    try {
      entry.address = await gateway.listen();
      logger.info('gateway listening', { address: `${entry.address.address}:${entry.address.port}` });
      return undefined;
    } catch (err) {
      running.delete(port);
      logger.error('gateway listener failed to bind', { port, error: String(err) });
      return err ?? new Error(`gateway: could not listen on port ${port}`);
    }
  }

  function drain(port: number): Promise<void> {
    const entry = running.get(port);
    if (!entry) return Promise.resolve();
    running.delete(port);
    logger.info('gateway listener draining', { port });
    return entry.gateway.close();
  }

  return {
    async sync(listeners) {
      if (closed) return;
      const wanted = options.pinnedPort !== undefined ? [options.pinnedPort] : gatewayPortsOf(listeners);
      const failures = (await Promise.all(wanted.filter((p) => !running.has(p)).map((p) => bind(p)))).filter((e) => e !== undefined);
      if (options.pinnedPort !== undefined && failures.length > 0) throw failures[0];
      // Drains finish on their own time; new binds first, so a moved port never leaves a gap.
      for (const port of [...running.keys()]) if (!wanted.includes(port)) void drain(port);
    },
    addresses: () =>
      [...running.values()]
        .flatMap((e) => (e.address ? [e.address] : []))
        .sort((a, b) => a.port - b.port),
    async close() {
      closed = true;
      await Promise.allSettled([...running.keys()].map((p) => drain(p)));
    },
  };
}
