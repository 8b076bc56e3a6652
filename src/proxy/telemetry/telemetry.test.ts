import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ACCESS_LOG_FIELDS, completeAccessLogRecord, createAccessLogger, createLineBatcher, createMeshMetrics, createPrometheusHandler, formatAddress, formatResponseFlags } from './index.js';
import type { AccessLogInput } from './index.js';
import { createSeriesTable } from './series-table.js';

test('access log lines carry exactly the Envoy field names, in order, with nulls for unknowns', () => {
  const lines: string[] = [];
  const log = createAccessLogger({ write: (l) => lines.push(l) });
  log.log({ start_time: '2026-01-01T00:00:00.000Z', requested_server_name: 'outbound_.80_._.a.b.svc.cluster.local', response_flags: 'UF', bytes_sent: 12 });
  assert.equal(lines.length, 1);
  const obj = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(obj), [...ACCESS_LOG_FIELDS]);
  assert.equal(obj.requested_server_name, 'outbound_.80_._.a.b.svc.cluster.local');
  assert.equal(obj.response_flags, 'UF');
  assert.equal(obj.bytes_sent, 12);
  assert.equal(obj.bytes_received, 0);
  assert.equal(obj.method, null);
  log.log({ start_time: '2026-01-01T00:00:00.000Z' });
  assert.equal((JSON.parse(lines[1]!) as Record<string, unknown>).response_flags, '-');
});

