/**
 * The HTTP connection manager's request path: virtual host and route selection, fault injection, direct
 * responses and redirects, weighted clusters, retries with per-try and global timeouts, mirroring, header
 * rewriting, upgrades (WebSocket) turned into tunnels, and one access-log record plus Istio metrics per
 * request. Local replies carry Envoy's response flags (NR, UH, UF, URX, UT, UO, UC, FI, DI, NC); to gRPC
 * requests they are trailers-only gRPC errors. Works on the codec-neutral ServerRequest/ServerResponse, and
 * sends upstream over the cluster's protocol (HTTP/1.1 pool or HTTP/2 sessions), trailers passed through.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { Clock } from '../../shared/clock.js';
import type { AccessLogRecord, MeshMetrics } from '../telemetry/index.js';
import { checkRequestTarget, hash32 } from '../upstream/index.js';
import type { ClusterRuntime, UpstreamHost } from '../upstream/index.js';
import type { CompiledRoute, HeaderOps, RetryPolicy, RouteTable } from './compile-routes.js';
import { selectVirtualHost } from './compile-routes.js';
import { grpcStatusFor, isGrpc } from './exchange.js';
import type { ServerRequest as DownstreamRequest, ServerResponse as DownstreamResponse } from './exchange.js';
import type { HttpChainFilter } from './compile-listeners.js';
import type { DownstreamResponse as Http1Response } from './http1-server.js';
import { runTunnel, tunnelIdleTimeoutMs, upgradeAllowed } from './upgrade.js';
import { HOP_BY_HOP, anyOps, applyOps, hashKey, matchRoute, responseHeaders, xfccPlan } from './route-match.js';
import { createExchangeLog } from './router-telemetry.js';
import { newRequestId } from './request-id.js';
import type { Exchange } from './router-telemetry.js';
import { UpstreamAttempt, proxiedHeaders, requestHeadFromRaw, retriable, sendUpstream } from './upstream-send.js';
import type { Outcome, ProxyHeaders, Replay } from './upstream-send.js';

/** What the router knows about the downstream connection a request came on. */
export interface DownstreamInfo {
  chain: HttpChainFilter;
  inbound: boolean;
  tls: boolean;
  peerId?: string | undefined;
  peerCertHash?: string | undefined;
  requestedServerName?: string | undefined;
  localAddress: string | null;
  remoteAddress: string | null;
  remoteIp: string;
  originalDst?: { address: string; port: number } | undefined;
}

/** The sidecar-wide things a request needs. */
export interface RouterEnv {
  routeTable(name: string): RouteTable | undefined;
  cluster(name: string): ClusterRuntime | undefined;
  clock: Clock;
  log?: ((r: AccessLogRecord) => void) | undefined;
  metrics?: MeshMetrics | undefined;
  identity: { cluster: string; namespace: string; workload: string; network: string };
  spiffeId(): string | undefined;
}

/** Request bodies up to this size are buffered so that retries and mirrors can replay them. */
const MAX_REPLAY_BODY = 64 * 1024;

