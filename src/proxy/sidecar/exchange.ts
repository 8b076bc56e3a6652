/**
 * The protocol-neutral request/response pair the router works on. The HTTP/1.1 codec (http1-server.ts) and
 * the HTTP/2 codec (http2-server.ts) each implement it, so routing, retries, timeouts, header ops, access
 * logs and metrics are written once.
 */
import type { OutgoingHeaders } from '../upstream/index.js';

/** One downstream request: its head at once, its body as 'data' events (after `resume()`), then 'end'. */
export interface ServerRequest {
  readonly method: string;
  /** Origin form (`/path?query`) or, from an explicit-proxy HTTP/1.1 client, absolute form. */
  readonly url: string;
  /** Lowercase names, repeated headers joined; the authority is always in `host` (HTTP/2's `:authority`). */
  readonly headers: Readonly<Record<string, string>>;
  /** Name, value, name, value… as received, names lowercased (no pseudo-headers). */
  readonly rawHeaders: readonly string[];
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`, as Envoy's access log prints it. */
  readonly protocol: string;
  /**
   * HTTP/1.1 only: the lowercased protocol of an upgrade request (WebSocket) the router may tunnel through
   * the codec's `DownstreamResponse.switchProtocols`. Undefined for ordinary requests and HTTP/2.
   */
  readonly upgrade?: string | undefined;
  /** A body of unknown length follows (HTTP/1.1 chunked, HTTP/2 without content-length). */
  readonly streamedBody: boolean;
  /** True once 'end' has been emitted. */
  readonly readableEnded: boolean;
  pause(): this;
  resume(): this;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  once(event: 'end', listener: () => void): this;
}

/**
 * The response writer. 'close' is emitted once: when the response ended (`writableFinished` true) or when the
 * client went away first (false). Trailers travel only where the codec can carry them.
 */
export interface ServerResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  /** Validates and stores the head; throws on invalid headers. */
  writeHead(status: number, headers: OutgoingHeaders): this;
  /**
   * Where the codec has it: the head from a name/value list as received, minus lowercase names in `skip`. The
   * list must come from a codec that validated it; it is not checked again.
   */
  writeHeadRaw?(status: number, raw: readonly string[], skip: ReadonlySet<string>): this;
  write(chunk: Buffer): boolean;
  /** Ends the body; `trailers` follow it (HTTP/2 trailers, HTTP/1.1 chunked trailers). */
  end(chunk?: Buffer | string, trailers?: OutgoingHeaders): void;
  /** Abandons the exchange: the client sees a reset (HTTP/2) or a closed connection (HTTP/1.1). */
  destroy(): void;
  /** Calls back once the client can take more after `write` returned false. */
  onDrain(listener: () => void): void;
  once(event: 'close', listener: () => void): this;
}

/** gRPC request: content-type `application/grpc` or `application/grpc+…`. */
export function isGrpc(req: ServerRequest): boolean {
  const ct = req.headers['content-type'];
  return ct !== undefined && ct.startsWith('application/grpc');
}

/** Envoy's HTTP → gRPC status mapping for local replies (grpc's http-grpc-status-mapping). */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}
