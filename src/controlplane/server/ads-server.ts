/**
 * ADS over gRPC, state of the world: wires gRPC streams to ads-stream.ts state machines over a snapshot
 * cache. Which snapshot a proxy sees is decided by the injected `nodeGroup(node)`; this module never
 * looks inside resources.
 */
import * as grpc from '@grpc/grpc-js';
import { silentLogger, systemClock } from '../../shared/index.js';
import type { Clock, Logger } from '../../shared/index.js';
import { adsServiceDefinition } from '../../xds/index.js';
import type { DiscoveryRequest, DiscoveryResponse, XdsNode } from '../../xds/index.js';
import type { SnapshotCache } from '../cache/index.js';
import { createAdsStream } from './ads-stream.js';
import type { AdsServerHooks, AdsStream, ConnectedProxy } from './ads-stream.js';

export interface AdsServerOptions {
  cache: SnapshotCache;
  /**
   * Maps a proxy and a type to the snapshot group serving it, called once per type per stream. Most
   * callers ignore the type; it lets e.g. secrets come from a per-identity group while listeners and
   * clusters are shared. Throwing refuses the stream with INVALID_ARGUMENT.
   */
  nodeGroup: (node: XdsNode, typeUrl: string) => string;
  logger?: Logger;
  clock?: Clock;
  hooks?: AdsServerHooks;
  /** Sent as control_plane.identifier in every response. */
  controlPlaneId?: string;
}

/** Totals since start, for metrics. */
export interface AdsServerStats {
  streams: number;
  pushes: number;
  acks: number;
  nacks: number;
  staleNonces: number;
}

export interface AdsServer {
  /** Adds the AggregatedDiscoveryService to a gRPC server (not yet bound or started). */
  register(server: grpc.Server): void;
  /** Proxies with an open stream that have sent their node, in connection order. */
  connectedProxies(): ConnectedProxy[];
  stats(): AdsServerStats;
  /** Ends every open stream with UNAVAILABLE (proxies reconnect elsewhere or later) and stops accepting. */
  close(): void;
}

export function createAdsServer(options: AdsServerOptions): AdsServer {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const hooks = options.hooks ?? {};
  const controlPlaneId = options.controlPlaneId ?? 'crossmesh';
  const streams = new Map<number, { stream: AdsStream; call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse> }>();
  const counters = { pushes: 0, acks: 0, nacks: 0, staleNonces: 0 };
  let nextId = 1;
  let opened = 0;
  let closed = false;

  function handleCall(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    if (closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS server is shutting down' });
      return;
    }
    const id = nextId++;
    opened++;
    let done = false;
    const stream = createAdsStream(
      { id, peer: call.getPeer(), cache: options.cache, nodeGroup: options.nodeGroup, logger, clock, hooks, controlPlaneId, counters },
      {
        write: (resp) => {
          if (!done) call.write(resp);
        },
        fail: (code, message) => {
          logger.warn('xds stream refused', { stream: id, error: message });
          finish(message);
          call.emit('error', { code, details: message });
        },
      },
    );
    streams.set(id, { stream, call });
    const finish = (reason: string): void => {
      if (done) return;
      done = true;
      streams.delete(id);
      stream.close(reason);
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        stream.handle(req);
      } catch (err) {
        // A bug handling one proxy's request ends that stream only.
        logger.error('xds request handling failed', { stream: id, error: (err as Error).message });
        finish('internal error');
        call.emit('error', { code: grpc.status.INTERNAL, details: 'internal error' });
      }
    });
    call.on('end', () => {
      finish('client closed the stream');
      call.end();
    });
    call.on('cancelled', () => finish('cancelled'));
    call.on('error', (err: Error) => finish(`error: ${err.message}`));
    call.on('close', () => finish('closed'));
  }

  return {
    register(server) {
      server.addService(adsServiceDefinition() as unknown as grpc.ServiceDefinition, {
        StreamAggregatedResources: handleCall,
        DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'delta xDS is not supported; use state of the world' });
        },
      });
    },
    connectedProxies: () => [...streams.values()].map((s) => s.stream.info()).filter((p): p is ConnectedProxy => p !== undefined),
    stats: () => ({ streams: opened, ...counters }),
    close() {
      closed = true;
      for (const { stream, call } of [...streams.values()]) {
        stream.close('server closing');
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS server is shutting down' });
      }
      streams.clear();
    },
  };
}
