/**
 * tcp_proxy: pick a cluster (weighted), connect to an endpoint (mTLS when its transport socket match says
 * so), trying other endpoints when a connect fails, then splice with backpressure; one access-log record
 * and Istio TCP metrics per connection.
 */
import type net from 'node:net';
import { spliceSockets } from '../gateway/index.js';
import { formatAddress } from '../telemetry/index.js';
import type { TcpLabels } from '../telemetry/index.js';
import { PEER_ID, TRANSPORT_FAILURE } from '../upstream/index.js';
import type { ClusterRuntime, UpstreamHost, UpstreamSocket } from '../upstream/index.js';
import type { TcpChainFilter } from './compile-listeners.js';
import type { DownstreamInfo, RouterEnv } from './http-router.js';

const MAX_CONNECT_ATTEMPTS = 3;
/** What the client may send while its upstream connect is in flight before we stop reading it. */
const MAX_EARLY_BYTES = 64 * 1024;

type ConnectResult = { socket: UpstreamSocket } | { error: string; transport?: string | undefined } | { downstreamGone: true };

/**
 * Connects to `host` while reading the client, so that a client that goes away meanwhile (reset or full
 * close, as Envoy's early-close detection sees it) aborts the connect at once instead of holding a
 * max_connections slot until the connect times out. A half-close (FIN) is not leaving: what the client
 * sent, FIN included, reaches the upstream once connected. Bytes read here are appended to `early`.
 */
function connectOnce(host: UpstreamHost, down: net.Socket, early: Buffer[]): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const s = host.connect(true);
    const event = host.tls ? 'secureConnect' : 'connect';
    let buffered = 0;
    const onData = (chunk: Buffer): void => {
      early.push(chunk);
      if ((buffered += chunk.length) >= MAX_EARLY_BYTES) down.pause();
    };
    const settle = (r: ConnectResult): void => {
      s.off(event, ok);
      s.off('error', bad);
      down.off('data', onData);
      down.off('close', gone);
      down.pause();
      resolve(r);
    };
    const ok = (): void => settle({ socket: s });
    const bad = (err: Error): void => {
      s.destroy();
      settle({ error: err.message, transport: s[TRANSPORT_FAILURE] });
    };
    const gone = (): void => {
      s.destroy();
      settle({ downstreamGone: true });
    };
    s.once(event, ok);
    s.once('error', bad);
    if (down.destroyed) return gone();
    down.once('close', gone);
    down.on('data', onData);
    down.resume();
  });
}

export async function proxyTcp(env: RouterEnv, down: net.Socket, filter: TcpChainFilter, info: DownstreamInfo, initial: Buffer): Promise<void> {
  const startWall = Date.now();
  const start = env.clock.now();
  let clusterName = filter.cluster;
  if (filter.weighted) {
    let r = Math.random() * filter.totalWeight;
    for (const w of filter.weighted) {
      clusterName = w.name;
      if ((r -= w.weight) < 0) break;
    }
  }
  const cluster: ClusterRuntime | undefined = clusterName ? env.cluster(clusterName) : undefined;
  const flags: string[] = [];
  let host: UpstreamHost | undefined;
  let upstream: UpstreamSocket | undefined;
  let transport: string | undefined;
  const early: Buffer[] = initial.length ? [initial] : [];
  down.on('error', () => {});
  if (!cluster) flags.push('NC');
  else if (!cluster.admitConnection()) flags.push('UO');
  else {
    const tried = new Set<UpstreamHost>();
    for (let i = 0; i < MAX_CONNECT_ATTEMPTS; i++) {
      const h =
        cluster.settings.type === 'ORIGINAL_DST'
          ? info.originalDst && cluster.originalDestination(info.originalDst.address, info.originalDst.port)
          : cluster.pick({ exclude: tried, attempts: 3 });
      if (!h || tried.has(h)) break;
      tried.add(h);
      host = h;
      const r = await connectOnce(h, down, early);
      if ('socket' in r) {
        upstream = r.socket;
        cluster.report(h, 'success');
        break;
      }
      if ('downstreamGone' in r) break;
      transport = r.transport;
      cluster.report(h, 'local-failure');
    }
    if (upstream && down.destroyed) {
      upstream.destroy();
      upstream = undefined;
    }
    if (!upstream) flags.push(down.destroyed ? 'DC' : host ? 'UF' : 'UH');
  }
  const svc = cluster?.settings.service;
  const wl = host?.spec.workload?.split(';');
  const labels: TcpLabels = info.inbound
    ? {
        reporter: 'destination',
        source_principal: info.peerId ?? 'unknown',
        destination_workload: env.identity.workload,
        destination_workload_namespace: env.identity.namespace,
        destination_principal: env.spiffeId() ?? 'unknown',
        destination_cluster: env.identity.cluster,
        connection_security_policy: info.tls ? 'mutual_tls' : 'none',
      }
    : {
        reporter: 'source',
        source_workload: env.identity.workload,
        source_workload_namespace: env.identity.namespace,
        source_principal: env.spiffeId() ?? 'unknown',
        source_cluster: env.identity.cluster,
        destination_service: svc?.host ?? 'unknown',
        destination_service_name: svc?.name ?? 'unknown',
        destination_service_namespace: svc?.namespace ?? 'unknown',
        destination_workload: wl?.[0] || 'unknown',
        destination_workload_namespace: wl?.[1] || 'unknown',
        destination_principal: upstream?.[PEER_ID] ?? 'unknown',
        destination_cluster: host?.spec.cluster ?? 'unknown',
      };
  let upstreamLocal: string | null = null;
  if (upstream) {
    upstreamLocal = formatAddress(upstream.localAddress, upstream.localPort);
    env.metrics?.tcpOpened(labels);
    host!.active++;
    cluster!.active++;
    const outcome = await spliceSockets(down, upstream, early.length === 1 ? early[0]! : Buffer.concat(early), { idleTimeoutMs: filter.idleTimeoutMs, clock: env.clock });
    host!.active--;
    cluster!.active--;
    if (outcome.idleTimeout) flags.push('SI');
    env.metrics?.tcpClosed(labels);
  } else {
    down.destroy();
  }
  const received = down.bytesRead;
  const sent = down.bytesWritten;
  if (upstream) env.metrics?.tcpBytes(labels, { sent, received });
  env.log?.({
    start_time: new Date(startWall).toISOString(),
    method: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: flags.length ? flags.join(',') : '-',
    bytes_received: received,
    bytes_sent: sent,
    duration: env.clock.now() - start,
    upstream_host: host ? formatAddress(host.address, host.port) : null,
    upstream_cluster: clusterName ?? null,
    upstream_local_address: upstreamLocal,
    downstream_local_address: info.localAddress,
    downstream_remote_address: info.remoteAddress,
    requested_server_name: info.requestedServerName ?? null,
    authority: null,
    user_agent: null,
    request_id: null,
    route_name: null,
    upstream_transport_failure_reason: upstream ? null : transport ?? null,
  });
}
