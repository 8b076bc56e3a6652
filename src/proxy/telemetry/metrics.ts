/**
 * Istio's standard metrics, recorded by the proxy (reporter `source` on the client side, `destination` on
 * the server side, as Envoy's stats filter does). Names, label names and bucket boundaries follow Istio so
 * dashboards and alerts written for Istio read ours.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { TableCounter, TableHistogram, createSeriesTable, histogramSlots, keyPart, observeInto } from './series-table.js';
import type { Series, SeriesTable } from './series-table.js';

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

/** HTTP/gRPC request metrics also carry the response code, and gRPC's status (empty for plain HTTP). */
export const REQUEST_LABELS = [...TCP_LABELS, 'response_code', 'grpc_response_status'] as const;

export type TcpLabelName = (typeof TCP_LABELS)[number];
export type RequestLabelName = (typeof REQUEST_LABELS)[number];
export type TcpLabels = Partial<Record<TcpLabelName, string>>;
export type RequestLabels = Partial<Record<RequestLabelName, string | number | undefined>>;

/** Istio's default duration buckets, in milliseconds. */
export const DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
/** Istio's default size buckets: powers of ten from 1 B to 1 GB. */
export const SIZE_BUCKETS_BYTES = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** The proxy's view of the metrics: record functions only; the Prometheus objects stay inside. */
export interface MeshMetrics {
  /**
   * One finished HTTP request: counts it and observes its duration and body sizes. The series key of a
   * labels object is remembered by identity, so a caller may pass the same object again (cheaper) but must
   * not change it after the first call.
   */
  recordRequest(labels: RequestLabels, sample: { durationMs: number; requestBytes: number; responseBytes: number }): void;
  tcpOpened(labels: TcpLabels): void;
  tcpClosed(labels: TcpLabels): void;
  /** Adds byte counts as they flow (or once at close); `sent` is proxy→peer on the reporting side. */
  tcpBytes(labels: TcpLabels, bytes: { sent: number; received: number }): void;
  /**
   * Names where Envoy's per-cluster connection stats are read at scrape time; called once by the proxy
   * that owns the clusters (a later call replaces the source).
   */
  clusterConnections?(source: () => Iterable<ClusterConnectionStats>): void;
}

/** One cluster's connection circuit-breaker state, as Envoy's `cluster.<name>.upstream_cx_*` stats. */
export interface ClusterConnectionStats {
  name: string;
  /** Open upstream connections (`upstream_cx_active`). */
  active: number;
  /** Connections refused or queued by max_connections so far (`upstream_cx_overflow`). */
  overflow: number;
}

/**
 * Unknown labels print as "unknown", as Istio does when peer metadata is missing; connection security
 * policy defaults to "none" (plaintext), "mutual_tls" must be stated by the caller.
 */
function defaultFor(name: string): string {
  if (name === 'grpc_response_status') return '';
  return name === 'connection_security_policy' ? 'none' : name === 'response_flags' ? '-' : 'unknown';
}

/**
 * Label sets a proxy keeps per table (HTTP requests, TCP) unless told otherwise; see createSeriesTable. A
 * request series with Istio's labels takes about 2.6 KB of heap, so the request table stays under ~13 MB
 * however many label values peers make up. A sidecar normally has tens to hundreds.
 */
export const DEFAULT_MAX_SERIES = 5000;

export interface MeshMetricsOptions {
  /**
   * Label sets kept per table (one for the four request metrics, one for the four TCP metrics). Beyond it
   * the least recently used series is dropped from the scrape. Default DEFAULT_MAX_SERIES.
   */
  maxSeries?: number;
}

/**
 * The series for `labels`, created on first sight. Each label is keyed with its default applied (absent or
 * empty: `defaults[i]`), so labels that print the same share one series.
 */
function seriesFor(
  table: SeriesTable,
  names: readonly string[],
  defaults: readonly string[],
  labels: Partial<Record<string, string | number | undefined>>,
  slots: number,
  key = seriesKey(names, defaults, labels),
): Series {
  const found = table.get(key);
  if (found) return found;
  const out: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) {
    const v = labels[names[i]!];
    out[names[i]!] = v === undefined || v === '' ? defaults[i]! : String(v);
  }
  return table.add(key, Object.freeze(out), slots);
}

function seriesKey(names: readonly string[], defaults: readonly string[], labels: Partial<Record<string, string | number | undefined>>): string {
  let key = '';
  for (let i = 0; i < names.length; i++) {
    const v = labels[names[i]!];
    key += keyPart(v === undefined || v === '' ? defaults[i]! : typeof v === 'string' ? v : String(v));
  }
  return key;
}

