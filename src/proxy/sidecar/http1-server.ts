/**
 * The downstream side of HTTP/1.1: parses requests off a (possibly TLS) connection and writes responses,
 * one exchange at a time (pipelined requests wait their turn). Node's http.Server spends more per request
 * on its stream objects than the sidecar's routing does, so the router gets two small objects instead:
 * a request (head plus a pausable body) and a response writer that frames the body itself
 * (content-length, chunked, or close-delimited for HTTP/1.0) and sends small responses in one write.
 */
import type net from 'node:net';
import { appendHeaderLines, chunkSize, headerList, invalidHeaderLine, joinHead } from '../upstream/index.js';
import type { OutgoingHeaders } from '../upstream/index.js';
import type { ServerRequest, ServerResponse } from './exchange.js';

/** Envoy's default max_request_headers_kb. */
const MAX_HEAD_BYTES = 60 * 1024;
/** Unconsumed body bytes a finished exchange may skip to keep the connection; larger ones close it. */
const MAX_DISCARD = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
/** The HTTP/2 connection preface (RFC 9113 §3.4): a prior-knowledge h2c client starts with it. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/1\.[01]$/;
const STATUS_TEXT: Record<number, string> = {
  100: 'Continue', 101: 'Switching Protocols', 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content', 301: 'Moved Permanently',
  302: 'Found', 303: 'See Other', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request',
  401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict',
  413: 'Payload Too Large', 418: "I'm a Teapot", 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export class RequestParseError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/**
 * A request as the router sees it; the body arrives as 'data' events (after `resume()` if paused), then 'end'.
 * Listeners are kept in plain lists rather than an EventEmitter: every request makes one of these.
 */
export class DownstreamRequest implements ServerRequest {
  /** True once 'end' has been emitted, as on Node's IncomingMessage. */
  readableEnded = false;
  /**
   * The lowercased protocol of an HTTP/1.1 upgrade (`Connection: upgrade` + `Upgrade`, no body), h2c excepted:
   * the router may tunnel it (`DownstreamResponse.switchProtocols`). Undefined for ordinary requests.
   */
  upgrade: string | undefined;
  readonly protocol: string;
  private bodyComplete = false;
  private paused = false;
  private queued: Buffer[] = [];
  private dataListeners: Array<(chunk: Buffer) => void> | undefined;
  private endListeners: Array<() => void> | undefined;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly httpVersion: '1.0' | '1.1',
    /** Lowercase names; repeated headers joined with ', ' (cookies with '; '). */
    readonly headers: Readonly<Record<string, string>>,
    /** Name, value, name, value… as received, names lowercased. */
    readonly rawHeaders: readonly string[],
    readonly streamedBody: boolean,
    private readonly flow: { pause(): void; resume(): void },
  ) {
    this.protocol = httpVersion === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0';
  }

  on(_event: 'data', listener: (chunk: Buffer) => void): this {
    (this.dataListeners ??= []).push(listener);
    return this;
  }

  once(_event: 'end', listener: () => void): this {
    (this.endListeners ??= []).push(listener);
    return this;
  }

  /** @internal Drops the body listeners (the rest of the body is skipped). */
  removeDataListeners(): void {
    this.dataListeners = undefined;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  /** Delivers what was held back (while paused or before anyone listened) and lets the socket flow again. */
  resume(): this {
    this.paused = false;
    while (this.queued.length && !this.paused) this.emitData(this.queued.shift()!);
    if (this.paused) return this;
    if (this.bodyComplete) this.emitEnd();
    else this.flow.resume();
    return this;
  }

  /** @internal */
  push(chunk: Buffer): void {
    if (this.paused || this.queued.length || !this.dataListeners) {
      this.queued.push(chunk);
      this.flow.pause();
    } else this.emitData(chunk);
  }

  /** @internal */
  finishBody(): void {
    this.bodyComplete = true;
    // Nobody listening yet (a request without a body, read later or never): 'end' waits for resume().
    if (!this.queued.length && !this.paused && this.endListeners) this.emitEnd();
  }

  private emitData(chunk: Buffer): void {
    if (this.dataListeners) for (const l of this.dataListeners) l(chunk);
  }

  private emitEnd(): void {
    if (this.readableEnded) return;
    this.readableEnded = true;
    const listeners = this.endListeners;
    this.endListeners = undefined;
    if (listeners) for (const l of listeners) l();
  }
}

/** The response writer; the same shape the router used from http.ServerResponse ('close' its only event). */
export class DownstreamResponse implements ServerResponse {
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  private chunked = false;
  private noBody = false;
  private closed = false;
  private head = '';
  private closeListeners: Array<() => void> | undefined;

