/**
 * The router's side of one upstream attempt: what can come of it, the request sent over the cluster's
 * protocol (HTTP/1.1 pool or HTTP/2 session), a streamed body piped with backpressure, and which outcomes
 * a retry policy retries.
 */
import type http from 'node:http';
import { appendHeaderLine, buildRequestHead } from '../upstream/index.js';
import { PEER_ID, TRANSPORT_FAILURE } from '../upstream/index.js';
import type { ClusterRuntime, ExchangeEvents, ExchangeHandle, UpstreamHost, UpstreamSocket } from '../upstream/index.js';
import { formatAddress } from '../telemetry/index.js';
import type { Clock } from '../../shared/clock.js';
import type { RetryPolicy } from './compile-routes.js';
import { HOP_BY_HOP } from './route-match.js';
import type { ServerRequest as DownstreamRequest } from './exchange.js';

/**
 * How one attempt ended. A response still holds the attempt's slots: `attempt.release()` gives them back
 * when the router is done with it.
 */
export type Outcome =
  | { kind: 'response'; status: number; rawHeaders: string[]; peerId?: string | undefined; attempt: UpstreamAttempt; grpcStatus?: string | undefined }
  | { kind: 'upgrade'; rawHeaders: string[]; peerId?: string | undefined; sock: UpstreamSocket; rest: Buffer; attempt: UpstreamAttempt }
  | { kind: 'connect-failure'; reason: string; transport?: string | undefined }
  | { kind: 'reset'; remote?: boolean; protocolError?: boolean }
  | { kind: 'stale' }
  | { kind: 'timeout' };

/** Where an upstream response body goes once the router decided to forward it. */
export interface BodySink {
  data(chunk: Buffer, last: boolean): boolean;
  trailers(raw: string[]): void;
  end(): void;
  error(): void;
}

/** A streamed request body's copy for retries; dropped (undefined) once it outgrows MAX_REPLAY_BODY. */
export interface Replay {
  chunks: Buffer[] | undefined;
}

/** What an attempt records on the router's exchange. */
interface AttemptRecord {
  upstreamLocal?: string | null;
  readonly grpc: boolean;
}

/**
 * One attempt upstream, as the exchange's event sink: holds the endpoint's and the cluster's active-request
 * slots from construction to `release()`, turns the exchange's events into one Outcome for `onOutcome`,
 * then feeds the response body to the sink the router sets with `body()`. A class rather than closures:
 * every request makes at least one.
 */
export class UpstreamAttempt implements ExchangeEvents {
  /** The exchange, once sendUpstream returned it. */
  exchange: ExchangeHandle | undefined;
  settled = false;
  private released = false;
  private perTry: { cancel(): void } | undefined;
  private sock: UpstreamSocket | undefined;
  private sink: BodySink | undefined;

  constructor(
    readonly host: UpstreamHost,
    private readonly cluster: ClusterRuntime,
    private readonly record: AttemptRecord,
    private readonly req: DownstreamRequest,
    /** The request body streams through this attempt (pipeBody once the connection is there). */
    private readonly streamBody: boolean,
    private readonly onOutcome: (o: Outcome) => void,
  ) {
    host.active++;
    cluster.active++;
  }

  /** Gives the slots back (once). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.host.active--;
    this.cluster.active--;
  }

  /** Where the response body goes, once the router forwards it. */
  body(sink: BodySink): void {
    this.sink = sink;
  }

  /** The first outcome wins; anything but a response releases the slots at once (a tunnel holds none). */
  settle(o: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.perTry?.cancel();
    if (o.kind !== 'response') this.release();
    this.onOutcome(o);
  }

  /** per_try_timeout: the exchange is aborted and the attempt ends as a timeout. */
  limit(clock: Clock, ms: number): void {
    if (this.settled) return;
    this.perTry = clock.setTimeout(() => {
      this.exchange?.abort();
      this.settle({ kind: 'timeout' });
    }, ms);
  }

  /** Stops the attempt (route timeout, client gone): a reset if nothing came back yet. */
  abort(): void {
    this.exchange?.abort();
    if (!this.settled) this.settle({ kind: 'reset' });
    else this.release();
  }