test('addresses and flags are formatted as Envoy prints them', () => {
  assert.equal(formatAddress('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(formatAddress('::ffff:127.0.0.1', 5), '127.0.0.1:5');
  assert.equal(formatAddress('fd00::1', 443), '[fd00::1]:443');
  assert.equal(formatAddress(undefined, 1), null);
  assert.equal(formatResponseFlags([]), '-');
  assert.equal(formatResponseFlags(['UF', 'URX', 'UF']), 'UF,URX');
});

test('Istio standard metrics are scraped from /stats/prometheus with their labels', async () => {
  const registry = new Registry();
  const metrics = createMeshMetrics(registry);
  const labels = {
    reporter: 'destination',
    source_workload: 'sleep',
    source_workload_namespace: 'sample',
    source_principal: 'spiffe://cluster.local/ns/sample/sa/sleep',
    source_cluster: 'cluster-1',
    destination_service: 'helloworld.sample.svc.cluster.local',
    destination_service_name: 'helloworld',
    destination_service_namespace: 'sample',
    destination_workload: 'helloworld-v1',
    destination_workload_namespace: 'sample',
    destination_principal: 'spiffe://cluster.local/ns/sample/sa/helloworld',
    destination_cluster: 'cluster-2',
    connection_security_policy: 'mutual_tls',
  };
  metrics.recordRequest({ ...labels, request_protocol: 'http', response_code: 200 }, { durationMs: 7, requestBytes: 0, responseBytes: 1024 });
  metrics.recordRequest({ ...labels, request_protocol: 'http', response_code: 503, response_flags: 'UF' }, { durationMs: 1, requestBytes: 0, responseBytes: 19 });
  metrics.tcpOpened(labels);
  metrics.tcpBytes(labels, { sent: 300, received: 120 });
  metrics.tcpClosed(labels);

  const handler = createPrometheusHandler(registry);
  const server = http.createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await fetch(`${base}/other`)).status, 404);
    const res = await fetch(`${base}/stats/prometheus`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const sample = (name: string, must: string[]): number => {
      const line = text.split('\n').find((l) => l.startsWith(name + '{') && must.every((m) => l.includes(m)));
      assert.ok(line, `no ${name} sample with ${must.join(' ')}`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const who = ['reporter="destination"', 'source_workload="sleep"', 'destination_cluster="cluster-2"', 'connection_security_policy="mutual_tls"'];
    assert.equal(sample('istio_requests_total', [...who, 'response_code="200"', 'response_flags="-"']), 1);
    assert.equal(sample('istio_requests_total', [...who, 'response_code="503"', 'response_flags="UF"']), 1);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', ['response_code="200"', 'le="10"']), 1);
    assert.equal(sample('istio_request_duration_milliseconds_bucket', ['response_code="200"', 'le="5"']), 0);
    assert.equal(sample('istio_response_bytes_sum', ['response_code="200"']), 1024);
    assert.equal(sample('istio_request_bytes_count', ['response_code="503"']), 1);
    assert.equal(sample('istio_tcp_connections_opened_total', [...who, 'request_protocol="tcp"']), 1);
    assert.equal(sample('istio_tcp_connections_closed_total', who), 1);
    assert.equal(sample('istio_tcp_sent_bytes_total', who), 300);
    assert.equal(sample('istio_tcp_received_bytes_total', who), 120);
    // Labels not given are "unknown", as Istio reports missing peer metadata.
    assert.ok(text.includes('source_app="unknown"'));
  } finally {
    server.close();
  }
});

test('access log records: every field defaulted as the field list says, whatever the caller passed', () => {
  // The reference: defaults derived from ACCESS_LOG_FIELDS, as the logger did before it was unrolled.
  const numeric = new Set(['response_code', 'bytes_received', 'bytes_sent', 'duration']);
  const reference = (input: AccessLogInput): string =>
    JSON.stringify(Object.fromEntries(ACCESS_LOG_FIELDS.map((k) => [k, input[k] !== undefined ? input[k] : k === 'response_flags' ? '-' : numeric.has(k) ? 0 : null])));
  const inputs: AccessLogInput[] = [
    { start_time: '2026-01-01T00:00:00.000Z' },
    { start_time: 't', method: 'GET', path: '/a"b\\c\n', response_code: 503, response_flags: 'UF,URX', bytes_received: 1, bytes_sent: 2, duration: 3.5, user_agent: 'ü \u0001', route_name: null },
    { start_time: 't', response_flags: null as unknown as string, duration: NaN, extra: 'dropped' } as AccessLogInput,
  ];
  const lines: string[] = [];
  const log = createAccessLogger({ write: (l) => lines.push(l) });
  for (const input of inputs) {
    const record = log.log(input);
    assert.equal(lines.at(-1), reference(input));
    assert.deepEqual(Object.keys(record), [...ACCESS_LOG_FIELDS]);
    assert.deepEqual(completeAccessLogRecord(input), record);
  }
});

test('line batcher: one sink write per turn, at once past the size bound, and on flush', () => {
  const chunks: string[] = [];
  const turns: Array<() => void> = [];
  const batch = createLineBatcher({ sink: (c) => chunks.push(c), maxChars: 20, schedule: (fn) => turns.push(fn) });
  batch.write('a');
  batch.write('b');
  assert.deepEqual(chunks, []);
  assert.equal(turns.length, 1, 'one flush scheduled per turn');
  turns.shift()!();
  assert.deepEqual(chunks, ['a\nb\n']);
  batch.write('0123456789');
  batch.write('0123456789');
  assert.deepEqual(chunks.at(-1), '0123456789\n0123456789\n', 'written as soon as the bound is passed');
  assert.equal(batch.pending, 0);
  batch.write('last');
  batch.flush();
  assert.equal(chunks.at(-1), 'last\n');
  for (const turn of turns.splice(0)) turn();
  assert.equal(chunks.length, 3, 'nothing left for the scheduled turn, nothing written twice');
});

test('metric series are bounded: a flood of one-off label sets cannot grow them, and a busy series survives it', async () => {
  const registry = new Registry();
  const metrics = createMeshMetrics(registry, { maxSeries: 3 });
  const busy = { reporter: 'source', destination_service: 'busy', response_code: 200 };
  const sample = { durationMs: 1, requestBytes: 0, responseBytes: 1 };
  metrics.recordRequest(busy, sample);
  for (let i = 0; i < 50; i++) {
    metrics.recordRequest({ ...busy, destination_service: `hostile-${i}` }, sample);
    metrics.recordRequest(busy, sample);
    metrics.tcpOpened({ source_principal: `spiffe://x/ns/n/sa/${i}` });
  }
  const requests = (await registry.getSingleMetric('istio_requests_total')!.get()).values;
  assert.ok(requests.length <= 3, `${requests.length} series`);
  assert.equal(requests.find((v) => v.labels.destination_service === 'busy')?.value, 51);
  assert.ok(requests.some((v) => v.labels.destination_service === 'hostile-49'), 'the newest label set is recorded');
  const duration = (await registry.getSingleMetric('istio_request_duration_milliseconds')!.get()).values;
  assert.equal(duration.filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count')).length, requests.length);
  assert.ok((await registry.getSingleMetric('istio_tcp_connections_opened_total')!.get()).values.length <= 3);

  const table = createSeriesTable(2);
  table.add('a', {}, 1);
  table.add('b', {}, 1);
  table.get('a');
  table.add('c', {}, 1);
  assert.deepEqual([table.size, table.evicted, table.get('a') !== undefined, table.get('b')], [2, 1, true, undefined]);
  assert.throws(() => createSeriesTable(0), /maxSeries: must be a positive integer/);
});

test('a labels object passed again reuses its series, equal labels in another object share it, and an evicted one comes back', async () => {
  const registry = new Registry();
  const metrics = createMeshMetrics(registry, { maxSeries: 1 });
  const sample = { durationMs: 1, requestBytes: 0, responseBytes: 1 };
  const a = { reporter: 'source', destination_service: 'a', response_code: 200 };
  metrics.recordRequest(a, sample);
  metrics.recordRequest(a, sample);
  metrics.recordRequest({ ...a }, sample);
  const count = async (svc: string) => (await registry.getSingleMetric('istio_requests_total')!.get()).values.find((v) => v.labels.destination_service === svc)?.value;
  assert.equal(await count('a'), 3);
  metrics.recordRequest({ ...a, destination_service: 'b' }, sample);
  assert.equal(await count('a'), undefined, 'evicted by b (the table holds one series)');
  metrics.recordRequest(a, sample);
  assert.equal(await count('a'), 1, 'the remembered key finds no series and starts a new one');
  assert.equal(await count('b'), undefined);
});
