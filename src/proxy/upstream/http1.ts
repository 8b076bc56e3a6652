/**
 * The upstream side of HTTP/1.1: a keep-alive connection pool per endpoint and a small response parser.
 * Node's http.Agent/ClientRequest cost more per request than the rest of the sidecar together (their
 * streams, events and header objects), so the sidecar writes request heads itself and parses response
 * framing (status line, headers, content-length / chunked / close-delimited bodies) with plain buffers.
 * One request at a time per connection, as Envoy's HTTP/1.1 codec does upstream (no pipelining).
 */
import { CONNECTED } from './socket.js';
import type { UpstreamSocket } from './socket.js';

/** Response heads larger than this are refused (Envoy's default max_request_headers_kb is 60). */
const MAX_HEAD_BYTES = 60 * 1024;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

export class ResponseParseError extends Error {
  readonly code = 'HPE_INVALID_RESPONSE';
}

/** What the caller of `request` hears back; exactly one of response/error starts, then end or error. */
export interface ExchangeEvents {
  /** The connection the request went out on (fresh or reused), once its head is written. */
  socket?(sock: UpstreamSocket, reused: boolean, handle: ExchangeHandle): void;
  /** The final (non-1xx) response head; names lowercased, values as received. */
  head(status: number, rawHeaders: string[]): void;
  /**
   * A 101 answer to an upgrade request (instead of `head`; nothing follows): the connection has left the pool
   * and is the caller's, with `rest`, the bytes the upstream sent after the head.
   */
  upgraded?(rawHeaders: string[], sock: UpstreamSocket, rest: Buffer): void;
  /**
   * A body chunk; `last` when it completes a content-length body (`end` follows at once), so the caller can
   * finish its own message in one write. Return false to pause the upstream until `resume()`.
   */
  data(chunk: Buffer, last: boolean): boolean;
  /** Trailers after the body (HTTP/2; HTTP/1.1 chunked trailers are dropped), before `end`. */
  trailers?(rawTrailers: string[]): void;
  end(): void;
  /**
   * Any failure: before the head (`headSeen` false) or mid-body. `stale` = a reused connection the peer had
   * closed; `remoteReset` = the peer reset this HTTP/2 stream while the connection stayed up;
   * `protocolError` = the peer's response broke HTTP/1.1 framing.
   */
  error(err: NodeJS.ErrnoException, info: { connected: boolean; headSeen: boolean; stale: boolean; remoteReset?: boolean; protocolError?: boolean }): void;
}

export interface ExchangeHandle {
  /** Stops the exchange: the connection is closed (it is mid-message and cannot be reused). */
  abort(): void;
  /** Continues a body paused by `data` returning false. */
  resume(): void;
  /** Streams a request body chunk (chunked framing unless the head carried content-length). */
  write(chunk: Buffer): boolean;
  /** Ends a streamed request body. */
  finish(): void;
  /** Called with the connection's `drain` when `write` returned false. */
  onDrain(cb: () => void): void;
}

export interface OutgoingRequest {
  /** The complete request head, ending with the blank line. */
  head: string;
  /** The whole body when known in advance (retries and mirrors replay it). */
  body?: Buffer | undefined;
  /** The body will come through `write`/`finish`; `chunked` frames it. */
  streaming?: { chunked: boolean } | undefined;
  /** HEAD requests: the response carries no body whatever its headers say. */
  noResponseBody: boolean;
  /** An upgrade request: a 101 hands the connection over (`ExchangeEvents.upgraded`). */
  upgrade?: boolean | undefined;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const STATUS_LINE = /^HTTP\/1\.[01] \d{3}(?: .*)?$/;
/** A header line: a token name, a colon, a value without CR, LF or NUL; a block is such lines CRLF-separated. */
const LINE = "[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\\r\\n\\0]*";
const HEADER_LINE = new RegExp(`^${LINE}$`);
const HEADER_BLOCK = new RegExp(`^${LINE}(?:\\r\\n${LINE})*$`);
const BAD_VALUE = /[\r\n\0]/;
// eslint-disable-next-line no-control-regex -- control characters and spaces are exactly what a path must not carry
const BAD_PATH = /[\u0000-\u0020\u007f-\uffff]/;

export type OutgoingHeaders = Readonly<Record<string, string | number | readonly string[] | undefined>>;

/**
 * Appends `name: value` lines for lowercase-named headers, skipping `skip`. Throws on what would corrupt the
 * message: a bad name, or CR/LF/NUL in a value (a header op or a peer's header).
 */
export function appendHeaderLines(head: string, headers: OutgoingHeaders, skip?: ReadonlySet<string>): string {
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || skip?.has(name)) continue;
    if (typeof v === 'object') for (const one of v) head = appendHeaderLine(head, name, one);
    else head = appendHeaderLine(head, name, typeof v === 'number' ? String(v) : v);
  }
  return head;
}

