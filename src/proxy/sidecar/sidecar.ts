/**
 * createSidecar: wires the compiled xDS config to sockets. Binds the listeners the config asks for, picks a
 * filter chain per connection (after the original-destination hand-off for captured traffic), terminates
 * mTLS where the chain says so, and hands the connection to the HTTP router or the TCP proxy. Config and
 * credentials are read per connection/request, so updates never touch live connections.
 */
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import tls from 'node:tls';
import { systemClock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/log.js';
import { peekClientHello } from '../tls/index.js';
import { formatAddress } from '../telemetry/index.js';
import { ClusterRuntime, uriSans } from '../upstream/index.js';
import type { SecureContextSource } from '../upstream/index.js';
import { compileState, EMPTY_CONFIG } from './config.js';
import type { CompiledConfig } from './config.js';
import { selectChain } from './compile-listeners.js';
import type { CompiledChain, CompiledListener } from './compile-listeners.js';
import { createRouter } from './http-router.js';
import { Http1ServerConnection } from './http1-server.js';
import { serveHttp2 } from './http2-server.js';
import type { ServerRequest, ServerResponse } from './exchange.js';
import type { DownstreamInfo, RouterEnv } from './http-router.js';
import { proxyTcp } from './tcp-proxy.js';
import type { ClusterStatus, SidecarHandle, SidecarOptions } from './types.js';

const INSPECT_TIMEOUT_MS = 5_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const HTTP_IDLE_TIMEOUT_MS = 60_000;
const HTTP_METHOD = /^[A-Z]{3,10} [^ ]+ HTTP\/1\.[01]\r?$/;

interface BoundListener {
  address: string;
  port: number;
  /** The additional addresses it was bound with, to rebind when they change. */
  extras: string;
  /** The main address first, then the additional ones. */
  servers: net.Server[];
  ready: Promise<void>;
}

const extrasKey = (l: CompiledListener): string => l.additionalAddresses.map((a) => `${a.address}:${a.port}`).join(',');

export function createSidecar(options: SidecarOptions): SidecarHandle {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  let config: CompiledConfig = EMPTY_CONFIG;
  const clusters = new Map<string, ClusterRuntime>();
  const bound = new Map<string, BoundListener>();
  const sockets = new Set<net.Socket>();
  let closed = false;

  // Building a SecureContext parses keys and roots (milliseconds): one per distinct credential set.
  let cachedContext: tls.SecureContext | undefined;
  let cachedFor: { certChainPem: string; keyPem: string; rootsPem: string } | undefined;
  const contexts: SecureContextSource = {
    current() {
      const creds = options.credentials();
      if (!creds) return undefined;
      const c = cachedFor;
      if (!cachedContext || !c || c.certChainPem !== creds.certChainPem || c.keyPem !== creds.keyPem || c.rootsPem !== creds.rootsPem) {
        cachedContext = tls.createSecureContext({ cert: creds.certChainPem, key: creds.keyPem, ca: creds.rootsPem });
        cachedFor = { certChainPem: creds.certChainPem, keyPem: creds.keyPem, rootsPem: creds.rootsPem };
      }
      return cachedContext;
    },
  };

  const env: RouterEnv = {
    routeTable: (name) => config.routes.get(name),
    cluster: (name) => clusters.get(name),
    clock,
    log: options.accessLog,
    metrics: options.metrics,
    identity: options.identity,
    spiffeId: () => options.credentials()?.spiffeId,
  };
  const route = createRouter(env);
  options.metrics?.clusterConnections?.(function* () {
    for (const c of clusters.values()) yield { name: c.settings.name, active: c.connections.active, overflow: c.connections.overflow };
  });
  const handle = (req: ServerRequest, res: ServerResponse, info: DownstreamInfo): void => {
    try {
      route(req, res, info);
    } catch (err) {
      // A bug must cost one request, never the process.
      logger.error('request handling failed', { error: (err as Error).message });
      if (!res.headersSent) res.writeHead(500, { 'content-length': 0 }).end();
      else res.destroy();
    }
  };
  /** Serves HTTP/2 on a connection, `buffered` being what was read off it already. */
  function serveH2(socket: net.Socket, info: DownstreamInfo, buffered: Buffer): void {
    serveHttp2(socket, buffered, {
      idleTimeoutMs: HTTP_IDLE_TIMEOUT_MS,
      request: (req, res) => handle(req, res, info),
      sessionError(err) {
        logger.debug('HTTP/2 session failed', { remote: info.remoteAddress, error: err.message });
        options.accessLog?.({ ...refusal(info, 0, 'DPE', err.message), protocol: 'HTTP/2' });
      },
    });
  }
  /**
   * Serves a connection whose filter chain ends in the HTTP connection manager with the codec it asks for:
   * with AUTO, ALPN `h2`/`istio-h2` means HTTP/2, and otherwise the HTTP/1.1 codec hands a connection that
   * opens with the HTTP/2 preface over (it looks at the bytes it read anyway).
   */
  function serveHttp(socket: net.Socket, info: DownstreamInfo): void {
    const codec = info.chain.codec;
    const alpn = (socket as tls.TLSSocket).alpnProtocol;
    if (codec === 'HTTP2' || (codec === 'AUTO' && (alpn === 'h2' || alpn === 'istio-h2'))) return serveH2(socket, info, Buffer.alloc(0));
    new Http1ServerConnection(socket, {
      idleTimeoutMs: HTTP_IDLE_TIMEOUT_MS,
      request: (req, res) => handle(req, res, info),
      parseError(err) {
        logger.debug('malformed request', { remote: info.remoteAddress, error: err.message });
        options.accessLog?.(refusal(info, err.status, 'DPE'));
      },
      http2: codec === 'AUTO' ? (buffered) => serveH2(socket, info, buffered) : undefined,
    });
    socket.resume();
  }

  function refusal(info: Pick<DownstreamInfo, 'localAddress' | 'remoteAddress' | 'requestedServerName'> | undefined, code: number, flag: string, reason?: string): Parameters<NonNullable<SidecarOptions['accessLog']>>[0] {
    return {
      start_time: new Date().toISOString(),
      method: null,
      path: null,
      protocol: code ? 'HTTP/1.1' : null,
      response_code: code,
      response_flags: flag,
      bytes_received: 0,
      bytes_sent: 0,
      duration: 0,
      upstream_host: null,
      upstream_cluster: null,
      upstream_local_address: null,
      downstream_local_address: info?.localAddress ?? null,
      downstream_remote_address: info?.remoteAddress ?? null,
      requested_server_name: info?.requestedServerName ?? null,
      authority: null,
      user_agent: null,
      request_id: null,
      route_name: null,
      upstream_transport_failure_reason: reason ?? null,
    };
  }

  function findHandOff(dest: { address: string; port: number }, from: CompiledListener): CompiledListener | undefined {
    const exact = config.listeners.get(`${dest.address}_${dest.port}`);
    if (exact && exact !== from) return exact;
    const wildcard = config.listeners.get(`0.0.0.0_${dest.port}`);
    return wildcard && wildcard !== from ? wildcard : undefined;
  }

  function onConnection(name: string, socket: net.Socket): void {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    let listener = config.listeners.get(name);
    if (!listener) {
      socket.destroy();
      return;
    }
    let originalDst: { address: string; port: number } | undefined;
    if (listener.useOriginalDst) {
      originalDst = options.originalDestination?.(socket);
      if (originalDst && isOwnListener(originalDst)) {
        // Passing it on would dial this listener again (Istio blackholes such chains for the same reason).
        logger.warn('captured connection refused: its original destination is this proxy', { destination: formatAddress(originalDst.address, originalDst.port) });
        options.accessLog?.(refusal({ localAddress: formatAddress(originalDst.address, originalDst.port), remoteAddress: formatAddress(socket.remoteAddress, socket.remotePort) }, 0, 'UH'));
        socket.destroy();
        return;
      }
      if (originalDst && !listener.inbound) listener = findHandOff(originalDst, listener) ?? listener;
    }
    const dest = originalDst ?? { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const info: DownstreamInfo = {
      chain: undefined as never,
      inbound: listener.inbound,
      tls: false,
      localAddress: formatAddress(dest.address, dest.port),
      remoteAddress: formatAddress(socket.remoteAddress, socket.remotePort),
      remoteIp: (socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      originalDst,
    };
    void dispatch(listener, socket, dest.port, info).catch((err: Error) => {
      logger.warn('connection dispatch failed', { listener: listener!.name, error: err.message });
      socket.destroy();
    });
  }

  /** Whether a destination is one of the ports this proxy listens on, at an address of this host. */
  function isOwnListener(dest: { address: string; port: number }): boolean {
    const addresses = new Set<string>();
    for (const b of bound.values()) {
      for (const server of b.servers) {
        const a = server.address();
        if (a && typeof a === 'object' && a.port === dest.port) addresses.add(a.address);
      }
    }
    if (addresses.size === 0) return false;
    const ip = dest.address.replace(/^::ffff:/, '');
    if (addresses.has(ip) || ip === '::1' || ip.startsWith('127.') || ip === '0.0.0.0' || ip === '::') return true;
    // Only reached for a destination on one of our ports, so listing interfaces here costs nothing normally.
    const wildcard = addresses.has('0.0.0.0') || addresses.has('::');
    return wildcard && Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === ip));
  }

  async function dispatch(l: CompiledListener, socket: net.Socket, port: number, info: DownstreamInfo): Promise<void> {
    let chain: CompiledChain | undefined;
    let initial: Buffer = Buffer.alloc(0);
    if (!l.needsInspection) chain = selectChain(l, { destinationPort: port });
    else {
      const asTls = selectChain(l, { destinationPort: port, transportProtocol: 'tls' });
      const asRaw = selectChain(l, { destinationPort: port, transportProtocol: 'raw_buffer', applicationProtocols: [] });
      const needsSni = l.chains.some((c) => c.serverNames.length > 0);
      if (asTls && !asRaw && !needsSni) {
        // Only TLS chains here: the handshake itself refuses plaintext, no need to read ahead.
        chain = asTls;
      } else if (l.tlsInspector || l.httpInspector) {
        const first = await firstBytes(socket, l);
        if (first.tls) {
          info.requestedServerName = first.sni;
          chain = selectChain(l, { destinationPort: port, transportProtocol: 'tls', serverName: first.sni, applicationProtocols: first.alpn });
        } else {
          chain = selectChain(l, { destinationPort: port, transportProtocol: 'raw_buffer', applicationProtocols: first.http ? [first.http] : [] });
        }
        initial = first.buffered;
      } else chain = asRaw ?? asTls;
    }
    if (!chain) {
      options.accessLog?.(refusal(info, 0, 'NR'));
      socket.destroy();
      return;
    }
    info.chain = chain.filter as DownstreamInfo['chain'];
    if (chain.downstreamTls) {
      if (initial.length) socket.unshift(initial);
      return terminate(socket, chain, info);
    }
    hand(socket, chain, info, initial);
  }

  function hand(socket: net.Socket, chain: CompiledChain, info: DownstreamInfo, initial: Buffer): void {
    if (chain.filter.kind === 'http') {
      if (initial.length) socket.unshift(initial);
      serveHttp(socket, info);
    } else {
      proxyTcp(env, socket, chain.filter, info, initial).catch((err: Error) => {
        logger.error('tcp proxy failed', { error: err.message });
        socket.destroy();
      });
    }
  }

  function terminate(socket: net.Socket, chain: CompiledChain, info: DownstreamInfo): void {
    const ctx = contexts.current();
    if (!ctx) {
      logger.warn('inbound connection refused: no workload certificate yet', { remote: info.remoteAddress });
      options.accessLog?.(refusal(info, 0, 'UAEX', 'no workload certificate'));
      socket.destroy();
      return;
    }
    const dt = chain.downstreamTls!;
    const tsock = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: ctx,
      requestCert: dt.requireClientCert,
      rejectUnauthorized: dt.requireClientCert,
      ...(dt.alpn.length ? { ALPNProtocols: dt.alpn } : {}),
    });
    sockets.add(tsock);
    tsock.once('close', () => sockets.delete(tsock));
    const timer = clock.setTimeout(() => tsock.destroy(new Error('TLS handshake timeout')), HANDSHAKE_TIMEOUT_MS);
    const refuse = (reason: string): void => {
      timer.cancel();
      logger.warn('inbound TLS refused', { remote: info.remoteAddress, reason });
      options.accessLog?.(refusal(info, 0, 'DPE', reason));
      tsock.destroy();
      socket.destroy();
    };
    tsock.once('error', (err) => refuse(err.message));
    tsock.once('secure', () => {
      timer.cancel();
      tsock.removeAllListeners('error');
      tsock.on('error', () => {});
      const peer = tsock.getPeerCertificate();
      if (dt.requireClientCert) {
        // Node verifies a server-side TLSSocket's client chain only for sockets its own tls.Server made;
        // ask OpenSSL for the verdict directly.
        const verifyError = (tsock as unknown as { ssl?: { verifyError?: () => Error | null } }).ssl?.verifyError?.();
        if (verifyError) return refuse(`client certificate rejected: ${(verifyError as NodeJS.ErrnoException).code ?? verifyError.message}`);
        if (!peer || !peer.raw) return refuse('no client certificate');
      }
      info.tls = true;
      info.peerId = uriSans(peer).find((u) => u.startsWith('spiffe://'));
      info.peerCertHash = peer.fingerprint256 ? peer.fingerprint256.replace(/:/g, '').toLowerCase() : undefined;
      info.requestedServerName ??= (tsock as unknown as { servername?: string }).servername || undefined;
      hand(tsock, chain, info, Buffer.alloc(0));
    });
  }

  function firstBytes(socket: net.Socket, l: CompiledListener): Promise<{ tls: boolean; sni?: string | undefined; alpn?: string[]; http: string | undefined; buffered: Buffer }> {
    if (l.tlsInspector) {
      return peekClientHello(socket, { timeoutMs: INSPECT_TIMEOUT_MS, maxBytes: 16 * 1024, clock }).then((r) =>
        r.ok ? { tls: true, sni: r.sni, alpn: r.alpn, http: undefined, buffered: r.buffered } : { tls: false, http: httpProtocolOf(r.buffered), buffered: r.buffered },
      );
    }
    return new Promise((resolve) => {
      const timer = clock.setTimeout(() => done(Buffer.alloc(0)), INSPECT_TIMEOUT_MS);
      const done = (b: Buffer): void => {
        timer.cancel();
        socket.off('data', done);
        socket.pause();
        resolve({ tls: false, http: httpProtocolOf(b), buffered: b });
      };
      socket.on('data', done);
    });
  }

  function bindListeners(): void {
    const wanted = new Map<string, CompiledListener>();
    for (const l of config.listeners.values()) if (l.bind && l.port > 0 ? true : l.bind && l.port === 0) wanted.set(l.name, l);
    for (const [name, b] of bound) {
      const l = wanted.get(name);
      if (!l || l.address !== b.address || (l.port !== b.port && l.port !== 0) || extrasKey(l) !== b.extras) {
        for (const server of b.servers) server.close();
        bound.delete(name);
      }
    }
    for (const [name, l] of wanted) {
      if (bound.has(name)) continue;
      const main = listen(name, l.address, l.port, false);
      const extras = l.additionalAddresses.map((a) => listen(name, a.address, a.port, true));
      const entry: BoundListener = {
        address: l.address,
        port: l.port,
        extras: extrasKey(l),
        servers: [main.server, ...extras.map((e) => e.server)],
        ready: Promise.all([
          main.ready.then((ok) => {
            if (ok) return;
            bound.delete(name);
            for (const e of extras) e.server.close();
          }),
          ...extras.map((e) => e.ready),
        ]).then(() => undefined),
      };
      bound.set(name, entry);
    }
  }

  /**
   * Binds one address of a listener; resolves false when it could not. An additional `::` address is
   * IPv6-only (as Envoy binds it), and where the host has no IPv6 it is left out without an error.
   */
  function listen(name: string, host: string, port: number, additional: boolean): { server: net.Server; ready: Promise<boolean> } {
    const server = net.createServer({ allowHalfOpen: true }, (s) => onConnection(name, s));
    const ready = new Promise<boolean>((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (additional && net.isIPv6(host) && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) {
          logger.info('listener address not bound: no IPv6 here', { listener: name, address: host, port, error: err.code });
        } else {
          logger.error('cannot bind listener', { listener: name, address: host, port, error: err.message });
        }
        resolve(false);
      });
      server.listen({ host, port, ...(net.isIPv6(host) ? { ipv6Only: true } : {}) }, () => resolve(true));
    });
    return { server, ready };
  }

  return {
    apply(state) {
      if (closed) return { problems: [] };
      const { config: next, problems } = compileState(state, config);
      for (const [name, settings] of next.clusters) {
        const groups = next.endpoints.get(name) ?? [];
        let rt = clusters.get(name);
        if (!rt) {
          rt = new ClusterRuntime(settings, contexts, clock);
          clusters.set(name, rt);
        }
        rt.update(settings, groups);
      }
      for (const [name, rt] of clusters) {
        if (!next.clusters.has(name)) {
          rt.close();
          clusters.delete(name);
        }
      }
      config = next;
      bindListeners();
      for (const p of problems) logger.warn('rejected xDS resource', { ...p });
      return { problems };
    },
    credentialsChanged() {
      cachedContext = undefined;
      cachedFor = undefined;
    },
    clusterStatus(): ClusterStatus[] {
      return [...clusters.values()].map((c) => ({
        name: c.settings.name,
        endpoints: c.allHosts().map((h) => {
          const g = c.groupOf(h);
          return { address: h.address, port: h.port, health: h.spec.health, ejected: c.isEjected(h), activeRequests: h.active, locality: g.locality, priority: g.priority };
        }),
      }));
    },
    async listening() {
      await Promise.all([...bound.values()].map((b) => b.ready));
      const out = new Map<string, { address: string; port: number }>();
      for (const [name, b] of bound) {
        const a = b.servers[0]!.address();
        if (a && typeof a === 'object') out.set(name, { address: a.address, port: a.port });
      }
      return out;
    },
    async close() {
      closed = true;
      const closing = [...bound.values()].flatMap((b) =>
        b.servers.map((server) => b.ready.then(() => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())))),
      );
      bound.clear();
      // net.Server.close waits for open connections; they end here, as Envoy's drain would end them.
      for (const s of sockets) s.destroy();
      await Promise.all(closing);
      for (const c of clusters.values()) c.close();
      clusters.clear();
    },
  };
}

/** What Envoy's http_inspector reports: `h2c` for the HTTP/2 preface, `http/1.1` for a request line. */
function httpProtocolOf(b: Buffer): string | undefined {
  const end = b.indexOf(10);
  const line = b.subarray(0, end < 0 ? Math.min(b.length, 64) : end).toString('latin1');
  if (line.startsWith('PRI * HTTP/2.0')) return 'h2c';
  return HTTP_METHOD.test(line) || (end < 0 && /^[A-Z]{3,10} \//.test(line)) ? 'http/1.1' : undefined;
}