/** Registers Istio's standard metrics in `registry` (once per registry) and returns the recorder. */
export function createMeshMetrics(registry: Registry, options: MeshMetricsOptions = {}): MeshMetrics {
  const maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
  const registers = [registry];
  const requestLabels = [...REQUEST_LABELS];
  const tcpLabels = [...TCP_LABELS];
  const requestDefaults = requestLabels.map(defaultFor);
  const tcpDefaults = tcpLabels.map(defaultFor);
  const protocolAt = tcpLabels.indexOf('request_protocol');

  // Request series layout: the count, then the duration, request size and response size histograms.
  const requestTable = createSeriesTable(maxSeries);
  /** Series keys of label objects seen before (see recordRequest). */
  const requestKeys = new WeakMap<RequestLabels, string>();
  const DURATION = 1;
  const REQUEST_SIZE = DURATION + histogramSlots(DURATION_BUCKETS_MS);
  const RESPONSE_SIZE = REQUEST_SIZE + histogramSlots(SIZE_BUCKETS_BYTES);
  const requestSlots = RESPONSE_SIZE + histogramSlots(SIZE_BUCKETS_BYTES);
  new TableCounter({ name: 'istio_requests_total', help: 'Requests handled by the proxy.', labelNames: requestLabels, registers }, requestTable, 0);
  new TableHistogram(
    { name: 'istio_request_duration_milliseconds', help: 'Request durations in milliseconds.', labelNames: requestLabels, buckets: DURATION_BUCKETS_MS, registers },
    requestTable,
    DURATION,
  );
  new TableHistogram({ name: 'istio_request_bytes', help: 'Request body sizes in bytes.', labelNames: requestLabels, buckets: SIZE_BUCKETS_BYTES, registers }, requestTable, REQUEST_SIZE);
  new TableHistogram({ name: 'istio_response_bytes', help: 'Response body sizes in bytes.', labelNames: requestLabels, buckets: SIZE_BUCKETS_BYTES, registers }, requestTable, RESPONSE_SIZE);

  // TCP series layout: opened, closed, sent, received.
  const tcpTable = createSeriesTable(maxSeries);
  const [OPENED, CLOSED, SENT, RECEIVED] = [0, 1, 2, 3] as const;
  new TableCounter({ name: 'istio_tcp_connections_opened_total', help: 'TCP connections opened.', labelNames: tcpLabels, registers }, tcpTable, OPENED);
  new TableCounter({ name: 'istio_tcp_connections_closed_total', help: 'TCP connections closed.', labelNames: tcpLabels, registers }, tcpTable, CLOSED);
  new TableCounter({ name: 'istio_tcp_sent_bytes_total', help: 'Bytes sent during TCP connections.', labelNames: tcpLabels, registers }, tcpTable, SENT);
  new TableCounter({ name: 'istio_tcp_received_bytes_total', help: 'Bytes received during TCP connections.', labelNames: tcpLabels, registers }, tcpTable, RECEIVED);

  const tcpDefaultsWithTcp = tcpDefaults.map((d, i) => (i === protocolAt ? 'tcp' : d));
  const tcpSeries = (labels: TcpLabels): Series => {
    // request_protocol is "tcp" unless the caller names it (an explicit undefined then reads "unknown").
    const defaults = 'request_protocol' in labels ? tcpDefaults : tcpDefaultsWithTcp;
    return seriesFor(tcpTable, tcpLabels, defaults, labels, 4);
  };
  const add = (values: Float64Array, slot: number, n: number): void => {
    // As prom-client's inc: a non-finite or negative amount is a caller bug, not a sample.
    if (Number.isFinite(n) && n > 0) values[slot]! += n;
  };

  // Read from the clusters when scraped: nothing to do per connection, and removed clusters disappear as
  // their Envoy stats do.
  let clusters: () => Iterable<ClusterConnectionStats> = () => [];
  new Gauge({
    name: 'envoy_cluster_upstream_cx_active',
    help: 'Open upstream connections per cluster.',
    labelNames: ['cluster_name'],
    registers,
    collect() {
      this.reset();
      for (const c of clusters()) this.set({ cluster_name: c.name }, c.active);
    },
  });
  new Counter({
    name: 'envoy_cluster_upstream_cx_overflow',
    help: 'Upstream connections refused or queued by the cluster\'s max_connections circuit breaker.',
    labelNames: ['cluster_name'],
    registers,
    collect() {
      this.reset();
      for (const c of clusters()) this.inc({ cluster_name: c.name }, c.overflow);
    },
  });

  return {
    clusterConnections(source) {
      clusters = source;
    },
    recordRequest(labels, sample) {
      let key = requestKeys.get(labels);
      if (key === undefined) {
        key = seriesKey(requestLabels, requestDefaults, labels);
        requestKeys.set(labels, key);
      }
      const v = seriesFor(requestTable, requestLabels, requestDefaults, labels, requestSlots, key).values;
      v[0]!++;
      observeInto(v, DURATION, DURATION_BUCKETS_MS, sample.durationMs);
      observeInto(v, REQUEST_SIZE, SIZE_BUCKETS_BYTES, sample.requestBytes);
      observeInto(v, RESPONSE_SIZE, SIZE_BUCKETS_BYTES, sample.responseBytes);
    },
    tcpOpened: (labels) => void tcpSeries(labels).values[OPENED]!++,
    tcpClosed: (labels) => void tcpSeries(labels).values[CLOSED]!++,
    tcpBytes(labels, bytes) {
      const v = tcpSeries(labels).values;
      add(v, SENT, bytes.sent);
      add(v, RECEIVED, bytes.received);
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