  constructor(
    private readonly conn: Http1ServerConnection,
    private readonly sock: net.Socket,
    private readonly req: DownstreamRequest,
  ) {}

  once(_event: 'close', listener: () => void): this {
    (this.closeListeners ??= []).push(listener);
    return this;
  }

  /** Validates and stores the head; it goes out with the first body bytes. Throws on invalid headers. */
  writeHead(status: number, headers: OutgoingHeaders): this {
    if (this.headersSent || this.head) throw new Error('headers already written');
    const head = appendHeaderLines(statusLine(status), headers, HOP_BY_HOP_OUT);
    if (headers.connection === 'close') this.conn.keepAlive = false;
    return this.finishHead(status, head, headers['content-length'] !== undefined, headers.date !== undefined);
  }

  /**
   * writeHead from a name/value list as received (an upstream's response head) when there is nothing to
   * change in it: no header object is built in between. Lowercase names in `skip` are dropped. The list must
   * come from a codec that validated it (names are tokens, values free of CR, LF and NUL): it is not checked
   * again.
   */
  writeHeadRaw(status: number, raw: readonly string[], skip: ReadonlySet<string>): this {
    if (this.headersSent || this.head) throw new Error('headers already written');
    let head = statusLine(status);
    let hasLength = false;
    let hasDate = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (skip.has(name) || HOP_BY_HOP_OUT.has(name)) continue;
      head += name + ': ' + raw[i + 1]! + '\r\n';
      if (name === 'content-length') hasLength = true;
      else if (name === 'date') hasDate = true;
    }
    return this.finishHead(status, head, hasLength, hasDate);
  }

  private finishHead(status: number, head: string, hasLength: boolean, hasDate: boolean): this {
    const noBody = this.req.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (!hasDate) head += `date: ${httpDate()}\r\n`;
    if (!noBody && !hasLength) {
      if (this.req.httpVersion === '1.1') {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else this.conn.keepAlive = false;
    }
    if (!this.conn.keepAlive) head += 'connection: close\r\n';
    else if (this.req.httpVersion === '1.0') head += 'connection: keep-alive\r\n';
    this.noBody = noBody;
    this.head = head + '\r\n';
    return this;
  }

  write(chunk: Buffer): boolean {
    if (this.writableEnded || this.closed) return false;
    if (!this.head) this.writeHead(200, {});
    if (!this.headersSent) {
      this.headersSent = true;
      if (this.noBody || chunk.length === 0) return this.sock.write(this.head, 'latin1');
      if (!this.chunked) return this.sock.write(joinHead(this.head, chunk));
      this.sock.cork();
      this.sock.write(this.head, 'latin1');
      const ok = this.body(chunk);
      this.sock.uncork();
      return ok;
    }
    if (this.noBody || chunk.length === 0) return true;
    return this.body(chunk);
  }

  end(chunk?: Buffer | string, trailers?: OutgoingHeaders): void {
    if (this.writableEnded || this.closed) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.head) this.writeHead(200, buf ? { 'content-length': buf.length } : { 'content-length': 0 });
    if (!this.headersSent && !this.chunked && !this.noBody && buf && buf.length) {
      // The common case, a whole response at once: one write, no cork.
      this.headersSent = true;
      this.writableEnded = true;
      this.sock.write(joinHead(this.head, buf));
      this.writableFinished = true;
      this.done();
      return;
    }
    this.sock.cork();
    if (buf && buf.length) this.write(buf);
    else if (!this.headersSent) {
      this.headersSent = true;
      this.sock.write(this.head, 'latin1');
    }
    this.writableEnded = true;
    if (this.chunked) {
      if (trailers) this.sock.write(trailerBlock(trailers), 'latin1');
      else this.sock.write(LAST_CHUNK);
    }
    this.sock.uncork();
    this.writableFinished = true;
    this.done();
  }

  destroy(): void {
    if (this.closed) return;
    this.conn.keepAlive = false;
    this.sock.destroy();
  }

  /**
   * Sends a 101 with `headers` (plus `connection: upgrade`) and hands the connection over: no more HTTP is
   * parsed on it. Returns the socket and the bytes the client sent after its request head. Throws on
   * invalid headers, before anything is written.
   */
  switchProtocols(headers: OutgoingHeaders): { socket: net.Socket; head: Buffer } {
    if (this.headersSent || this.head) throw new Error('headers already written');
    const head = appendHeaderLines('HTTP/1.1 101 Switching Protocols\r\n', headers, HOP_BY_HOP_OUT) + 'connection: upgrade\r\n\r\n';
    this.headersSent = true;
    this.writableEnded = true;
    this.writableFinished = true;
    this.sock.write(head, 'latin1');
    return { socket: this.sock, head: this.conn.detach() };
  }

  /** @internal The connection went away before or after the response ended (or a tunnel closed). */
  closedByPeer(): void {
    if (this.closed) return;
    this.closed = true;
    this.emitClose();
  }

  private emitClose(): void {
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    if (listeners) for (const l of listeners) l();
  }

  private body(chunk: Buffer): boolean {
    if (!this.chunked) return this.sock.write(chunk);
    this.sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    this.sock.write(chunk);
    return this.sock.write(CRLF);
  }

  private done(): void {
    this.closed = true;
    this.emitClose();
    this.conn.exchangeDone(this);
  }

  /** Calls back once the connection can take more after `write` returned false. */
  onDrain(listener: () => void): void {
    this.sock.once('drain', listener);
  }
}

