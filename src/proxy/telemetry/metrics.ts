/**
 * Istio's standard metrics, recorded by the proxy (reporter `source` on the client side, `destination` on
 * the server side, as Envoy's stats filter does). Names, label names and bucket boundaries follow Istio so
 * dashboards and alerts written for Istio read ours.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** Labels on every Istio standard metric, TCP and HTTP alike. */
export const TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

/** HTTP/gRPC request metrics also carry the response code. */
export const REQUEST_LABELS = [...TCP_LABELS, 'response_code'] as const;

export type TcpLabelName = (typeof TCP_LABELS)[number];
export type RequestLabelName = (typeof REQUEST_LABELS)[number];
export type TcpLabels = Partial<Record<TcpLabelName, string>>;
export type RequestLabels = Partial<Record<RequestLabelName, string | number>>;

/** Istio's default duration buckets, in milliseconds. */
export const DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
/** Istio's default size buckets: powers of ten from 1 B to 1 GB. */
export const SIZE_BUCKETS_BYTES = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** The proxy's view of the metrics: record functions only; the Prometheus objects stay inside. */
export interface MeshMetrics {
  /** One finished HTTP request: counts it and observes its duration and body sizes. */
  recordRequest(labels: RequestLabels, sample: { durationMs: number; requestBytes: number; responseBytes: number }): void;
  tcpOpened(labels: TcpLabels): void;
  tcpClosed(labels: TcpLabels): void;
  /** Adds byte counts as they flow (or once at close); `sent` is proxy→peer on the reporting side. */
  tcpBytes(labels: TcpLabels, bytes: { sent: number; received: number }): void;
}

/**
 * Unknown labels print as "unknown", as Istio does when peer metadata is missing; connection security
 * policy defaults to "none" (plaintext), "mutual_tls" must be stated by the caller.
 */
function fill<T extends string>(names: readonly T[], labels: Partial<Record<T, string | number>>): Record<T, string> {
  const out = {} as Record<T, string>;
  for (const name of names) {
    const v = labels[name];
    out[name] = v === undefined || v === '' ? (name === 'connection_security_policy' ? 'none' : name === 'response_flags' ? '-' : 'unknown') : String(v);
  }
  return out;
}

/** Registers Istio's standard metrics in `registry` (once per registry) and returns the recorder. */
export function createMeshMetrics(registry: Registry): MeshMetrics {
  const registers = [registry];
  const requestLabels = [...REQUEST_LABELS];
  const tcpLabels = [...TCP_LABELS];
  const requests = new Counter({ name: 'istio_requests_total', help: 'Requests handled by the proxy.', labelNames: requestLabels, registers });
  const duration = new Histogram({
    name: 'istio_request_duration_milliseconds',
    help: 'Request durations in milliseconds.',
    labelNames: requestLabels,
    buckets: DURATION_BUCKETS_MS,
    registers,
  });
  const requestBytes = new Histogram({ name: 'istio_request_bytes', help: 'Request body sizes in bytes.', labelNames: requestLabels, buckets: SIZE_BUCKETS_BYTES, registers });
  const responseBytes = new Histogram({ name: 'istio_response_bytes', help: 'Response body sizes in bytes.', labelNames: requestLabels, buckets: SIZE_BUCKETS_BYTES, registers });
  const opened = new Counter({ name: 'istio_tcp_connections_opened_total', help: 'TCP connections opened.', labelNames: tcpLabels, registers });
  const closed = new Counter({ name: 'istio_tcp_connections_closed_total', help: 'TCP connections closed.', labelNames: tcpLabels, registers });
  const sent = new Counter({ name: 'istio_tcp_sent_bytes_total', help: 'Bytes sent during TCP connections.', labelNames: tcpLabels, registers });
  const received = new Counter({ name: 'istio_tcp_received_bytes_total', help: 'Bytes received during TCP connections.', labelNames: tcpLabels, registers });

  return {
    recordRequest(labels, sample) {
      const l = fill(REQUEST_LABELS, labels);
      requests.inc(l);
      duration.observe(l, sample.durationMs);
      requestBytes.observe(l, sample.requestBytes);
      responseBytes.observe(l, sample.responseBytes);
    },
    tcpOpened: (labels) => opened.inc(fill(TCP_LABELS, { request_protocol: 'tcp', ...labels })),
    tcpClosed: (labels) => closed.inc(fill(TCP_LABELS, { request_protocol: 'tcp', ...labels })),
    tcpBytes(labels, bytes) {
      const l = fill(TCP_LABELS, { request_protocol: 'tcp', ...labels });
      if (bytes.sent > 0) sent.inc(l, bytes.sent);
      if (bytes.received > 0) received.inc(l, bytes.received);
    },
  };
}

/**
 * An HTTP handler serving `registry` in the Prometheus text format at `/stats/prometheus` (Envoy's admin
 * path). Returns false, without answering, for any other path so it can sit in front of other handlers.
 */
export function createPrometheusHandler(registry: Registry): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/stats/prometheus') return false;
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
    return true;
  };
}
