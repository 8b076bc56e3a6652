/**
 * The downstream side of HTTP/2: a node:http2 server session over an already accepted (and, inbound,
 * TLS-terminated) connection, each stream adapted to the router's ServerRequest/ServerResponse. Malformed
 * frames and prefaces are nghttp2's to refuse (GOAWAY PROTOCOL_ERROR); they end that connection only.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import { H2_CONNECTION_HEADERS as NOT_IN_H2, appendHeaderLines, rawHeaderList } from '../upstream/index.js';
import type { OutgoingHeaders } from '../upstream/index.js';
import type { ServerRequest, ServerResponse } from './exchange.js';

export interface Http2ServerHooks {
  /** One stream; the handler must end or destroy the response. */
  request(req: ServerRequest, res: ServerResponse): void;
  /** A session that failed (protocol error, reset connection); it is already being torn down. */
  sessionError(err: Error): void;
  /** A connection without streams for this long is closed with GOAWAY. */
  idleTimeoutMs: number;
}

class Http2Request implements ServerRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly rawHeaders: string[];
  readonly protocol = 'HTTP/2';
  readonly streamedBody: boolean;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    h: http2.IncomingHttpHeaders,
  ) {
    this.method = String(h[':method'] ?? 'GET');
    this.url = String(h[':path'] ?? '/');
    const raw = rawHeaderList(h);
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) {
      const prev = headers[raw[i]!];
      headers[raw[i]!] = prev === undefined ? raw[i + 1]! : `${prev}, ${raw[i + 1]!}`;
    }
    const authority = h[':authority'] ?? h.host;
    if (authority !== undefined) {
      headers.host = String(authority);
      if (h.host === undefined) raw.push('host', String(authority));
    }
    this.headers = headers;
    this.rawHeaders = raw;
    this.streamedBody = !stream.endAfterHeaders && headers['content-length'] === undefined;
  }

  get readableEnded(): boolean {
    return this.stream.readableEnded;
  }
  pause(): this {
    this.stream.pause();
    return this;
  }
  resume(): this {
    this.stream.resume();
    return this;
  }
  on(event: 'data', listener: (chunk: Buffer) => void): this {
    this.stream.on(event, listener);
    return this;
  }
  once(event: 'end', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }
}

class Http2Response implements ServerResponse {
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  private head: http2.OutgoingHttpHeaders | undefined;
  private trailers: OutgoingHeaders | undefined;
  private closed = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly noBody: boolean,
  ) {
    stream.once('close', () => this.close());
  }

  writeHead(status: number, headers: OutgoingHeaders): this {
    if (this.head || this.headersSent) throw new Error('headers already written');
    // The same validation HTTP/1.1 applies, so a bad header op fails here and not inside nghttp2.
    appendHeaderLines('', headers, NOT_IN_H2);
    const out: http2.OutgoingHttpHeaders = { ':status': status };
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined || NOT_IN_H2.has(name)) continue;
      out[name] = typeof v === 'object' ? [...v] : v;
    }
    this.head = out;
    return this;
  }

  write(chunk: Buffer): boolean {
    if (this.writableEnded || this.closed || this.stream.destroyed) return false;
    try {
      this.flushHead();
      if (this.noBody || chunk.length === 0) return true;
      return this.stream.write(chunk);
    } catch {
      // The client reset the stream in between: this runs inside upstream callbacks, which must not throw.
      this.destroy();
      return false;
    }
  }

  end(chunk?: Buffer | string, trailers?: OutgoingHeaders): void {
    if (this.writableEnded || this.closed) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const body = !this.noBody && buf !== undefined && buf.length > 0;
    this.head ??= { ':status': 200 };
    this.writableEnded = true;
    try {
      if (!this.headersSent && !body && !trailers) {
        // Headers only: one HEADERS frame with END_STREAM (gRPC's trailers-only form).
        this.headersSent = true;
        this.stream.respond(this.head, { endStream: true });
      } else {
        this.trailers = trailers;
        this.flushHead();
        this.stream.end(body ? buf : undefined);
      }
    } catch {
      this.destroy();
      return;
    }
    this.writableFinished = true;
    this.close();
  }

  destroy(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }

  onDrain(listener: () => void): void {
    this.stream.once('drain', listener);
  }

  once(_event: 'close', listener: () => void): this {
    this.closeListeners.push(listener);
    return this;
  }

  private flushHead(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    // Trailers may follow any streamed body (the upstream's are known only at its end), so the stream
    // waits for them; without trailers an empty block ends it.
    this.stream.respond(this.head ?? { ':status': 200 }, { waitForTrailers: true, endStream: false });
    this.stream.once('wantTrailers', () => this.sendTrailers());
  }

  private sendTrailers(): void {
    if (this.stream.destroyed) return;
    const trailers = this.trailers;
    const out: http2.OutgoingHttpHeaders = {};
    if (trailers) for (const name in trailers) if (trailers[name] !== undefined && !NOT_IN_H2.has(name)) out[name] = trailers[name] as string;
    try {
      this.stream.sendTrailers(out);
    } catch {
      this.stream.close();
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners.splice(0)) l();
  }
}

/**
 * Serves HTTP/2 on `socket`; `buffered` are bytes already read off it (the preface a sniff consumed).
 * Returns the session so the caller can close it.
 */
export function serveHttp2(socket: net.Socket, buffered: Buffer, hooks: Http2ServerHooks): http2.ServerHttp2Session {
  if (buffered.length) socket.unshift(buffered);
  // A server-side TLSSocket made by hand (not by tls.Server) keeps `secureConnecting` after its handshake,
  // and node:http2 would wait for a 'secureConnect' that only client sockets emit.
  const tlsSocket = socket as net.Socket & { secureConnecting?: boolean; encrypted?: boolean };
  if (tlsSocket.encrypted && tlsSocket.secureConnecting) tlsSocket.secureConnecting = false;
  const session = http2.performServerHandshake(socket, { settings: { enablePush: false } });
  let streams = 0;
  session.on('error', (err) => hooks.sessionError(err));
  session.setTimeout(hooks.idleTimeoutMs, () => {
    if (streams === 0) session.close();
  });
  session.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    streams++;
    stream.once('close', () => streams--);
    const req = new Http2Request(stream, headers);
    const res = new Http2Response(stream, req.method === 'HEAD');
    hooks.request(req, res);
  });
  return session;
}
