/**
 * The state machine of one ADS stream (state of the world). It knows nonces, versions, subscriptions
 * and the cache's watch interface; it knows nothing of what the resources mean.
 *
 * Per type: a request whose nonce is not the last one sent is stale and ignored. A current nonce with
 * error_detail is a NACK (recorded; nothing is resent until the cache has a newer version), without it
 * an ACK. Either way a new one-shot watch is opened with the version last sent, so the next push happens
 * exactly when the snapshot moves on. The first request of a type, or one adding names, is answered at once.
 */
import type { Clock, Logger } from '../../shared/index.js';
import { HEALTH_INFO_TYPE_URL, isWildcardType, nodeFromWire } from '../../xds/index.js';
import type { DiscoveryRequest, DiscoveryResponse, XdsNode } from '../../xds/index.js';
import type { SnapshotCache, WatchResponse } from '../cache/index.js';

/** A rejected update as the proxy reported it. */
export interface NackInfo {
  version: string;
  nonce: string;
  code: number;
  message: string;
  /** Injected clock's time. */
  at: number;
}

/** What a stream knows about one type; the debug views show it as is. */
export interface TypeStatus {
  typeUrl: string;
  /** The snapshot group this type is served from. */
  group: string;
  /** undefined: wildcard. */
  names: readonly string[] | undefined;
  sentVersion?: string;
  sentNonce?: string;
  /** Injected clock's time of the last push. */
  sentAt?: number;
  ackedVersion?: string;
  ackedNonce?: string;
  ackedAt?: number;
  lastNack?: NackInfo;
  /**
   * Istio proxy-status style summary against the group's current snapshot: NOT_SENT (nothing pushed
   * yet), SYNCED (the current version is pushed and ACKed), NACKED (the last push was rejected),
   * STALE (a push awaits its ACK, or a newer version awaits a push).
   */
  sync: 'NOT_SENT' | 'SYNCED' | 'NACKED' | 'STALE';
  pushes: number;
  acks: number;
  nacks: number;
}

/** One connected proxy: its identity and per-type sync state. */
export interface ConnectedProxy {
  streamId: number;
  peer: string;
  node: XdsNode;
  connectedAt: number;
  types: TypeStatus[];
}

export interface AdsServerHooks {
  onStreamOpen?(proxy: ConnectedProxy): void;
  onStreamClosed?(proxy: ConnectedProxy, reason: string): void;
  onAck?(proxy: ConnectedProxy, typeUrl: string, version: string): void;
  onNack?(proxy: ConnectedProxy, typeUrl: string, nack: NackInfo): void;
  onPush?(proxy: ConnectedProxy, typeUrl: string, version: string, resources: number): void;
  /** Istio's HealthInformation report: no response, no subscription. */
  onHealth?(proxy: ConnectedProxy, healthy: boolean, message: string): void;
}

/** The transport a stream writes to and can fail; the gRPC call in production, a fake in unit tests. */
export interface StreamSink {
  write(response: DiscoveryResponse): void;
  /** Ends the stream with a gRPC status code. */
  fail(code: number, message: string): void;
}

export interface StreamDeps {
  id: number;
  peer: string;
  cache: SnapshotCache;
  nodeGroup: (node: XdsNode, typeUrl: string) => string;
  logger: Logger;
  clock: Clock;
  hooks: AdsServerHooks;
  controlPlaneId: string;
  counters: { pushes: number; acks: number; nacks: number; staleNonces: number };
}

interface TypeState extends Omit<TypeStatus, 'sync'> {
  cancelWatch: (() => void) | undefined;
}

const INVALID_ARGUMENT = 3;

/** Handles the requests of one stream; close() must be called once the stream is gone. */
export interface AdsStream {
  handle(req: DiscoveryRequest): void;
  close(reason: string): void;
  info(): ConnectedProxy | undefined;
}

