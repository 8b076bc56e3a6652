import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSpiffeId, parseSpiffeId } from './spiffe.js';
import { formatDuration, parseDurationSeconds } from './duration.js';

test('SPIFFE IDs: parse the Istio shape, refuse others with a reason', () => {
  const ok = parseSpiffeId('spiffe://cluster.local/ns/sample/sa/sleep');
  assert.deepEqual(ok, { ok: true, id: { trustDomain: 'cluster.local', namespace: 'sample', serviceAccount: 'sleep', uri: 'spiffe://cluster.local/ns/sample/sa/sleep' } });
  for (const bad of ['spiffe://cluster.local/ns/sample', 'http://cluster.local/ns/a/sa/b', 'spiffe://Cluster.local/ns/a/sa/b', 'spiffe://td/ns/a/sa/b/extra', 'spiffe://td/ns/A/sa/b']) {
    assert.equal(parseSpiffeId(bad).ok, false, bad);
  }
  assert.equal(formatSpiffeId('td.org', 'ns1', 'sa-1'), 'spiffe://td.org/ns/ns1/sa/sa-1');
});

test('durations: 90s, 30m, 24h, 7d, 1h30m, bare seconds; refuse others', () => {
  assert.deepEqual(['90s', '30m', '24h', '7d', '1h30m', '15'].map((d) => parseDurationSeconds(d)), [90, 1800, 86400, 604800, 5400, 15]);
  for (const bad of ['', '0', '0s', '1w', '-5m', 'h']) assert.throws(() => parseDurationSeconds(bad, '--ttl'), /--ttl: must be a positive duration/);
  assert.deepEqual([86400, 172800, 90, 3600].map(formatDuration), ['24h', '2d', '1m30s', '1h']);
});
