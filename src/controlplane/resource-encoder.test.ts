import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URLS, encodeResource } from '../xds/index.js';
import { createResourceEncoder } from './resource-encoder.js';

const cluster = (name: string, timeoutS: number) => ({ name, type: 'EDS', connect_timeout: { seconds: timeoutS } });

test('encodes byte for byte as encodeResource, reusing equal content', () => {
  const encoder = createResourceEncoder();
  const a = encoder.encode(TYPE_URLS.cluster, cluster('a', 1));
  assert.deepEqual(a, encodeResource(TYPE_URLS.cluster, cluster('a', 1)));
  assert.equal(encoder.encode(TYPE_URLS.cluster, cluster('a', 1)), a, 'equal content: the same Any');
  const changed = encoder.encode(TYPE_URLS.cluster, cluster('a', 2));
  assert.notDeepEqual(changed.value, a.value, 'changed content: new bytes');
  assert.deepEqual(changed, encodeResource(TYPE_URLS.cluster, cluster('a', 2)));
  assert.deepEqual(encoder.stats(), { entries: 2, hits: 1, misses: 2 });
});

test('content JSON cannot represent is encoded every time, never cached', () => {
  const encoder = createResourceEncoder();
  const lb = (v: number) => ({ cluster_name: 'x', endpoints: [{ load_balancing_weight: { value: v } }] });
  encoder.encode(TYPE_URLS.endpoint, lb(NaN));
  assert.equal(encoder.stats().entries, 0);
  // Were NaN cached as "null", this null-free object would still differ; make sure both encode as the codec does.
  assert.deepEqual(encoder.encode(TYPE_URLS.endpoint, lb(1)), encodeResource(TYPE_URLS.endpoint, lb(1)));
});

test('endPass drops entries of the given types not used since the pass began', () => {
  const encoder = createResourceEncoder();
  encoder.encode(TYPE_URLS.cluster, cluster('a', 1));
  encoder.encode(TYPE_URLS.cluster, cluster('b', 1));
  encoder.encode(TYPE_URLS.endpoint, { cluster_name: 'a' });
  const pass = encoder.beginPass();
  encoder.encode(TYPE_URLS.cluster, cluster('a', 1));
  encoder.endPass(pass, [TYPE_URLS.endpoint]);
  assert.equal(encoder.stats().entries, 2, 'only the endpoint entry went');
  encoder.endPass(pass);
  assert.equal(encoder.stats().entries, 1, 'then the unused cluster');
});