export function createRouter(env: RouterEnv): (req: DownstreamRequest, res: DownstreamResponse, down: DownstreamInfo) => void {
  const logExchange = createExchangeLog(env);

  function localReply(x: Exchange, res: DownstreamResponse, status: number, flag: string | undefined, body: string, extra?: Record<string, string>): void {
    if (flag) x.flags.push(flag);
    x.status = status;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (x.grpc) {
      // Envoy answers gRPC callers in gRPC: HTTP 200, trailers-only, the status mapped from the HTTP one
      // (a timeout is the call's deadline).
      const code = flag === 'UT' ? 4 : grpcStatusFor(status);
      x.status = 200;
      x.grpcStatus = String(code);
      res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': code, 'grpc-message': encodeURIComponent(body), server: 'envoy', ...extra });
      res.end();
      return;
    }
    const buf = Buffer.from(body);
    x.bytesOut = buf.length;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': buf.length, server: 'envoy', ...extra });
    res.end(buf);
  }

  return function handle(req, res, down) {
    const now = env.clock.now();
    const url = req.url ?? '/';
    let authority: string;
    let pathAndQuery: string;
    if (url.charCodeAt(0) === 47 /* / */) {
      authority = (req.headers.host ?? '').toLowerCase();
      pathAndQuery = url;
    } else if (req.method === 'CONNECT') {
      authority = url.toLowerCase();
      pathAndQuery = '';
    } else {
      // Absolute form (explicit proxy): the URL's authority wins over Host, as Envoy's allow_absolute_url.
      const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)(.*)$/i.exec(url);
      if (!m) {
        res.writeHead(400, { 'content-length': 0, connection: 'close' }).end();
        return;
      }
      authority = m[1]!.toLowerCase();
      pathAndQuery = m[2] || '/';
    }
    const x: Exchange = {
      start: now,
      startWall: Date.now(),
      method: req.method ?? 'GET',
      path: pathAndQuery,
      authority,
      flags: [],
      requestId: (req.headers['x-request-id'] as string | undefined) ?? newRequestId(),
      protocol: req.protocol,
      grpc: isGrpc(req),
      bytesIn: 0,
      bytesOut: 0,
      status: 0,
    };
    res.once('close', () => {
      if (!res.writableFinished) x.flags.push('DC');
      try {
        logExchange(x, req, down);
      } catch {
        // Telemetry sinks are the caller's; their failure must not take the proxy down.
      }
    });

    // No route has a connect_matcher (CONNECT tunnels are not configured): Envoy answers 404 NR.
    if (req.method === 'CONNECT') return localReply(x, res, 404, 'NR', '');
    const table = down.chain.inline ?? (down.chain.rds !== undefined ? env.routeTable(down.chain.rds) : undefined);
    const vh = table ? selectVirtualHost(table, authority) : undefined;
    const q = pathAndQuery.indexOf('?');
    const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
    const route = vh ? matchRoute(vh.routes, req, path, q < 0 ? '' : pathAndQuery.slice(q + 1), authority) : undefined;
    if (!vh || !route) return localReply(x, res, 404, 'NR', '');
    x.route = route;
    const upgrade = req.upgrade;
    if (upgrade !== undefined && !upgradeAllowed(upgrade, down.chain, route)) return localReply(x, res, 403, undefined, '');

    const proceed = (): void => {
      const action = route.action;
      if (action.type === 'direct') return localReply(x, res, action.status, undefined, action.body);
      if (action.type === 'redirect') {
        const location = `${action.scheme ?? (down.tls ? 'https' : 'http')}://${action.host ?? authority}${action.path ?? pathAndQuery}`;
        return localReply(x, res, action.status, undefined, '', { location });
      }
      let clusterName = action.cluster;
      let targetOps: { requestOps?: HeaderOps | undefined; responseOps?: HeaderOps | undefined } | undefined;
      if (action.weighted) {
        let r = Math.random() * action.totalWeight;
        for (const w of action.weighted) {
          if ((r -= w.weight) < 0 || w === action.weighted[action.weighted.length - 1]) {
            clusterName = w.name;
            targetOps = w;
            break;
          }
        }
      }
      x.clusterName = clusterName!;
      const cluster = env.cluster(clusterName!);
      if (!cluster) return localReply(x, res, 503, 'NC', 'no cluster found');
      // Upgrades over HTTP/2 would need extended CONNECT (RFC 8441), which the HTTP/2 pool does not speak.
      if (upgrade !== undefined && cluster.settings.http2) return localReply(x, res, 403, undefined, '');

      const add: ProxyHeaders = { host: action.hostRewrite ?? authority, requestId: x.requestId, forwardedProto: down.tls ? 'https' : 'http', xfcc: xfccPlan(down, env.spiffeId) };
      const requestOps: Array<HeaderOps | undefined> = [vh.requestOps, route.requestOps, targetOps?.requestOps];
      // A header object only where something needs one: header ops, mirrors (a copy each), the attempt count
      // (set per try), an upgrade, HTTP/2 upstream. Otherwise the head is written from the client's list.
      const headerObject = cluster.settings.http2 || upgrade !== undefined || action.mirrors.length > 0 || vh.includeAttemptCount || anyOps(requestOps);
      let upstreamPath = pathAndQuery;
      if (action.prefixRewrite !== undefined && route.kind !== 'regex') {
        const matched = route.kind === 'path' ? path.length : route.value.length;
        upstreamPath = action.prefixRewrite + pathAndQuery.slice(matched);
        if (upstreamPath.charCodeAt(0) !== 47) upstreamPath = '/' + upstreamPath;
      }
      let hash: number | undefined;
      for (const hp of action.hash) {
        const v = hashKey(hp, req, down, pathAndQuery, q);
        if (v !== undefined) {
          hash = hash32(v);
          break;
        }
      }

      let headers: http.OutgoingHttpHeaders | string;
      try {
        checkRequestTarget(req.method, upstreamPath);
        headers = headerObject ? requestHeaders(req, add, requestOps, upgrade) : requestHeadFromRaw(req.method, upstreamPath, req.rawHeaders, add, req.streamedBody && req.headers['content-length'] === undefined);
      } catch (err) {
        // A path with characters that must be escaped, or an authority that cannot be sent: the client's fault.
        return localReply(x, res, 400, undefined, (err as Error).message);
      }
      const cl = req.headers['content-length'];
      const chunked = req.streamedBody;
      const len = cl === undefined ? 0 : Number(cl);
      const run = (body: Buffer | undefined, stream: Replay | undefined): void => {
        // An upgrade is one stream that cannot be replayed: no mirror, no retry.
        if (typeof headers === 'object') for (const m of action.mirrors) if (!stream && Math.random() < m.fraction) mirror(m.cluster, req, upstreamPath, headers, body);
        const retry = upgrade === undefined ? action.retry : undefined;
        forward(x, req, res, down, cluster, route, retry, action.timeoutMs, headers, upstreamPath, body, stream, hash, [vh.responseOps, route.responseOps, targetOps?.responseOps], vh.includeAttemptCount);
      };
      if (!chunked && len === 0) run(undefined, undefined);
      else if (!chunked && len <= MAX_REPLAY_BODY) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.once('end', () => {
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          x.bytesIn = body.length;
          run(body, undefined);
        });
        req.resume();
      } else {
        // Paused until an upstream connection takes the body (pipeBody resumes it). A copy of a small body
        // is kept so that a call answered after its body ended (a gRPC unary call) can still be retried.
        req.pause();
        const replay: Replay = { chunks: [] };
        req.on('data', (c: Buffer) => {
          x.bytesIn += c.length;
          if (replay.chunks && x.bytesIn <= MAX_REPLAY_BODY) replay.chunks.push(c);
          else replay.chunks = undefined;
        });
        run(undefined, replay);
      }
    };

    const fault = down.chain.fault ? route.fault : undefined;
    if (fault) {
      const abort = (): void => {
        if (fault.abortStatus && Math.random() < fault.abortFraction) return localReply(x, res, fault.abortStatus, 'FI', 'fault filter abort');
        proceed();
      };
      if (fault.delayMs > 0 && Math.random() < fault.delayFraction) {
        x.flags.push('DI');
        const t = env.clock.setTimeout(abort, fault.delayMs);
        res.once('close', () => t.cancel());
        return;
      }
      return abort();
    }
    proceed();
  };

  function mirror(clusterName: string, req: DownstreamRequest, path: string, headers: http.OutgoingHttpHeaders, body: Buffer | undefined): void {
    const cluster = env.cluster(clusterName);
    const host = cluster?.pick();
    if (!host) return;
    const h = { ...headers, host: `${String(headers.host).replace(/(:\d+)?$/, '-shadow$1')}` };
    try {
      sendUpstream(cluster!, host, req, path, h, body, false, { head() {}, data: () => true, end() {}, error() {} });
    } catch {
      // An invalid header or path: the mirror is best effort.
    }
  }

  function forward(
    x: Exchange,
    req: DownstreamRequest,
    res: DownstreamResponse,
    down: DownstreamInfo,
    cluster: ClusterRuntime,
    route: CompiledRoute,
    retry: RetryPolicy | undefined,
    timeoutMs: number,
    headers: http.OutgoingHttpHeaders | string,
    path: string,
    initialBody: Buffer | undefined,
    replay: Replay | undefined,
    hash: number | undefined,
    responseOps: Array<HeaderOps | undefined>,
    attemptCount: boolean,
  ): void {
    const s = cluster.settings;
    let body = initialBody;
    let stream = replay !== undefined;
    let retries = 0;
    let staleRetried = false;
    let finished = false;
    /** The attempt in flight, which the route timeout or the client's going away stops. */
    let current: UpstreamAttempt | undefined;
    // previous_hosts: the hosts tried so far, as a set only once a retry needs it (most requests make one try).
    let firstHost: UpstreamHost | undefined;
    let tried: Set<UpstreamHost> | undefined;
    let globalTimer: { cancel(): void } | undefined;
    const finish = (): void => {
      finished = true;
      globalTimer?.cancel();
    };
    if (timeoutMs > 0) {
      globalTimer = env.clock.setTimeout(() => {
        if (finished) return;
        finish();
        current?.abort();
        localReply(x, res, 504, 'UT', 'upstream request timeout');
      }, timeoutMs);
    }
    res.once('close', () => {
      if (!finished) {
        finish();
        current?.abort();
      }
    });

    const attempt = (sameHost?: UpstreamHost): void => {
      if (finished) return;
      // HTTP/1.1 carries one request per connection, so what does not fit in the connections and the pending
      // queue overflows; HTTP/2 multiplexes, so only max_requests bounds it (streams beyond the peer's limit
      // queue in the pool).
      if (cluster.active >= s.maxRequests || (!s.http2 && cluster.active >= s.maxConnections + s.maxPendingRequests)) {
        finish();
        return localReply(x, res, 503, 'UO', 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
      }
      const host =
        sameHost ??
        (s.type === 'ORIGINAL_DST'
          ? down.originalDst && cluster.originalDestination(down.originalDst.address, down.originalDst.port)
          : cluster.pick({ hash, exclude: retries > 0 && firstHost ? (tried ??= new Set([firstHost])) : undefined, attempts: retry?.hostSelectionAttempts ?? 1 }));
      if (!host) {
        finish();
        return localReply(x, res, 503, 'UH', 'no healthy upstream');
      }
      if (retry?.previousHosts) {
        if (tried) tried.add(host);
        else firstHost ??= host;
      }
      x.host = host;
      if (attemptCount && typeof headers === 'object') headers['x-envoy-attempt-count'] = String(retries + 1);
      once(host, (o) => {
        if (finished) {
          if (o.kind === 'upgrade') o.sock.destroy();
          if (o.kind === 'response' || o.kind === 'upgrade') o.attempt.release();
          return;
        }
        if (o.kind === 'stale' && !staleRetried && !stream) {
          // A pooled connection the upstream had already closed: not the endpoint's fault, so the same
          // endpoint again (another pooled or a fresh connection), not a re-pick that would skew balance.
          staleRetried = true;
          return attempt(host);
        }
        if (o.kind === 'upgrade') {
          cluster.report(host, 'success');
          return tunnel(o);
        }
        const status = o.kind === 'response' ? o.status : 0;
        cluster.report(host, o.kind === 'response' ? (status >= 500 ? (status >= 502 && status <= 504 ? 'error-gateway' : 'error-5xx') : 'success') : 'local-failure');
        // A streamed body can be replayed once it ended within the replay limit.
        const replayable = !stream || (req.readableEnded && replay?.chunks !== undefined);
        const wanted = retry !== undefined && replayable && retriable(retry, o, status, o.kind === 'response' ? o.grpcStatus : undefined);
        if (wanted && retries < retry!.numRetries && cluster.retriesActive < s.maxRetries) {
          retries++;
          if (stream) {
            body = Buffer.concat(replay!.chunks!);
            stream = false;
          }
          if (o.kind === 'response') o.attempt.release();
          cluster.retriesActive++;
          const backoff = Math.random() * Math.min(25 * 2 ** (retries - 1), 250);
          env.clock.setTimeout(() => {
            cluster.retriesActive--;
            attempt();
          }, backoff);
          return;
        }
        // Envoy prints URX after the flag of the final attempt.
        if (wanted) queueMicrotask(() => x.flags.push('URX'));
        if (o.kind === 'response') return respond(o);
        finish();
        if (o.kind === 'connect-failure') {
          x.failureReason = o.transport;
          return localReply(x, res, 503, 'UF', `upstream connect error or disconnect/reset before headers. reset reason: connection failure${o.transport ? `, transport failure reason: ${o.transport}` : ''}`);
        }
        if (o.kind === 'timeout') return localReply(x, res, 504, 'UT', 'upstream request timeout');
        if (o.kind === 'reset' && o.remote) return localReply(x, res, 503, 'UR', 'upstream connect error or disconnect/reset before headers. reset reason: remote reset');
        if (o.kind === 'reset' && o.protocolError) return localReply(x, res, 502, 'UPE', 'upstream connect error or disconnect/reset before headers. reset reason: protocol error');
        return localReply(x, res, 503, 'UC', 'upstream connect error or disconnect/reset before headers. reset reason: connection termination');
      });
    };

    const respond = (o: Extract<Outcome, { kind: 'response' }>): void => {
      x.peerId = o.peerId;
      x.status = o.status;
      x.grpcStatus = o.grpcStatus;
      try {
        if (res.writeHeadRaw && !anyOps(responseOps)) res.writeHeadRaw(x.status, o.rawHeaders, HOP_BY_HOP);
        else res.writeHead(x.status, responseHeaders(o.rawHeaders, responseOps));
      } catch {
        // A header node refuses to send (invalid characters from the upstream or a header op).
        o.attempt.exchange?.abort();
        o.attempt.release();
        finish();
        return localReply(x, res, 502, 'UPE', 'upstream sent an invalid response header');
      }
      const attempt = o.attempt;
      const resume = (): void => attempt.exchange?.resume();
      let trailers: http.OutgoingHttpHeaders | undefined;
      attempt.body({
        trailers(raw) {
          trailers = {};
          for (let i = 0; i < raw.length; i += 2) {
            const k = raw[i]!.toLowerCase();
            if (k === 'grpc-status') x.grpcStatus = raw[i + 1];
            trailers[k] = raw[i + 1]!;
          }
        },
        data(chunk, last) {
          x.bytesOut += chunk.length;
          if (last) {
            // Head and whole body in one write (one TLS record, one syscall) for the common small response.
            // Finished first: the response's 'close' must not read as the client going away.
            finish();
            res.end(chunk);
            return true;
          }
          const ok = res.write(chunk);
          if (!ok) res.onDrain(resume);
          return ok;
        },
        end() {
          finish();
          if (!res.writableEnded) res.end(undefined, trailers);
          attempt.release();
        },
        error() {
          x.flags.push('UPE');
          finish();
          res.destroy();
          attempt.release();
        },
      });
    };

    /** The upstream switched protocols: the route timeout is over, the stream idle timeout takes its place. */
    const tunnel = (o: Extract<Outcome, { kind: 'upgrade' }>): void => {
      finish();
      x.peerId = o.peerId;
      x.status = 101;
      const out = responseHeaders(o.rawHeaders, responseOps);
      const u = o.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'upgrade');
      if (u >= 0) out.upgrade = o.rawHeaders[u + 1]!;
      // Only the HTTP/1.1 codec marks requests as upgrades, so the response is its DownstreamResponse.
      const h1 = res as Http1Response;
      let ends: { socket: net.Socket; head: Buffer };
      try {
        ends = h1.switchProtocols(out);
      } catch {
        o.sock.destroy();
        o.attempt.release();
        return localReply(x, res, 502, 'UPE', 'upstream sent an invalid response header');
      }
      void runTunnel({ down: ends.socket, downHead: ends.head, up: o.sock, upRest: o.rest }, { idleTimeoutMs: tunnelIdleTimeoutMs(down.chain, route), clock: env.clock }).then((t) => {
        x.bytesIn = t.bytesIn;
        x.bytesOut = t.bytesOut;
        if (t.idleTimeout) x.flags.push('SI');
        o.attempt.release();
        // The access-log record and metrics are written now, when the tunnel is gone.
        h1.closedByPeer();
      });
    };

    const once = (host: UpstreamHost, cb: (o: Outcome) => void): void => {
      const a = new UpstreamAttempt(host, cluster, x, req, stream, cb);
      try {
        a.exchange = sendUpstream(cluster, host, req, path, headers, body, stream, a);
      } catch (err) {
        // Invalid header values (from a header op) or path: nothing was sent.
        return a.settle({ kind: 'connect-failure', reason: (err as Error).message, transport: undefined });
      }
      current = a;
      if (retry && retry.perTryTimeoutMs > 0) a.limit(env.clock, retry.perTryTimeoutMs);
    };

    attempt();
  }
}

/** Upstream request headers as an object: the client's and the proxy's, then an upgrade's and the route's ops. */
function requestHeaders(req: DownstreamRequest, add: ProxyHeaders, requestOps: ReadonlyArray<HeaderOps | undefined>, upgrade: string | undefined): http.OutgoingHttpHeaders {
  const headers = proxiedHeaders(req.rawHeaders, add);
  if (upgrade !== undefined) {
    headers.connection = 'upgrade';
    headers.upgrade = req.headers.upgrade;
  }
  for (const ops of requestOps) if (ops) applyOps(headers, ops);
  return headers;
}