/**
 * Checks the header lines of a head from `from` on (one regular expression for the whole block, so parsers
 * need no per-line checks): returns the first line that is not `token:value` with a value free of CR, LF and
 * NUL, or undefined when all are.
 */
export function invalidHeaderLine(head: string, from: number): string | undefined {
  const block = from === 0 ? head : head.slice(from);
  if (HEADER_BLOCK.test(block)) return undefined;
  const lines = block.split('\r\n');
  return lines.find((l) => !HEADER_LINE.test(l)) ?? lines[0]!;
}

/**
 * The header lines of a head from `from` on, which invalidHeaderLine has passed, as a name/value list: names
 * lowercased, values without the optional whitespace around them.
 */
export function headerList(head: string, from: number): string[] {
  const raw: string[] = [];
  for (let pos = from; pos < head.length; ) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const c = head.indexOf(':', pos);
    raw.push(head.slice(pos, c).toLowerCase(), fieldValue(head, c + 1, end));
    pos = end + 2;
  }
  return raw;
}

/** A header line's value between `from` and `to`, without the optional whitespace (SP, HTAB) around it. */
function fieldValue(head: string, from: number, to: number): string {
  while (from < to && (head.charCodeAt(from) === 32 || head.charCodeAt(from) === 9)) from++;
  while (to > from && (head.charCodeAt(to - 1) === 32 || head.charCodeAt(to - 1) === 9)) to--;
  return head.slice(from, to);
}

/** Appends one `name: value` line; throws on a bad name or CR/LF/NUL in the value. */
export function appendHeaderLine(head: string, name: string, value: string): string {
  if (!TOKEN.test(name)) throw new Error(`invalid header name ${JSON.stringify(name)}`);
  if (BAD_VALUE.test(value)) throw new Error(`invalid value for header "${name}"`);
  return head + name + ': ' + value + '\r\n';
}

/** Throws on a method that is not a token or a path with characters that must be escaped. */
export function checkRequestTarget(method: string, path: string): void {
  if (!TOKEN.test(method)) throw new Error(`invalid method ${JSON.stringify(method)}`);
  if (BAD_PATH.test(path)) throw new Error('request path contains unescaped characters');
}

/** The request head for headers the router assembled; throws on a bad method or path as well. */
export function buildRequestHead(method: string, path: string, headers: OutgoingHeaders, chunked: boolean): string {
  checkRequestTarget(method, path);
  let head = appendHeaderLines(`${method} ${path} HTTP/1.1\r\n`, headers);
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  return head + '\r\n';
}

/**
 * Head and body as one buffer: one write, and under TLS one record instead of two (a writev of a string
 * and a buffer is encrypted piece by piece).
 */
export function joinHead(head: string, body: Buffer): Buffer {
  const n = Buffer.byteLength(head, 'latin1');
  const out = Buffer.allocUnsafe(n + body.length);
  out.write(head, 0, 'latin1');
  body.copy(out, n);
  return out;
}

