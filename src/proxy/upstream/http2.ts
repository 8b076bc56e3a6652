/**
 * The upstream side of HTTP/2: multiplexed sessions to one endpoint (node:http2 over the host's plain or
 * mTLS socket), as Envoy's HTTP/2 connection pool. A stream goes on the least busy session that still has
 * room under the peer's SETTINGS_MAX_CONCURRENT_STREAMS, else on a new session (up to the connection
 * limit), else it is queued by nghttp2 on the least busy one. Streams the peer refused without processing
 * (REFUSED_STREAM, or above a GOAWAY's last stream id) are re-sent on another session, as they are safe to
 * replay; idle sessions close after the cluster's idle timeout.
 */
import http2 from 'node:http2';
import { CONNECTED } from './socket.js';
import type { UpstreamSocket } from './socket.js';
import type { ExchangeEvents, ExchangeHandle, OutgoingHeaders, PoolLimits } from './http1.js';

/** Re-sends of one request after refusals before it fails as a reset. */
const MAX_RESENDS = 3;
const { NGHTTP2_REFUSED_STREAM } = http2.constants;
/** Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2); `te` survives only as `trailers`. */
export const H2_CONNECTION_HEADERS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

export interface Http2Request {
  method: string;
  path: string;
  /** Lowercase names; `host` becomes `:authority`. */
  headers: OutgoingHeaders;
  /** The whole body when known in advance; a replayable request is re-sent after a refusal. */
  body?: Buffer | undefined;
  /** The body will come through `write`/`finish`. */
  streaming: boolean;
  /** The caller wants gRPC-style trailers (`te: trailers` upstream). */
  trailers: boolean;
}

/** One session and the streams it carries. */
interface Session {
  session: http2.ClientHttp2Session;
  sock: UpstreamSocket;
  active: number;
  /** Streams ever sent, for max_requests_per_connection. */
  streams: number;
  /** No new streams: GOAWAY received, errored, or closing. */
  draining: boolean;
  connected: boolean;
}

/** The request headers in HTTP/2 form; throws on what node:http2 would refuse, before anything is sent. */
export function h2RequestHeaders(req: Http2Request): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {
    ':method': req.method,
    ':path': req.path,
    ':scheme': 'http',
    ':authority': String(req.headers.host ?? ''),
  };
  for (const name in req.headers) {
    const v = req.headers[name];
    if (v === undefined || name === 'host' || H2_CONNECTION_HEADERS.has(name)) continue;
    out[name] = typeof v === 'object' ? [...v] : String(v);
  }
  if (req.trailers) out.te = 'trailers';
  return out;
}

/** Name, value, name, value… of an HTTP/2 header block without its pseudo-headers. */
export function rawHeaderList(headers: http2.IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) raw.push(name, one);
    else raw.push(name, String(v));
  }
  return raw;
}

export class Http2Pool {
  private readonly sessions: Session[] = [];
  private retired = false;

  constructor(
    private readonly connect: () => UpstreamSocket,
    private limits: PoolLimits,
  ) {}

  setLimits(limits: PoolLimits): void {
    this.limits = limits;
  }

  /** Sessions open (each is one connection, for the cluster's connection accounting). */
  get sessionCount(): number {
    return this.sessions.length;
  }