  socket(s: UpstreamSocket, _reused: boolean, handle: ExchangeHandle): void {
    this.sock = s;
    if (this.streamBody) pipeBody(this.req, handle);
  }

  head(status: number, rawHeaders: string[]): void {
    const sock = this.sock;
    if (sock) this.record.upstreamLocal = formatAddress(sock.localAddress, sock.localPort);
    this.settle({ kind: 'response', status, rawHeaders, peerId: sock?.[PEER_ID], attempt: this, grpcStatus: this.record.grpc ? headerOf(rawHeaders, 'grpc-status') : undefined });
  }

  upgraded(rawHeaders: string[], s: UpstreamSocket, rest: Buffer): void {
    this.record.upstreamLocal = formatAddress(s.localAddress, s.localPort);
    if (this.settled) {
      s.destroy();
      return this.release();
    }
    this.settle({ kind: 'upgrade', rawHeaders, peerId: s[PEER_ID], sock: s, rest, attempt: this });
  }

  data(chunk: Buffer, last: boolean): boolean {
    return this.sink ? this.sink.data(chunk, last) : true;
  }

  trailers(raw: string[]): void {
    this.sink?.trailers(raw);
  }

  end(): void {
    if (this.sink) this.sink.end();
    else this.release();
  }

  error(err: NodeJS.ErrnoException, info: { connected: boolean; stale: boolean; remoteReset?: boolean; protocolError?: boolean }): void {
    if (this.settled) {
      this.sink?.error();
      this.release();
      return;
    }
    if (!info.connected) this.settle({ kind: 'connect-failure', reason: err.message, transport: this.sock?.[TRANSPORT_FAILURE] });
    else if (info.stale) this.settle({ kind: 'stale' });
    else this.settle({ kind: 'reset', remote: info.remoteReset === true, protocolError: info.protocolError === true });
  }
}

/**
 * One request upstream over the cluster's protocol: an HTTP/2 stream, or an HTTP/1.1 head written here (a
 * streamed body of unknown length goes chunked). `headers` is a header object, or for an HTTP/1.1 cluster
 * the complete head (requestHeadFromRaw). Throws, before anything is sent, on an invalid method, path or
 * header.
 */
export function sendUpstream(
  cluster: ClusterRuntime,
  host: UpstreamHost,
  req: DownstreamRequest,
  path: string,
  headers: http.OutgoingHttpHeaders | string,
  body: Buffer | undefined,
  stream: boolean,
  events: ExchangeEvents,
): ExchangeHandle {
  const method = req.method;
  if (cluster.settings.http2) {
    if (typeof headers === 'string') throw new Error('an HTTP/2 cluster needs a header object');
    const te = req.headers.te;
    return host.http2().request({ method, path, headers, body, streaming: stream, trailers: te !== undefined && te.includes('trailers') }, events);
  }
  const chunked = stream && (typeof headers === 'string' ? req.headers['content-length'] === undefined : headers['content-length'] === undefined);
  const head = typeof headers === 'string' ? headers : buildRequestHead(method, path, headers, chunked);
  return host.http1().request({ head, body, streaming: stream ? { chunked } : undefined, noResponseBody: method === 'HEAD', upgrade: req.upgrade !== undefined }, events);
}

/**
 * Client headers that never go upstream as sent: hop-by-hop ones, and those the router sets itself (host,
 * request id, proto; x-forwarded-client-cert goes through the XFCC plan). One lookup per header.
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'x-request-id', 'x-forwarded-proto', 'x-forwarded-client-cert']);

/** The headers the router adds to every request upstream. */
export interface ProxyHeaders {
  host: string;
  requestId: string;
  forwardedProto: string;
  /** What becomes of x-forwarded-client-cert (forward_client_cert_details applied to this connection). */
  xfcc: XfccPlan;
}

/** The client's x-forwarded-client-cert kept or dropped, and this hop's element appended (if any). */
export interface XfccPlan {
  keepClient: boolean;
  element?: string | undefined;
}

/** The client's x-forwarded-client-cert and this hop's element, as the plan says; undefined: no header. */
function xfccValue(client: string | undefined, plan: XfccPlan): string | undefined {
  const kept = plan.keepClient ? client : undefined;
  if (plan.element === undefined) return kept;
  return kept ? `${kept},${plan.element}` : plan.element;
}