/** The size in a chunk-size line (extensions ignored), or -1 when it is not 1–8 hex digits. */
export function chunkSize(line: string): number {
  const semi = line.indexOf(';');
  const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
  return /^[0-9a-fA-F]{1,8}$/.test(hex) ? parseInt(hex, 16) : -1;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'eof' | 'idle' | 'upgraded';

/** One pooled upstream connection. */
export class Http1Connection {
  requests = 0;
  /** False once the connection must not carry another request. */
  reusable = true;
  private state: State = 'idle';
  private buf: Buffer | undefined;
  private remaining = 0;
  private events: ExchangeEvents | undefined;
  private noBody = false;
  private upgrade = false;
  /** The 101 head, kept for the hand-over. */
  private upgradeHead: string[] = [];
  private headSeen = false;
  private reused = false;
  private closed = false;

  constructor(
    readonly sock: UpstreamSocket,
    private readonly release: (conn: Http1Connection) => void,
  ) {
    sock.on('data', this.onData);
    sock.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
    // The idle timeout stays armed for the connection's life (re-arming it twice per request costs more
    // than the rest of the pool's bookkeeping); while a request is out it fires harmlessly.
    sock.on('timeout', () => {
      if (!this.events && sock[CONNECTED]) sock.destroy();
    });
    sock.on('close', () => {
      this.closed = true;
      if (this.state === 'eof') return this.complete();
      if (this.events) this.fail(Object.assign(new Error('upstream connection closed'), { code: 'ECONNRESET' }));
    });
  }

  /** Closed, or half-closed by the peer (its FIN arrives before our side's close completes). */
  get isClosed(): boolean {
    return this.closed || this.sock.destroyed || !this.sock.readable || !this.sock.writable;
  }

  send(req: OutgoingRequest, events: ExchangeEvents, reused: boolean): ExchangeHandle {
    this.requests++;
    this.events = events;
    this.noBody = req.noResponseBody;
    this.upgrade = req.upgrade === true;
    this.headSeen = false;
    this.state = 'head';
    this.reused = reused;
    const chunked = req.streaming?.chunked ?? false;
    if (req.body && req.body.length > 0) {
      this.sock.write(joinHead(req.head, req.body));
    } else {
      this.sock.write(req.head, 'latin1');
    }
    const handle = new Http1Exchange(this, events, chunked);
    events.socket?.(this.sock, reused, handle);
    return handle;
  }

  /** @internal Ends the exchange `events` early (Http1Exchange.abort): the connection cannot be reused. */
  abort(events: ExchangeEvents): void {
    if (this.events !== events) return;
    this.events = undefined;
    this.reusable = false;
    this.sock.destroy();
  }

  private fail(err: NodeJS.ErrnoException): void {
    const events = this.events;
    this.events = undefined;
    this.reusable = false;
    if (!this.sock.destroyed) this.sock.destroy();
    if (!events) return;
    const stale = this.reused && !this.headSeen && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
    events.error(err, { connected: this.sock[CONNECTED] === true, headSeen: this.headSeen, stale, protocolError: err instanceof ResponseParseError });
  }

  private complete(): void {
    const events = this.events;
    this.events = undefined;
    this.state = 'idle';
    if (this.closed) this.reusable = false;
    events?.end();
    this.release(this);
  }

  private readonly onData = (d: Buffer): void => {
    if (!this.events) {
      // Bytes while idle (or after an abort): the peer broke framing; this connection is done.
      this.reusable = false;
      this.sock.destroy();
      return;
    }
    const buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    this.buf = undefined;
    const events = this.events;
    let pos = 0;
    try {
      while (pos < buf.length && this.events === events) {
        switch (this.state) {
          case 'head': {
            const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
            if (end < 0) {
              if (buf.length - pos > MAX_HEAD_BYTES) throw new ResponseParseError('response headers too large');
              this.buf = buf.subarray(pos);
              return;
            }
            const headEnd = end + 4;
            this.parseHead(buf.toString('latin1', pos, end), events);
            pos = headEnd;
            // parseHead may have switched the state.
            if ((this.state as State) === 'upgraded') return this.handOver(buf.subarray(pos), events);
            break;
          }
          case 'length': {
            const n = Math.min(this.remaining, buf.length - pos);
            const chunk = buf.subarray(pos, pos + n);
            pos += n;
            this.remaining -= n;
            const more = events.data(chunk, this.remaining === 0);
            if (this.remaining === 0) this.complete();
            else if (more === false) this.sock.pause();
            break;
          }
          case 'eof': {
            const chunk = pos === 0 ? buf : buf.subarray(pos);
            pos = buf.length;
            if (events.data(chunk, false) === false) this.sock.pause();
            break;
          }
          case 'chunk-size': {
            const eol = buf.indexOf(CRLF, pos);
            if (eol < 0) {
              if (buf.length - pos > 1024) throw new ResponseParseError('chunk size line too long');
              this.buf = buf.subarray(pos);
              return;
            }
            const size = chunkSize(buf.toString('latin1', pos, eol));
            if (size < 0) throw new ResponseParseError(`invalid chunk size line ${JSON.stringify(buf.toString('latin1', pos, Math.min(eol, pos + 20)))}`);
            this.remaining = size;
            pos = eol + 2;
            this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
            break;
          }
          case 'chunk-data': {
            const n = Math.min(this.remaining, buf.length - pos);
            const chunk = buf.subarray(pos, pos + n);
            pos += n;
            this.remaining -= n;
            if (this.remaining === 0) this.state = 'chunk-crlf';
            if (events.data(chunk, false) === false) this.sock.pause();
            break;
          }
          case 'chunk-crlf': {
            if (buf.length - pos < 2) {
              this.buf = buf.subarray(pos);
              return;
            }
            if (buf[pos] !== 13 || buf[pos + 1] !== 10) throw new ResponseParseError('missing CRLF after chunk data');
            pos += 2;
            this.state = 'chunk-size';
            break;
          }
          case 'trailers': {
            // Trailers are dropped (the sidecar does not forward them); the message ends at the blank line.
            const eol = buf.indexOf(CRLF, pos);
            if (eol < 0) {
              if (buf.length - pos > MAX_HEAD_BYTES) throw new ResponseParseError('trailers too large');
              this.buf = buf.subarray(pos);
              return;
            }
            const empty = eol === pos;
            pos = eol + 2;
            if (empty) this.complete();
            break;
          }
          case 'idle':
            throw new ResponseParseError('data after the response ended');
        }
      }
      if (pos < buf.length && this.events !== events) {
        // Bytes beyond the response (an unsolicited extra response): never trust this connection again.
        this.reusable = false;
        this.sock.destroy();
      }
    } catch (err) {
      this.fail(err as NodeJS.ErrnoException);
    }
  };

  /** The upstream switched protocols: the socket leaves HTTP (and the pool, which never sees it again). */
  private handOver(rest: Buffer, events: ExchangeEvents): void {
    this.events = undefined;
    this.reusable = false;
    this.sock.off('data', this.onData);
    // The pool's idle timeout must not close a tunnel; the tunnel applies its own.
    this.sock.setTimeout(0);
    events.upgraded!(this.upgradeHead, this.sock, rest);
  }

  private parseHead(head: string, events: ExchangeEvents): void {
    const eol = head.indexOf('\r\n');
    const statusLine = eol < 0 ? head : head.slice(0, eol);
    // test(), not exec(): the fields sit at fixed offsets, so no match array is needed.
    if (!STATUS_LINE.test(statusLine)) throw new ResponseParseError(`invalid status line ${JSON.stringify(statusLine.slice(0, 80))}`);
    const status = (statusLine.charCodeAt(9) - 48) * 100 + (statusLine.charCodeAt(10) - 48) * 10 + (statusLine.charCodeAt(11) - 48);
    const http10 = statusLine.charCodeAt(7) === 48; /* 0 */
    let length = -1;
    let chunked = false;
    let close = http10;
    if (eol >= 0) {
      const bad = invalidHeaderLine(head, eol + 2);
      if (bad !== undefined) throw new ResponseParseError(`invalid header line ${JSON.stringify(bad.slice(0, 80))}`);
    }
    const raw = eol < 0 ? [] : headerList(head, eol + 2);
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      switch (name.length) {
        case 10:
          if (name === 'connection') {
            const v = value.toLowerCase();
            if (v.includes('close')) close = true;
            else if (v.includes('keep-alive')) close = false;
          }
          break;
        case 14:
          if (name === 'content-length') {
            if (!/^\d+$/.test(value)) throw new ResponseParseError(`invalid content-length ${JSON.stringify(value)}`);
            const n = Number(value);
            if (length >= 0 && n !== length) throw new ResponseParseError('conflicting content-length headers');
            length = n;
          }
          break;
        case 17:
          if (name === 'transfer-encoding' && value.toLowerCase().endsWith('chunked')) chunked = true;
          break;
      }
    }
    if (status === 101 && this.upgrade && events.upgraded) {
      this.headSeen = true;
      this.upgradeHead = raw;
      this.state = 'upgraded';
      return;
    }
    if (status < 200) {
      // 1xx (100 Continue, 103 Early Hints): informational, the real response follows.
      this.state = 'head';
      return;
    }
    if (close) this.reusable = false;
    this.headSeen = true;
    events.head(status, raw);
    if (this.events !== events) return;
    if (this.noBody || status === 204 || status === 304) return this.complete();
    if (chunked) this.state = 'chunk-size';
    else if (length >= 0) {
      if (length === 0) return this.complete();
      this.remaining = length;
      this.state = 'length';
    } else {
      this.reusable = false;
      this.state = 'eof';
      if (this.closed) this.complete();
    }
  }
}