const HOP_BY_HOP_OUT = new Set(['connection', 'transfer-encoding', 'keep-alive']);

const statusLine = (status: number): string => `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Unknown'}\r\n`;

/** Whether a comma-separated header value (lowercased) lists `token`. */
function hasToken(value: string, token: string): boolean {
  return value.split(',').some((t) => t.trim() === token);
}

/** The last chunk with trailer fields; a trailer that cannot be sent is dropped rather than the response. */
function trailerBlock(trailers: OutgoingHeaders): string {
  try {
    return appendHeaderLines('0\r\n', trailers) + '\r\n';
  } catch {
    return '0\r\n\r\n';
  }
}

let dateCache = '';
let dateSecond = 0;
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateCache = new Date(now).toUTCString();
  }
  return dateCache;
}

export interface ServerHooks {
  /** One request; the handler must end or destroy the response. */
  request(req: DownstreamRequest, res: DownstreamResponse): void;
  /** A request that could not be parsed: the 400/431 has been sent and the connection is closing. */
  parseError(err: RequestParseError): void;
  /** Keep-alive idle and header timeouts. */
  idleTimeoutMs: number;
  /**
   * Set when the connection may also be HTTP/2 (codec AUTO): a client opening with the HTTP/2 preface is
   * handed over with the bytes read so far, and this object lets go of the socket.
   */
  http2?: ((buffered: Buffer) => void) | undefined;
}

type BodyState = { kind: 'none' } | { kind: 'length'; remaining: number } | { kind: 'chunked'; phase: 'size' | 'data' | 'crlf' | 'trailers'; remaining: number };

/** Serves HTTP/1.1 on one downstream connection until either side closes it. */
export class Http1ServerConnection {
  keepAlive = true;
  private buf: Buffer | undefined;
  private unparsed: Buffer | undefined;
  private req: DownstreamRequest | undefined;
  private res: DownstreamResponse | undefined;
  private body: BodyState = { kind: 'none' };
  private responded = false;
  private discarding = false;
  private dead = false;
  private readonly listeners: Record<'data' | 'close' | 'timeout' | 'end', (arg: Buffer) => void>;
  /** Until the first bytes rule the HTTP/2 preface out. */
  private sniff: boolean;

  constructor(
    private readonly sock: net.Socket,
    private readonly hooks: ServerHooks,
  ) {
    this.sniff = hooks.http2 !== undefined;
    this.listeners = {
      data: (d: Buffer) => this.onData(d),
      close: () => {
        this.dead = true;
        this.res?.closedByPeer();
      },
      // Armed once for the connection's life: re-arming it around every request costs two timer objects per
      // request. It fires harmlessly while a request is in flight; any read or write re-arms it.
      timeout: () => {
        if (!this.req) sock.destroy();
      },
      // Listeners allow half-open connections (tcp_proxy needs them); for HTTP a client's FIN ends the
      // connection once the exchange in flight, if any, is answered.
      end: () => {
        this.keepAlive = false;
        if (!this.req || this.responded) sock.end();
      },
    };
    for (const [event, fn] of Object.entries(this.listeners)) sock.on(event, fn);
    sock.setTimeout(hooks.idleTimeoutMs);
  }

  /** @internal Stops serving HTTP on this connection (it became a tunnel); returns the unparsed bytes. */
  detach(): Buffer {
    this.release();
    const rest = this.buf ?? this.unparsed ?? Buffer.alloc(0);
    this.buf = undefined;
    this.unparsed = undefined;
    this.req = undefined;
    this.res = undefined;
    return rest;
  }