/**
 * The HTTP/1.1 request head straight from the client's header list, for requests no header operation,
 * mirror or attempt count touches: no header object in between. Names are lowercased, hop-by-hop headers
 * dropped, repeated headers kept as separate lines. The list comes from a codec that validated it and the
 * caller has checked the method and path (checkRequestTarget), so only what the router adds is checked here
 * (throws on an invalid value).
 */
export function requestHeadFromRaw(method: string, path: string, raw: readonly string[], add: ProxyHeaders, chunked: boolean): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let xfcc: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (NOT_FORWARDED.has(name)) {
      if (name === 'x-forwarded-client-cert') xfcc = xfcc === undefined ? raw[i + 1]! : `${xfcc}, ${raw[i + 1]!}`;
      continue;
    }
    head += name + ': ' + raw[i + 1]! + '\r\n';
  }
  head = appendHeaderLine(head, 'host', add.host);
  head += 'x-request-id: ' + add.requestId + '\r\nx-forwarded-proto: ' + add.forwardedProto + '\r\n';
  xfcc = xfccValue(xfcc, add.xfcc);
  if (xfcc !== undefined) head = appendHeaderLine(head, 'x-forwarded-client-cert', xfcc);
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  return head + '\r\n';
}

/** Upstream request headers as an object: the client's minus hop-by-hop, then the proxy's own. */
export function proxiedHeaders(raw: readonly string[], add: ProxyHeaders): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  let xfcc: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (NOT_FORWARDED.has(k)) {
      if (k === 'x-forwarded-client-cert') xfcc = xfcc === undefined ? raw[i + 1]! : `${xfcc}, ${raw[i + 1]!}`;
      continue;
    }
    const prev = headers[k];
    headers[k] = prev === undefined ? raw[i + 1]! : `${prev as string}, ${raw[i + 1]!}`;
  }
  headers.host = add.host;
  headers['x-request-id'] = add.requestId;
  headers['x-forwarded-proto'] = add.forwardedProto;
  xfcc = xfccValue(xfcc, add.xfcc);
  if (xfcc !== undefined) headers['x-forwarded-client-cert'] = xfcc;
  return headers;
}

export function headerOf(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1];
  return undefined;
}

/** Streams a request body the router could not buffer, with backpressure from the upstream connection. */
export function pipeBody(req: DownstreamRequest, up: ExchangeHandle): void {
  const onData = (c: Buffer): void => {
    if (!up.write(c)) {
      req.pause();
      up.onDrain(() => req.resume());
    }
  };
  req.on('data', onData);
  req.once('end', () => up.finish());
  if (req.readableEnded) up.finish();
  else req.resume();
}

/** gRPC status codes the retry_on conditions name. */
const GRPC_CANCELLED = '1';
const GRPC_DEADLINE_EXCEEDED = '4';
const GRPC_RESOURCE_EXHAUSTED = '8';
const GRPC_UNAVAILABLE = '14';

export function retriable(p: RetryPolicy, o: Outcome, status: number, grpcStatus: string | undefined): boolean {
  switch (o.kind) {
    case 'connect-failure':
      return p.connectFailure || p.on5xx || p.gatewayError;
    case 'reset':
    case 'stale':
      return p.reset || p.on5xx;
    case 'timeout':
      return p.on5xx || p.gatewayError;
    case 'upgrade':
      return false;
    case 'response':
      if (status >= 500 && p.on5xx) return true;
      if ((status === 502 || status === 503 || status === 504) && p.gatewayError) return true;
      if (status === 409 && p.retriable4xx) return true;
      if (grpcStatus !== undefined) {
        if ((grpcStatus === GRPC_UNAVAILABLE && p.unavailable) || (grpcStatus === GRPC_CANCELLED && p.cancelled)) return true;
        if ((grpcStatus === GRPC_DEADLINE_EXCEEDED && p.deadlineExceeded) || (grpcStatus === GRPC_RESOURCE_EXHAUSTED && p.resourceExhausted)) return true;
      }
      return p.retriableCodes.has(status);
  }
}