/** The handle of one request on a connection: a class, not closures, since every request makes one. */
class Http1Exchange implements ExchangeHandle {
  constructor(
    private readonly conn: Http1Connection,
    private readonly events: ExchangeEvents,
    private readonly chunked: boolean,
  ) {}

  abort(): void {
    this.conn.abort(this.events);
  }

  resume(): void {
    this.conn.sock.resume();
  }

  write(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    const sock = this.conn.sock;
    if (!this.chunked) return sock.write(chunk);
    sock.cork();
    sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    sock.write(chunk);
    const ok = sock.write(CRLF);
    sock.uncork();
    return ok;
  }

  finish(): void {
    if (this.chunked && !this.conn.sock.destroyed) this.conn.sock.write(LAST_CHUNK);
  }

  onDrain(cb: () => void): void {
    this.conn.sock.once('drain', cb);
  }
}

export interface PoolLimits {
  maxConnections: number;
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
}

/** Keep-alive connections to one endpoint, most recently used first; requests beyond the limit wait. */
export class Http1Pool {
  private readonly idle: Http1Connection[] = [];
  private readonly waiting: Array<(conn: Http1Connection | Error) => void> = [];
  /** Open connections, idle or busy (what maxConnections bounds). */
  private readonly conns = new Set<Http1Connection>();
  private retired = false;