  /** Compares the first bytes with the HTTP/2 preface: true when handed over, or waiting for more to tell. */
  private sniffed(buf: Buffer): boolean {
    const n = Math.min(buf.length, H2_PREFACE.length);
    if (buf.compare(H2_PREFACE, 0, n, 0, n) !== 0) {
      this.sniff = false;
      return false;
    }
    if (n < H2_PREFACE.length) {
      this.buf = buf;
      return true;
    }
    this.release();
    this.sock.pause();
    this.hooks.http2!(buf);
    return true;
  }

  /** Lets go of the socket: no listeners, no idle timeout, nothing more parsed. */
  private release(): void {
    this.dead = true;
    for (const [event, fn] of Object.entries(this.listeners)) this.sock.off(event, fn);
    this.sock.setTimeout(0);
  }

  /** @internal */
  exchangeDone(res: DownstreamResponse): void {
    if (res !== this.res) return;
    this.responded = true;
    if (!this.keepAlive) {
      this.sock.end();
      return;
    }
    if (this.body.kind !== 'none') {
      // The handler answered without reading the whole body: skip a small rest, close on a large one.
      if (this.body.kind === 'length' && this.body.remaining <= MAX_DISCARD) this.discarding = true;
      else {
        this.keepAlive = false;
        this.sock.end();
        return;
      }
      this.req!.removeDataListeners();
      this.sock.resume();
      return;
    }
    this.next();
  }

  private next(): void {
    this.req = undefined;
    this.res = undefined;
    this.responded = false;
    this.discarding = false;
    this.sock.resume();
    if (this.buf && !this.dead) {
      // A pipelined request: parse it after the caller that ended the previous response has returned.
      queueMicrotask(() => {
        const b = this.buf;
        this.buf = undefined;
        if (b && !this.dead) this.onData(b);
      });
    }
  }

