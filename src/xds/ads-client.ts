/**
 * A state-of-the-world ADS client, the proxy's side of xDS. It imports nothing from the control plane:
 * like an Envoy, it only knows the protocol and the resource types.
 *
 * Per subscribed type it keeps the last accepted version and resources. An update is ACKed when every
 * resource decodes and the handler accepts it, and NACKed (error_detail set, last good version kept)
 * otherwise. When the stream breaks it reconnects with exponential backoff and jitter, resubscribing with
 * the last accepted versions; until then the last good config stays in force.
 */
import * as grpc from '@grpc/grpc-js';
import { CrossmeshError, silentLogger, systemClock } from '../shared/index.js';
import type { Clock, Logger } from '../shared/index.js';
import { adsServiceDefinition } from './protos.js';
import { decodeResource, resourceNameOf } from './any.js';
import type { Any } from './any.js';
import { createBackoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { INVALID_ARGUMENT, nodeToWire } from './discovery.js';
import { HEALTH_INFO_TYPE_URL } from './type-urls.js';

/** google.rpc.Code UNAVAILABLE, the code Istio's agent reports an unhealthy workload with. */
const UNAVAILABLE = 14;
import type { DiscoveryRequest, DiscoveryResponse } from './discovery.js';
import type { XdsNode } from './types.js';

/**
 * One accepted (or proposed) state of a type: every resource the server sent, by name, decoded.
 * A resource whose bytes did not change since the last update is the very same object, so consumers
 * can skip unchanged resources by identity; treat them as immutable.
 */
export interface ResourceUpdate<T = Record<string, unknown>> {
  typeUrl: string;
  version: string;
  resources: ReadonlyMap<string, T>;
}

/**
 * Decides on a proposed update. Returning nothing accepts it; returning `{reject}` or throwing NACKs
 * it with that message and keeps the previous state. Called synchronously, one update at a time.
 */
export type UpdateHandler<T = Record<string, unknown>> = (update: ResourceUpdate<T>) => void | { reject: string };

export interface AdsClientOptions {
  /** `host:port` of the control plane's xDS endpoint. */
  address: string;
  /** Defaults to plaintext. */
  credentials?: grpc.ChannelCredentials;
  /** Merged over DEFAULT_CHANNEL_OPTIONS. */
  channelOptions?: grpc.ChannelOptions;
  node: XdsNode;
  logger?: Logger;
  clock?: Clock;
  backoff?: BackoffOptions;
}

export interface AdsClientStatus {
  /** True once the current stream has delivered a response; false from the moment it breaks. */
  connected: boolean;
  /** Streams opened so far, the first included. */
  streams: number;
  lastError?: string;
  /** Updates rejected since start, per type URL. */
  nacks: Record<string, number>;
}

/** A running client. Handlers and status callbacks are never called after close(). */
export interface AdsClient {
  /**
   * Subscribes to a type; `names` undefined means wildcard. One handler per type. `T` is the decoded
   * shape the caller expects (e.g. `Cluster` from types.ts); it is not checked at run time.
   */
  subscribe<T = Record<string, unknown>>(typeUrl: string, handler: UpdateHandler<T>, names?: readonly string[]): void;
  /** Changes the names a type is subscribed to (a wildcard type stays wildcard with undefined). */
  setNames(typeUrl: string, names: readonly string[] | undefined): void;
  /** The last accepted state of a type, kept across disconnections. */
  current(typeUrl: string): ResourceUpdate | undefined;
  status(): AdsClientStatus;
  /** Called on every connect/disconnect. */
  onStatusChange(cb: (status: AdsClientStatus) => void): void;
  /** Reports the workload's health (Istio's HealthInformation); repeated on every new stream. */
  reportHealth(healthy: boolean, message?: string): void;
  close(): void;
}

interface TypeState {
  handler: UpdateHandler;
  names: readonly string[] | undefined;
  accepted: ResourceUpdate | undefined;
  /** Nonce of the last response received on the current stream. */
  nonce: string;
  /** Decoded resources of the last accepted update by their exact bytes, to skip decoding them again. */
  decoded: Map<string, { name: string; value: Record<string, unknown> }>;
  nacks: number;
}

type AdsStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/**
 * Keepalive pings notice a control plane that vanished without closing the connection (the stream would
 * otherwise wait forever and never reconnect); a gateway's full state can exceed gRPC's 4 MiB default.
 */
export const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

export function createAdsClient(options: AdsClientOptions): AdsClient {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const backoff = createBackoff(options.backoff);
  const Ctor = grpc.makeGenericClientConstructor(adsServiceDefinition() as unknown as grpc.ServiceDefinition, 'ADS');
  const channelOptions = { ...DEFAULT_CHANNEL_OPTIONS, ...options.channelOptions };
  const client = new Ctor(options.address, options.credentials ?? grpc.credentials.createInsecure(), channelOptions) as unknown as grpc.Client & {
    StreamAggregatedResources(): AdsStream;
  };
  const types = new Map<string, TypeState>();
  const statusListeners: Array<(s: AdsClientStatus) => void> = [];
  let stream: AdsStream | undefined;
  let nodeSent = false;
  let connected = false;
  let streams = 0;
  let lastError: string | undefined;
  let closed = false;
  let retry: { cancel(): void } | undefined;
  let health: { healthy: boolean; message: string } | undefined;

  const status = (): AdsClientStatus => ({
    connected,
    streams,
    ...(lastError !== undefined ? { lastError } : {}),
    nacks: Object.fromEntries([...types].map(([t, s]) => [t, s.nacks])),
  });
  const notify = (): void => {
    const s = status();
    for (const cb of statusListeners) cb(s);
  };

  function send(typeUrl: string, st: TypeState, extra: Partial<DiscoveryRequest> = {}): void {
    if (!stream) return;
    const req: DiscoveryRequest = {
      type_url: typeUrl,
      version_info: st.accepted?.version ?? '',
      resource_names: st.names ? [...st.names] : [],
      response_nonce: st.nonce,
      ...extra,
    };
    // The node goes on the first request of a stream only; the server remembers it.
    if (!nodeSent) {
      req.node = nodeToWire(options.node);
      nodeSent = true;
    }
    stream.write(req);
  }

  function sendHealth(): void {
    if (!stream || !health) return;
    const req: DiscoveryRequest = { type_url: HEALTH_INFO_TYPE_URL, version_info: '', resource_names: [], response_nonce: '' };
    if (!health.healthy) req.error_detail = { code: UNAVAILABLE, message: health.message };
    if (!nodeSent) {
      req.node = nodeToWire(options.node);
      nodeSent = true;
    }
    stream.write(req);
  }

  function open(): void {
    retry = undefined;
    if (closed) return;
    streams++;
    nodeSent = false;
    const s = client.StreamAggregatedResources();
    stream = s;
    let ended = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      if (stream === s) stream = undefined;
      if (closed) return;
      const wasConnected = connected;
      connected = false;
      lastError = reason;
      const delay = backoff.next();
      logger.warn('xds stream closed, reconnecting', { reason, delayMs: delay, attempt: backoff.attempts });
      retry = clock.setTimeout(open, delay);
      if (wasConnected) notify();
    };
    s.on('data', (resp: DiscoveryResponse) => {
      if (stream !== s) return;
      if (!connected) {
        connected = true;
        backoff.reset();
        notify();
      }
      onResponse(resp);
    });
    // 'status' comes exactly once per call, whatever ended it; 'error' only needs a listener.
    s.on('error', () => {});
    s.on('status', (st: grpc.StatusObject) =>
      end(st.code === grpc.status.OK ? 'stream ended by server' : `${grpc.status[st.code] ?? st.code}: ${st.details}`),
    );
    for (const [typeUrl, st] of types) {
      // A new stream knows no nonce; the last accepted version tells the server what we have.
      st.nonce = '';
      send(typeUrl, st);
    }
    sendHealth();
  }

  function onResponse(resp: DiscoveryResponse): void {
    const st = types.get(resp.type_url);
    if (!st) {
      logger.debug('xds response for a type not subscribed, ignored', { typeUrl: resp.type_url });
      return;
    }
    st.nonce = resp.nonce;
    let update: ResourceUpdate;
    let decoded: TypeState['decoded'] = new Map();
    let rejection: string | undefined;
    try {
      const resources = new Map<string, Record<string, unknown>>();
      decoded = new Map();
      for (const any of resp.resources as Any[]) {
        if (any.type_url !== resp.type_url) throw new CrossmeshError('E_XDS_TYPE', `resource of type ${any.type_url} in a ${resp.type_url} response`);
        const key = Buffer.from(any.value.buffer, any.value.byteOffset, any.value.byteLength).toString('latin1');
        let entry = st.decoded.get(key);
        if (!entry) {
          const { value } = decodeResource(any);
          entry = { name: resourceNameOf(any.type_url, value), value };
        }
        if (resources.has(entry.name)) throw new CrossmeshError('E_XDS_DUPLICATE', `resource ${JSON.stringify(entry.name)} sent twice`);
        resources.set(entry.name, entry.value);
        decoded.set(key, entry);
      }
      update = { typeUrl: resp.type_url, version: resp.version_info, resources };
      const verdict = st.handler(update);
      if (verdict && typeof verdict === 'object' && 'reject' in verdict) rejection = verdict.reject;
    } catch (err) {
      rejection = (err as Error).message;
    }
    if (rejection !== undefined) {
      st.nacks++;
      logger.warn('xds update rejected', { typeUrl: resp.type_url, version: resp.version_info, error: rejection });
      send(resp.type_url, st, { error_detail: { code: INVALID_ARGUMENT, message: rejection } });
      return;
    }
    st.accepted = update!;
    st.decoded = decoded;
    send(resp.type_url, st);
  }

  open();

  return {
    reportHealth(healthy, message = '') {
      if (health && health.healthy === healthy && health.message === message) return;
      health = { healthy, message };
      sendHealth();
    },
    subscribe<T>(typeUrl: string, handler: UpdateHandler<T>, names?: readonly string[]) {
      if (types.has(typeUrl)) throw new CrossmeshError('E_XDS_SUBSCRIBED', `already subscribed to ${typeUrl}`);
      const st: TypeState = { handler: handler as unknown as UpdateHandler, names: names ? [...names] : undefined, accepted: undefined, nonce: '', nacks: 0, decoded: new Map() };
      types.set(typeUrl, st);
      send(typeUrl, st);
    },
    setNames(typeUrl, names) {
      const st = types.get(typeUrl);
      if (!st) throw new CrossmeshError('E_XDS_NOT_SUBSCRIBED', `not subscribed to ${typeUrl}`);
      st.names = names ? [...names] : undefined;
      send(typeUrl, st);
    },
    current: (typeUrl) => types.get(typeUrl)?.accepted,
    status,
    onStatusChange(cb) {
      statusListeners.push(cb);
    },
    close() {
      if (closed) return;
      closed = true;
      retry?.cancel();
      const s = stream;
      stream = undefined;
      connected = false;
      s?.cancel();
      client.close();
    },
  };
}
