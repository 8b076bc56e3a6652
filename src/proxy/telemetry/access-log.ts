/**
 * Envoy-style JSON access log: one object per HTTP request or TCP connection, always carrying the same keys
 * in the same order (the field names Istio's JSON access log uses), so that log tooling written for Envoy
 * reads ours unchanged.
 */

/** The access-log keys, in output order. */
export const ACCESS_LOG_FIELDS = [
  'start_time',
  'method',
  'path',
  'protocol',
  'response_code',
  'response_flags',
  'bytes_received',
  'bytes_sent',
  'duration',
  'upstream_host',
  'upstream_cluster',
  'upstream_local_address',
  'downstream_local_address',
  'downstream_remote_address',
  'requested_server_name',
  'authority',
  'user_agent',
  'request_id',
  'route_name',
  'upstream_transport_failure_reason',
] as const;

export type AccessLogField = (typeof ACCESS_LOG_FIELDS)[number];

/** One record; every key is present in the output, absent values print as null (response_flags as "-"). */
export interface AccessLogRecord {
  /** ISO-8601 with milliseconds, UTC, when the request or connection began. */
  start_time: string;
  method: string | null;
  path: string | null;
  /** `HTTP/1.1`, `HTTP/2`, or null for TCP. */
  protocol: string | null;
  /** HTTP status; 0 for TCP, as Envoy logs it. */
  response_code: number;
  /** Comma-joined Envoy short flags (`UF`, `UH`, `NR`, `URX`, …) or `-` for none. */
  response_flags: string;
  bytes_received: number;
  bytes_sent: number;
  /** Milliseconds from start to the end of the exchange. */
  duration: number;
  upstream_host: string | null;
  upstream_cluster: string | null;
  upstream_local_address: string | null;
  downstream_local_address: string | null;
  downstream_remote_address: string | null;
  requested_server_name: string | null;
  authority: string | null;
  user_agent: string | null;
  request_id: string | null;
  route_name: string | null;
  upstream_transport_failure_reason: string | null;
}

/** What a caller hands the logger: start_time and duration-related fields plus whatever it knows. */
export type AccessLogInput = Partial<AccessLogRecord> & Pick<AccessLogRecord, 'start_time'>;

export interface AccessLogger {
  /** Completes `input` with defaults for missing keys, writes it as one JSON line, and returns the record. */
  log(input: AccessLogInput): AccessLogRecord;
}

export interface AccessLoggerOptions {
  /** Receives one JSON text per record, without a trailing newline. */
  write(line: string): void;
}

/** Formats an address as Envoy does: `ip:port`, with brackets for IPv6. */
export function formatAddress(address: string | undefined, port: number | undefined): string | null {
  if (address === undefined || address === '') return null;
  const host = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  const shown = host.includes(':') ? `[${host}]` : host;
  return port === undefined ? shown : `${shown}:${port}`;
}

/** Joins Envoy response flags the way Envoy prints them: comma-separated, `-` when there are none. */
export function formatResponseFlags(flags: Iterable<string>): string {
  const list = [...new Set(flags)];
  return list.length === 0 ? '-' : list.join(',');
}

const or = <T, D>(v: T | undefined, missing: D): T | D => (v === undefined ? missing : v);

/**
 * The record with every key, in ACCESS_LOG_FIELDS order, absent ones defaulted. Written out key by key
 * (not looped over the field list) so every record has one shape and JSON.stringify of it is cheap.
 */
export function completeAccessLogRecord(input: AccessLogInput): AccessLogRecord {
  return {
    start_time: input.start_time,
    method: or(input.method, null),
    path: or(input.path, null),
    protocol: or(input.protocol, null),
    response_code: or(input.response_code, 0),
    response_flags: or(input.response_flags, '-'),
    bytes_received: or(input.bytes_received, 0),
    bytes_sent: or(input.bytes_sent, 0),
    duration: or(input.duration, 0),
    upstream_host: or(input.upstream_host, null),
    upstream_cluster: or(input.upstream_cluster, null),
    upstream_local_address: or(input.upstream_local_address, null),
    downstream_local_address: or(input.downstream_local_address, null),
    downstream_remote_address: or(input.downstream_remote_address, null),
    requested_server_name: or(input.requested_server_name, null),
    authority: or(input.authority, null),
    user_agent: or(input.user_agent, null),
    request_id: or(input.request_id, null),
    route_name: or(input.route_name, null),
    upstream_transport_failure_reason: or(input.upstream_transport_failure_reason, null),
  };
}

export function createAccessLogger(options: AccessLoggerOptions): AccessLogger {
  return {
    log(input) {
      const record = completeAccessLogRecord(input);
      options.write(JSON.stringify(record));
      return record;
    },
  };
}