  private onData(d: Buffer): void {
    let buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    this.buf = undefined;
    if (this.sniff && this.sniffed(buf)) return;
    try {
      while (buf.length && !this.dead) {
        if (!this.req) {
          const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw new RequestParseError('request headers too large', 431);
            this.buf = buf;
            return;
          }
          if (end > MAX_HEAD_BYTES) throw new RequestParseError('request headers too large', 431);
          const head = buf.toString('latin1', 0, end);
          buf = buf.subarray(end + 4);
          // A handler that switches protocols at once takes these bytes with the socket.
          this.unparsed = buf;
          this.begin(head);
          this.unparsed = undefined;
          continue;
        }
        if (this.body.kind === 'none') {
          // The next pipelined request waits until this exchange is done.
          this.buf = buf;
          if (buf.length > MAX_HEAD_BYTES) this.sock.pause();
          return;
        }
        buf = this.consumeBody(buf);
      }
    } catch (err) {
      this.refuse(err instanceof RequestParseError ? err : new RequestParseError((err as Error).message));
    }
  }

  private begin(head: string): void {
    // Tolerate stray CRLFs between requests, as RFC 9112 allows.
    let start = 0;
    while (head.startsWith('\r\n', start)) start += 2;
    const eol = head.indexOf('\r\n', start);
    const requestLine = head.slice(start, eol < 0 ? head.length : eol);
    if (!REQUEST_LINE.test(requestLine)) throw new RequestParseError(`invalid request line ${JSON.stringify(requestLine.slice(0, 80))}`);
    // Method, one space, a target without spaces, one space, `HTTP/1.x` (9 characters): split by position.
    const sp = requestLine.indexOf(' ');
    const method = requestLine.slice(0, sp);
    const target = requestLine.slice(sp + 1, requestLine.length - 9);
    const http10 = requestLine.charCodeAt(requestLine.length - 1) === 48; /* 0 */
    if (eol >= 0) {
      const bad = invalidHeaderLine(head, eol + 2);
      if (bad !== undefined) throw new RequestParseError(`invalid header line ${JSON.stringify(bad.slice(0, 80))}`);
    }
    const headers: Record<string, string> = {};
    const raw = eol < 0 ? [] : headerList(head, eol + 2);
    let length = -1;
    let chunked = false;
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i]!;
      const value = raw[i + 1]!;
      const prev = headers[k];
      headers[k] = prev === undefined ? value : `${prev}${k === 'cookie' ? '; ' : ', '}${value}`;
      if (k === 'content-length') {
        if (!/^\d+$/.test(value)) throw new RequestParseError(`invalid content-length ${JSON.stringify(value)}`);
        if (length >= 0 && Number(value) !== length) throw new RequestParseError('conflicting content-length headers');
        length = Number(value);
      } else if (k === 'transfer-encoding') {
        if (!value.toLowerCase().endsWith('chunked')) throw new RequestParseError(`unsupported transfer-encoding ${JSON.stringify(value)}`);
        chunked = true;
      }
    }
    // Both framings at once is how requests are smuggled past proxies: refused, as Envoy does.
    if (chunked && length >= 0) throw new RequestParseError('both content-length and transfer-encoding');
    const connection = headers.connection?.toLowerCase();
    this.keepAlive = http10 ? connection === 'keep-alive' : !connection?.includes('close');
    this.body = chunked ? { kind: 'chunked', phase: 'size', remaining: 0 } : length > 0 ? { kind: 'length', remaining: length } : { kind: 'none' };
    // What follows a CONNECT or upgrade head is not HTTP: unless it becomes a tunnel, the connection ends
    // with this exchange.
    const upgrade = !http10 && this.body.kind === 'none' && headers.upgrade !== undefined && connection !== undefined && hasToken(connection, 'upgrade') ? headers.upgrade.toLowerCase() : undefined;
    if (method === 'CONNECT' || (upgrade !== undefined && upgrade !== 'h2c')) this.keepAlive = false;
    const sock = this.sock;
    const req = new DownstreamRequest(method, target, http10 ? '1.0' : '1.1', headers, raw, chunked, sock);
    if (upgrade !== 'h2c') req.upgrade = upgrade;
    const res = new DownstreamResponse(this, sock, req);
    this.req = req;
    this.res = res;
    if (headers.expect?.toLowerCase() === '100-continue' && this.body.kind !== 'none') sock.write('HTTP/1.1 100 Continue\r\n\r\n');
    if (this.body.kind === 'none') req.finishBody();
    this.hooks.request(req, res);
  }

  /** Feeds body bytes to the request (or skips them after the response); returns what is left. */
  private consumeBody(buf: Buffer): Buffer {
    const b = this.body;
    const deliver = (chunk: Buffer): void => {
      if (!this.discarding) this.req!.push(chunk);
    };
    if (b.kind === 'length') {
      const n = Math.min(b.remaining, buf.length);
      deliver(buf.subarray(0, n));
      b.remaining -= n;
      if (b.remaining === 0) this.bodyDone();
      return buf.subarray(n);
    }
    if (b.kind !== 'chunked') return buf;
    switch (b.phase) {
      case 'size': {
        const eol = buf.indexOf(CRLF);
        if (eol < 0) {
          if (buf.length > 1024) throw new RequestParseError('chunk size line too long');
          this.buf = buf;
          return Buffer.alloc(0);
        }
        const size = chunkSize(buf.toString('latin1', 0, eol));
        if (size < 0) throw new RequestParseError(`invalid chunk size line ${JSON.stringify(buf.toString('latin1', 0, Math.min(eol, 20)))}`);
        b.remaining = size;
        b.phase = b.remaining === 0 ? 'trailers' : 'data';
        return buf.subarray(eol + 2);
      }
      case 'data': {
        const n = Math.min(b.remaining, buf.length);
        deliver(buf.subarray(0, n));
        b.remaining -= n;
        if (b.remaining === 0) b.phase = 'crlf';
        return buf.subarray(n);
      }
      case 'crlf': {
        if (buf.length < 2) {
          this.buf = buf;
          return Buffer.alloc(0);
        }
        if (buf[0] !== 13 || buf[1] !== 10) throw new RequestParseError('missing CRLF after chunk data');
        b.phase = 'size';
        return buf.subarray(2);
      }
      case 'trailers': {
        const eol = buf.indexOf(CRLF);
        if (eol < 0) {
          if (buf.length > MAX_HEAD_BYTES) throw new RequestParseError('trailers too large', 431);
          this.buf = buf;
          return Buffer.alloc(0);
        }
        if (eol === 0) this.bodyDone();
        return buf.subarray(eol + 2);
      }
    }
  }

  private bodyDone(): void {
    this.body = { kind: 'none' };
    if (this.discarding || this.responded) return this.next();
    this.req!.finishBody();
  }

  private refuse(err: RequestParseError): void {
    this.keepAlive = false;
    if (this.sock.writable && !this.res?.headersSent) {
      const body = STATUS_TEXT[err.status] ?? 'Bad Request';
      this.sock.end(`HTTP/1.1 ${err.status} ${body}\r\ncontent-length: ${body.length}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${body}`);
    } else this.sock.destroy();
    this.dead = true;
    this.hooks.parseError(err);
  }
}
