export { ACCESS_LOG_FIELDS, createAccessLogger, completeAccessLogRecord, formatAddress, formatResponseFlags } from './access-log.js';
export type { AccessLogField, AccessLogRecord, AccessLogInput, AccessLogger, AccessLoggerOptions } from './access-log.js';
export { createMeshMetrics, createPrometheusHandler, TCP_LABELS, REQUEST_LABELS, DURATION_BUCKETS_MS, SIZE_BUCKETS_BYTES, DEFAULT_MAX_SERIES } from './metrics.js';
export type { ClusterConnectionStats, MeshMetrics, MeshMetricsOptions, TcpLabels, RequestLabels, TcpLabelName, RequestLabelName } from './metrics.js';
export { createLineBatcher } from './line-batcher.js';
export type { LineBatcher, LineBatcherOptions } from './line-batcher.js';
