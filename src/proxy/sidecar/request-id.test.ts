import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestId } from './request-id.js';

test('request ids are version 4 UUIDs, distinct across batches of random bytes', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = newRequestId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
  // Every hex digit shows up in every free position over 1000 ids: the bytes are random, not a counter.
  const first = [...seen].map((id) => id[0]);
  assert.equal(new Set(first).size, 16);
});
