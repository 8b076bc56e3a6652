/**
 * What the router reads and rewrites of a request and response head: route matching (path, headers, query),
 * hash-policy keys, header operations, and the hop-by-hop headers a proxy never forwards.
 */
import type http from 'node:http';
import type { CompiledRoute, HeaderOps } from './compile-routes.js';
import type { ServerRequest as DownstreamRequest } from './exchange.js';
import type { DownstreamInfo } from './http-router.js';
import type { XfccPlan } from './upstream-send.js';

// http2-settings only ever travels with an h2c upgrade, which the proxy ignores.
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings']);

/** Response headers for the client: the upstream's minus hop-by-hop, then the response header ops. */
export function responseHeaders(raw: readonly string[], responseOps: ReadonlyArray<HeaderOps | undefined>): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(k)) continue;
    const prev = out[k];
    if (prev === undefined) out[k] = raw[i + 1]!;
    else if (Array.isArray(prev)) prev.push(raw[i + 1]!);
    else out[k] = [prev as string, raw[i + 1]!];
  }
  for (const ops of responseOps) if (ops) applyOps(out, ops);
  return out;
}

/** Whether any of the header operation lists changes something. */
export function anyOps(lists: ReadonlyArray<HeaderOps | undefined>): boolean {
  for (const ops of lists) if (ops && (ops.add.length > 0 || ops.remove.length > 0)) return true;
  return false;
}

export function applyOps(h: http.OutgoingHttpHeaders, ops: HeaderOps): void {
  for (const r of ops.remove) delete h[r];
  for (const a of ops.add) {
    const prev = h[a.key];
    if (a.append && prev !== undefined) h[a.key] = Array.isArray(prev) ? [...prev, a.value] : `${prev as string},${a.value}`;
    else h[a.key] = a.value;
  }
}

function headerValue(req: RequestHead, name: string, path: string, authority: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* : */) {
    if (name === ':method') return req.method;
    if (name === ':authority') return authority;
    if (name === ':path') return path;
    if (name === ':scheme') return 'http';
  }
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** What route matching reads of a request. */
type RequestHead = Pick<DownstreamRequest, 'method' | 'headers'>;

/** First route that matches, in order, as Envoy evaluates them. */
export function matchRoute(routes: readonly CompiledRoute[], req: RequestHead, path: string, query: string, authority: string): CompiledRoute | undefined {
  let params: URLSearchParams | undefined;
  outer: for (const r of routes) {
    const p = r.caseSensitive ? path : path.toLowerCase();
    if (r.kind === 'prefix') {
      if (!p.startsWith(r.value)) continue;
    } else if (r.kind === 'path') {
      if (p !== r.value) continue;
    } else if (!r.regex || !r.regex.test(path)) continue;
    for (const h of r.headers) {
      const v = headerValue(req, h.name, path, authority);
      const ok = h.present !== undefined ? (v !== undefined) === h.present : v !== undefined && (h.match ? h.match(v) : true);
      if (ok === h.invert) continue outer;
    }
    for (const qm of r.query) {
      params ??= new URLSearchParams(query);
      const v = params.get(qm.name);
      const ok = qm.present !== undefined ? (v !== null) === qm.present : v !== null && (qm.match ? qm.match(v) : true);
      if (!ok) continue outer;
    }
    return r;
  }
  return undefined;
}

export function hashKey(hp: CompiledRoute['action'] extends infer A ? (A extends { hash: Array<infer H> } ? H : never) : never, req: DownstreamRequest, down: DownstreamInfo, pathAndQuery: string, q: number): string | undefined {
  switch (hp.kind) {
    case 'header': {
      const v = req.headers[hp.name];
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie': {
      const c = req.headers.cookie;
      if (!c) return undefined;
      for (const part of c.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === hp.name) return part.slice(eq + 1).trim();
      }
      return undefined;
    }
    case 'source-ip':
      return down.remoteIp;
    case 'query':
      return q < 0 ? undefined : new URLSearchParams(pathAndQuery.slice(q + 1)).get(hp.name) ?? undefined;
  }
}

const KEEP: XfccPlan = { keepClient: true };
const DROP: XfccPlan = { keepClient: false };

/**
 * What forward_client_cert_details makes of x-forwarded-client-cert on this connection, by Envoy's rules:
 * without a client certificate the header is dropped (unless ALWAYS_FORWARD_ONLY), so that nobody can
 * claim an identity the proxy did not verify.
 */
export function xfccPlan(down: Pick<DownstreamInfo, 'chain' | 'tls' | 'peerCertHash' | 'peerId'>, me: () => string | undefined): XfccPlan {
  const mode = down.chain.xfcc;
  if (mode === 'ALWAYS_FORWARD_ONLY') return KEEP;
  if (mode === 'SANITIZE' || !down.tls || down.peerCertHash === undefined) return DROP;
  if (mode === 'FORWARD_ONLY') return KEEP;
  const id = me();
  const element = `${id ? `By=${id};` : ''}Hash=${down.peerCertHash}${down.peerId ? `;URI=${down.peerId}` : ''}`;
  return { keepClient: mode === 'APPEND_FORWARD', element };
}