export function createAdsStream(deps: StreamDeps, sink: StreamSink): AdsStream {
  const types = new Map<string, TypeState>();
  let node: XdsNode | undefined;
  let log = deps.logger;
  let nonceSeq = 0;
  let closed = false;
  const connectedAt = deps.clock.now();
  // Hooks feed debug views and metrics; a bug there must not break the proxy's stream.
  const hook = <K extends keyof AdsServerHooks>(name: K, ...args: Parameters<NonNullable<AdsServerHooks[K]>>): void => {
    const fn = deps.hooks[name] as ((...a: unknown[]) => void) | undefined;
    if (!fn) return;
    try {
      fn(...args);
    } catch (err) {
      log.error('xds hook failed', { hook: name, error: (err as Error).message });
    }
  };

  const info = (): ConnectedProxy | undefined =>
    node && {
      streamId: deps.id,
      peer: deps.peer,
      node,
      connectedAt,
      types: [...types.values()].map(({ cancelWatch: _c, ...status }) => ({
        ...status,
        names: status.names && [...status.names],
        sync: syncOf(status, deps.cache.getSnapshot(status.group)?.version(status.typeUrl)),
      })),
    };

  function send(st: TypeState, response: WatchResponse): void {
    st.cancelWatch = undefined;
    if (closed) return;
    const nonce = String(++nonceSeq);
    sink.write({
      version_info: response.version,
      resources: response.resources.map((r) => r.resource),
      type_url: st.typeUrl,
      nonce,
      control_plane: { identifier: deps.controlPlaneId },
    });
    st.sentVersion = response.version;
    st.sentNonce = nonce;
    st.sentAt = deps.clock.now();
    st.pushes++;
    deps.counters.pushes++;
    log.debug('xds push', { typeUrl: st.typeUrl, version: response.version, nonce, resources: response.resources.length });
    hook('onPush', info()!, st.typeUrl, response.version, response.resources.length);
  }

  function rewatch(st: TypeState, knownVersion: string | undefined): void {
    st.cancelWatch?.();
    st.cancelWatch = undefined;
    // An empty name list (never a first-request wildcard, see subscriptionOf) unsubscribes: nothing to
    // watch until names come back.
    if (st.names !== undefined && st.names.length === 0) return;
    let answered = false;
    const cancel = deps.cache.watch(st.group, st.typeUrl, st.names, knownVersion, (resp) => {
      answered = true;
      send(st, resp);
    });
    if (!answered) st.cancelWatch = cancel;
  }

  function subscriptionOf(req: DiscoveryRequest, previous: TypeState | undefined): readonly string[] | undefined {
    const names = req.resource_names ?? [];
    if (names.includes('*')) return undefined;
    if (names.length === 0 && isWildcardType(req.type_url)) {
      // Legacy wildcard: an empty list on the first request means everything, and stays so.
      return previous === undefined || previous.names === undefined ? undefined : [];
    }
    return [...new Set(names)].sort();
  }

  return {
    info,
    handle(req) {
      if (closed) return;
      if (!node) {
        if (!req.node?.id) {
          sink.fail(INVALID_ARGUMENT, 'the first DiscoveryRequest of a stream must carry node.id');
          return;
        }
        node = nodeFromWire(req.node);
        log = deps.logger.child({ stream: deps.id, node: node.id });
        log.info('xds stream opened', { peer: deps.peer });
        hook('onStreamOpen', info()!);
      }
      const typeUrl = req.type_url;
      if (!typeUrl) {
        sink.fail(INVALID_ARGUMENT, 'DiscoveryRequest.type_url is required on an ADS stream');
        return;
      }
      if (typeUrl === HEALTH_INFO_TYPE_URL) {
        const e = req.error_detail;
        const healthy = !e || (e.code === 0 && !e.message);
        log.debug('workload health reported', { healthy, message: e?.message });
        hook('onHealth', info()!, healthy, e?.message ?? '');
        return;
      }
      const nonce = req.response_nonce ?? '';
      let st = types.get(typeUrl);
      if (st && nonce !== '' && nonce !== st.sentNonce) {
        // The proxy answers a response it has since been superseded by; its answer to that one is coming.
        deps.counters.staleNonces++;
        log.debug('xds stale nonce ignored', { typeUrl, nonce, current: st.sentNonce });
        return;
      }
      const names = subscriptionOf(req, st);
      let forceResponse = false;
      // A nonce only means something on the stream that issued it; a new type on this stream has none yet.
      const answers = st !== undefined && nonce !== '';
      if (!st) {
        let group: string;
        try {
          group = deps.nodeGroup(node, typeUrl);
        } catch (err) {
          sink.fail(INVALID_ARGUMENT, `node ${node.id}: ${typeUrl}: ${(err as Error).message}`);
          return;
        }
        st = { typeUrl, group, names, cancelWatch: undefined, pushes: 0, acks: 0, nacks: 0 };
        types.set(typeUrl, st);
        // A new stream always gets the current state, whatever version the proxy claims to have.
        forceResponse = true;
      } else {
        forceResponse = nonce === '' || addsNames(st.names, names);
        st.names = names;
      }
      if (answers) {
        const err = req.error_detail;
        if (err && (err.code !== 0 || err.message)) {
          const nack: NackInfo = { version: req.version_info ?? '', nonce, code: err.code, message: err.message, at: deps.clock.now() };
          st.lastNack = nack;
          st.nacks++;
          deps.counters.nacks++;
          log.warn('xds NACK', { typeUrl, rejected: st.sentVersion, keeps: nack.version, error: nack.message });
          hook('onNack', info()!, typeUrl, nack);
        } else {
          st.ackedVersion = req.version_info ?? '';
          st.ackedNonce = nonce;
          st.ackedAt = deps.clock.now();
          st.acks++;
          deps.counters.acks++;
          hook('onAck', info()!, typeUrl, st.ackedVersion);
        }
      }
      rewatch(st, forceResponse ? undefined : st.sentVersion);
    },
    close(reason) {
      if (closed) return;
      closed = true;
      for (const st of types.values()) st.cancelWatch?.();
      const proxy = info();
      if (proxy) {
        log.info('xds stream closed', { reason });
        hook('onStreamClosed', proxy, reason);
      }
    },
  };
}

function syncOf(st: Omit<TypeStatus, 'sync'>, current: string | undefined): TypeStatus['sync'] {
  if (st.sentNonce === undefined) return 'NOT_SENT';
  if (st.lastNack && st.lastNack.nonce === st.sentNonce) return 'NACKED';
  if (st.ackedNonce === st.sentNonce && (current === undefined || current === st.sentVersion)) return 'SYNCED';
  return 'STALE';
}

/** True when `next` subscribes to something `prev` did not (or turns into a wildcard). */
function addsNames(prev: readonly string[] | undefined, next: readonly string[] | undefined): boolean {
  if (prev === undefined) return false;
  if (next === undefined) return true;
  const had = new Set(prev);
  return next.some((n) => !had.has(n));
}
