/**
 * One access-log record and the Istio request metrics per finished exchange, with the labels Istio's stats
 * filter gives them (reporter `source` outbound, `destination` inbound).
 */
import type { RequestLabels } from '../telemetry/index.js';
import { formatAddress } from '../telemetry/index.js';
import type { ClusterRuntime, UpstreamHost } from '../upstream/index.js';
import type { CompiledRoute } from './compile-routes.js';
import type { ServerRequest as DownstreamRequest } from './exchange.js';
import type { DownstreamInfo, RouterEnv } from './http-router.js';

/** What the router records about one request on its way. */
export interface Exchange {
  start: number;
  startWall: number;
  method: string;
  path: string;
  authority: string;
  flags: string[];
  route?: CompiledRoute;
  clusterName?: string;
  host?: UpstreamHost;
  peerId?: string | undefined;
  upstreamLocal?: string | null;
  failureReason?: string;
  requestId: string;
  protocol: string;
  grpc: boolean;
  /** grpc-status of the response (headers of a trailers-only response, else trailers). */
  grpcStatus?: string | undefined;
  bytesIn: number;
  bytesOut: number;
  status: number;
}

type ServiceRef = NonNullable<ClusterRuntime['settings']['service']>;

/** What an exchange's metric labels are made of besides the sidecar's own identity; equal inputs, equal labels. */
interface LabelInputs {
  status: number;
  flags: string;
  grpc: boolean;
  grpcStatus: string | undefined;
  peerId: string | undefined;
  spiffe: string | undefined;
  svc: ServiceRef | undefined;
  workload: string | undefined;
  hostCluster: string | undefined;
  labels: RequestLabels;
}

/** The function that writes an exchange's record and metrics once it is over. */
export function createExchangeLog(env: RouterEnv): (x: Exchange, req: DownstreamRequest, down: DownstreamInfo) => void {
  // Consecutive requests to one endpoint (outbound) or on one connection (inbound) nearly always carry the
  // same labels. Handing the metrics the same object again lets them skip building the series key.
  const lastLabels = new WeakMap<object, LabelInputs>();

  return function logExchange(x: Exchange, req: DownstreamRequest, down: DownstreamInfo): void {
    const duration = env.clock.now() - x.start;
    const flags = x.flags.length ? [...new Set(x.flags)].join(',') : '-';
    if (env.log) {
      env.log({
        start_time: new Date(x.startWall).toISOString(),
        method: x.method,
        path: x.path,
        protocol: x.protocol,
        response_code: x.status,
        response_flags: flags,
        bytes_received: x.bytesIn,
        bytes_sent: x.bytesOut,
        duration,
        upstream_host: x.host ? formatAddress(x.host.address, x.host.port) : null,
        upstream_cluster: x.clusterName ?? null,
        upstream_local_address: x.upstreamLocal ?? null,
        downstream_local_address: down.localAddress,
        downstream_remote_address: down.remoteAddress,
        requested_server_name: down.requestedServerName ?? null,
        authority: x.authority || null,
        user_agent: (req.headers['user-agent'] as string | undefined) ?? null,
        request_id: x.requestId,
        route_name: x.route?.name || null,
        upstream_transport_failure_reason: x.failureReason ?? null,
      });
    }
    if (env.metrics) env.metrics.recordRequest(labelsFor(x, down, flags), { durationMs: duration, requestBytes: x.bytesIn, responseBytes: x.bytesOut });
  };

  function labelsFor(x: Exchange, down: DownstreamInfo, flags: string): RequestLabels {
    const owner: object = down.inbound ? down : (x.host ?? down);
    const spiffe = env.spiffeId();
    const svc = !down.inbound && x.clusterName ? env.cluster(x.clusterName)?.settings.service : undefined;
    const workload = x.host?.spec.workload;
    const hostCluster = x.host?.spec.cluster;
    const last = lastLabels.get(owner);
    if (
      last !== undefined &&
      last.status === x.status &&
      last.flags === flags &&
      last.grpc === x.grpc &&
      last.grpcStatus === x.grpcStatus &&
      last.peerId === x.peerId &&
      last.spiffe === spiffe &&
      last.svc === svc &&
      last.workload === workload &&
      last.hostCluster === hostCluster
    ) {
      return last.labels;
    }
    const built = labels(x, down, flags, spiffe, svc);
    lastLabels.set(owner, { status: x.status, flags, grpc: x.grpc, grpcStatus: x.grpcStatus, peerId: x.peerId, spiffe, svc, workload, hostCluster, labels: built });
    return built;
  }

  function labels(x: Exchange, down: DownstreamInfo, flags: string, spiffe: string | undefined, svc: ServiceRef | undefined): RequestLabels {
    const me = env.identity;
    const wl = x.host?.spec.workload?.split(';');
    const peerNs = down.peerId?.split('/ns/')[1]?.split('/')[0];
    if (down.inbound) {
      return {
        reporter: 'destination',
        source_principal: down.peerId ?? 'unknown',
        source_workload_namespace: peerNs ?? 'unknown',
        destination_workload: me.workload,
        destination_workload_namespace: me.namespace,
        destination_principal: spiffe ?? 'unknown',
        destination_cluster: me.cluster,
        request_protocol: x.grpc ? 'grpc' : 'http',
        response_code: x.status,
        grpc_response_status: x.grpcStatus,
        response_flags: flags,
        connection_security_policy: down.tls ? 'mutual_tls' : 'none',
      };
    }
    return {
      reporter: 'source',
      source_workload: me.workload,
      source_workload_namespace: me.namespace,
      source_principal: spiffe ?? 'unknown',
      source_cluster: me.cluster,
      destination_service: svc?.host ?? 'unknown',
      destination_service_name: svc?.name ?? 'unknown',
      destination_service_namespace: svc?.namespace ?? 'unknown',
      destination_workload: wl?.[0] || 'unknown',
      destination_workload_namespace: wl?.[1] || 'unknown',
      destination_principal: x.peerId ?? 'unknown',
      destination_cluster: x.host?.spec.cluster ?? 'unknown',
      request_protocol: x.grpc ? 'grpc' : 'http',
      response_code: x.status,
      grpc_response_status: x.grpcStatus,
      response_flags: flags,
      connection_security_policy: 'unknown',
    };
  }
}