  /** Sends one request on a stream; events as for HTTP/1.1, plus `trailers`. */
  request(req: Http2Request, events: ExchangeEvents): ExchangeHandle {
    let headers: http2.OutgoingHttpHeaders;
    try {
      headers = h2RequestHeaders(req);
    } catch (err) {
      queueMicrotask(() => events.error(err as NodeJS.ErrnoException, { connected: false, headSeen: false, stale: false }));
      return { abort() {}, resume() {}, write: () => false, finish() {}, onDrain() {} };
    }
    let stream: http2.ClientHttp2Stream | undefined;
    let aborted = false;
    let headSeen = false;
    let ended = false;
    let resends = 0;
    let wrote = false;
    let finished = false;
    let announced = false;
    const handle: ExchangeHandle = {
      abort: () => {
        aborted = true;
        stream?.close(http2.constants.NGHTTP2_CANCEL);
      },
      resume: () => stream?.resume(),
      write: (chunk) => {
        wrote = true;
        return stream ? stream.write(chunk) : false;
      },
      finish: () => {
        finished = true;
        stream?.end();
      },
      onDrain: (cb) => (stream ? stream.once('drain', cb) : queueMicrotask(cb)),
    };

    const send = (): void => {
      if (aborted) return;
      if (this.retired) return events.error(Object.assign(new Error('endpoint removed'), { code: 'ECONNREFUSED' }), { connected: false, headSeen: false, stale: false });
      const s = this.pick();
      let st: http2.ClientHttp2Stream;
      try {
        st = s.session.request(headers, { endStream: !req.streaming && !req.body?.length });
      } catch (err) {
        // The session went away between the pick and now (GOAWAY, error): try another one.
        s.draining = true;
        if (resends++ < MAX_RESENDS) return send();
        return events.error(err as NodeJS.ErrnoException, { connected: s.connected, headSeen: false, stale: false });
      }
      stream = st;
      s.active++;
      // max_requests_per_connection: a session that carried its share takes no more and closes when idle.
      const max = this.limits.maxRequestsPerConnection;
      if (max > 0 && ++s.streams >= max) s.draining = true;
      s.session.setTimeout(0);
      if (!req.streaming && req.body?.length) st.end(req.body);
      else if (req.streaming && finished) st.end();
      st.on('error', () => {});
      let localReset = false;
      // As in the HTTP/1.1 pool, a throwing callback fails this exchange, never the process.
      const guard =
        <A extends unknown[]>(fn: (...args: A) => void) =>
        (...args: A): void => {
          try {
            fn(...args);
          } catch {
            localReset = true;
            st.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          }
        };
      st.on(
        'response',
        guard((h: http2.IncomingHttpHeaders) => {
          const status = Number(h[':status']);
          if (status < 200) return;
          headSeen = true;
          events.head(status, rawHeaderList(h));
        }),
      );
      st.on(
        'data',
        guard((chunk: Buffer) => {
          if (events.data(chunk, false) === false) st.pause();
        }),
      );
      st.on(
        'trailers',
        guard((h: http2.IncomingHttpHeaders) => events.trailers?.(rawHeaderList(h))),
      );
      st.on('end', () => (ended = true));
      st.once('close', () => {
        s.active--;
        this.idle(s);
        if (aborted) return;
        if (ended && headSeen && st.rstCode === http2.constants.NGHTTP2_NO_ERROR) return events.end();
        const refused = !headSeen && st.rstCode === NGHTTP2_REFUSED_STREAM;
        // Refused before processing: replay it elsewhere when the body can be replayed.
        if (refused && (!req.streaming || !wrote) && resends++ < MAX_RESENDS) {
          s.draining = true;
          stream = undefined;
          return send();
        }
        // RST_STREAM from the peer (Envoy's UR) as opposed to the connection going away (UC).
        const remoteReset = !localReset && st.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !s.session.destroyed;
        const err = Object.assign(new Error(refused ? 'upstream refused the stream' : `upstream stream reset (code ${st.rstCode})`), {
          code: refused ? 'EREFUSED_STREAM' : 'ECONNRESET',
        });
        events.error(err, { connected: s.connected, headSeen, stale: false, remoteReset });
      });
      if (!announced) {
        announced = true;
        events.socket?.(s.sock, s.active > 1 || s.connected, handle);
      }
    };
    send();
    return handle;
  }

  /** No new requests: idle sessions close now, busy ones when their last stream ends. */
  retire(): void {
    this.retired = true;
    for (const s of [...this.sessions]) {
      s.draining = true;
      this.idle(s);
    }
  }

  /** Closes sessions without streams (new ones pick up rotated credentials); busy ones drain first. */
  dropIdle(): void {
    for (const s of [...this.sessions]) if (s.active === 0) this.close(s);
  }

  private pick(): Session {
    let best: Session | undefined;
    for (const s of this.sessions) {
      if (s.draining || s.session.destroyed || s.session.closed) continue;
      if (!best || s.active < best.active) best = s;
    }
    const room = (s: Session): boolean => s.active < (s.session.remoteSettings.maxConcurrentStreams ?? 100);
    if (best && (room(best) || this.sessions.length >= this.limits.maxConnections)) return best;
    return this.open();
  }

  private open(): Session {
    const sock = this.connect();
    const session = http2.connect('http://upstream', { createConnection: () => sock, settings: { enablePush: false } });
    const s: Session = { session, sock, active: 0, streams: 0, draining: false, connected: false };
    this.sessions.push(s);
    const markConnected = (): void => {
      s.connected = sock[CONNECTED] === true;
    };
    session.once('connect', markConnected);
    session.on('error', () => (s.draining = true));
    session.on('goaway', () => {
      // Streams above the peer's last stream id close with REFUSED_STREAM and are re-sent from 'close'.
      s.draining = true;
      this.idle(s);
    });
    session.once('close', () => {
      s.draining = true;
      const i = this.sessions.indexOf(s);
      if (i >= 0) this.sessions.splice(i, 1);
    });
    session.on('timeout', () => {
      if (s.active === 0) this.close(s);
    });
    // A socket that fails before the session connects still reports through the streams' 'close'.
    sock.once('close', () => {
      markConnected();
      if (!session.destroyed) session.destroy();
    });
    return s;
  }

  private idle(s: Session): void {
    if (s.active > 0) return;
    if (s.draining || this.retired) this.close(s);
    else s.session.setTimeout(this.limits.idleTimeoutMs);
  }

  private close(s: Session): void {
    s.draining = true;
    const i = this.sessions.indexOf(s);
    if (i >= 0) this.sessions.splice(i, 1);
    // Only called without streams in flight. A session node closed itself on the peer's GOAWAY never lets
    // go of its socket (the server keeps its side open), so the socket is closed here.
    if (!s.session.closed) s.session.close(() => s.sock.destroy());
    else s.sock.destroy();
  }
}