  constructor(
    /** Opens a connection whose socket timeout becomes `idleTimeoutMs` once connected. */
    private readonly connect: (idleTimeoutMs: number) => UpstreamSocket,
    private limits: PoolLimits,
    private readonly counters?: { overflow: number },
  ) {}

  setLimits(limits: PoolLimits): void {
    if (limits.idleTimeoutMs !== this.limits.idleTimeoutMs) for (const c of this.conns) if (c.sock[CONNECTED]) c.sock.setTimeout(limits.idleTimeoutMs);
    this.limits = limits;
  }

  /** Sends one request on a pooled or new connection (or after one frees up). */
  request(req: OutgoingRequest, events: ExchangeEvents): ExchangeHandle {
    const conn = this.take() ?? (this.conns.size < this.limits.maxConnections ? this.fresh() : undefined);
    if (conn) return conn.send(req, events, conn.requests > 0);
    // Envoy counts upstream_cx_overflow when the breaker stops a pool from opening a connection.
    if (this.counters) this.counters.overflow++;
    let handle: ExchangeHandle | undefined;
    let aborted = false;
    this.waiting.push((c) => {
      if (c instanceof Error) return events.error(c, { connected: false, headSeen: false, stale: false });
      if (aborted) return this.put(c);
      handle = c.send(req, events, c.requests > 0);
    });
    return {
      abort: () => {
        aborted = true;
        handle?.abort();
      },
      resume: () => handle?.resume(),
      write: (chunk) => handle?.write(chunk) ?? false,
      finish: () => handle?.finish(),
      onDrain: (cb) => (handle ? handle.onDrain(cb) : queueMicrotask(cb)),
    };
  }

  /** No new requests: idle connections close now, busy ones when their response ends. */
  retire(): void {
    this.retired = true;
    this.dropIdle();
    for (const w of this.waiting.splice(0)) w(Object.assign(new Error('endpoint removed'), { code: 'ECONNREFUSED' }));
  }

  /** Closes idle connections (new ones pick up rotated credentials); busy ones finish first. */
  dropIdle(): void {
    for (const c of this.idle.splice(0)) c.sock.destroy();
  }

  private take(): Http1Connection | undefined {
    while (this.idle.length) {
      const c = this.idle.pop()!;
      if (!c.isClosed) return c;
    }
    return undefined;
  }

  private fresh(): Http1Connection {
    const sock = this.connect(this.limits.idleTimeoutMs);
    const conn = new Http1Connection(sock, (c) => this.put(c));
    this.conns.add(conn);
    sock.once('close', () => {
      this.conns.delete(conn);
      const i = this.idle.indexOf(conn);
      if (i >= 0) this.idle.splice(i, 1);
      this.next();
    });
    return conn;
  }

  private put(conn: Http1Connection): void {
    const max = this.limits.maxRequestsPerConnection;
    if (this.retired || !conn.reusable || conn.isClosed || (max > 0 && conn.requests >= max)) {
      conn.sock.destroy();
      return;
    }
    const w = this.waiting.shift();
    if (w) return w(conn);
    conn.sock.resume();
    this.idle.push(conn);
  }

  private next(): void {
    if (this.waiting.length && this.conns.size < this.limits.maxConnections && !this.retired) {
      const w = this.waiting.shift()!;
      w(this.fresh());
    }
  }
}
