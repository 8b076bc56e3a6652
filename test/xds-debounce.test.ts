/** The push debouncer on a fake clock: quiet period, bounded delay, no overlapping runs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDebouncer } from '../src/controlplane/server/index.js';
import type { DebouncedBatch } from '../src/controlplane/server/index.js';
import { createFakeClock } from './xds-helpers.js';

test('fires once, quietMs after the last trigger of a burst', () => {
  const clock = createFakeClock();
  const batches: Array<DebouncedBatch<string>> = [];
  const d = createDebouncer<string>({ quietMs: 100, maxDelayMs: 1000, clock }, (b) => void batches.push(b));
  d.trigger('a');
  clock.advance(60);
  d.trigger('b');
  clock.advance(99);
  assert.equal(batches.length, 0);
  assert.ok(d.pending);
  clock.advance(1);
  assert.deepEqual(batches, [{ triggers: 2, reasons: ['a', 'b'], delayMs: 160 }]);
  assert.ok(!d.pending);
  clock.advance(10_000);
  assert.equal(batches.length, 1);
});

test('a steady stream of triggers still fires every maxDelayMs', () => {
  const clock = createFakeClock();
  const fired: number[] = [];
  const d = createDebouncer({ quietMs: 100, maxDelayMs: 1000, clock }, (b) => void fired.push(b.delayMs));
  for (let t = 0; t < 2500; t += 50) {
    d.trigger();
    clock.advance(50);
  }
  assert.deepEqual(fired, [1000, 1000]);
  clock.advance(100);
  assert.equal(fired.length, 3, 'the tail fires after the quiet period');
});

test('runs never overlap: triggers during a run form the next batch after it', async () => {
  const clock = createFakeClock();
  const batches: Array<DebouncedBatch<string>> = [];
  let release: () => void = () => {};
  let running = 0;
  const d = createDebouncer<string>({ quietMs: 10, maxDelayMs: 50, clock }, async (b) => {
    running++;
    assert.equal(running, 1);
    batches.push(b);
    await new Promise<void>((r) => (release = r));
    running--;
  });
  d.trigger('first');
  clock.advance(10);
  assert.equal(batches.length, 1);
  d.trigger('second');
  clock.advance(100);
  assert.equal(batches.length, 1, 'held while the first run is in progress');
  release();
  await new Promise((r) => setImmediate(r));
  clock.advance(0);
  assert.deepEqual(batches.map((b) => b.reasons), [['first'], ['second']]);
  release();
  await d.flush();
  assert.ok(!d.pending);
});

test('flush fires now, close drops the pending burst, bad options are refused', async () => {
  const clock = createFakeClock();
  let n = 0;
  const d = createDebouncer({ quietMs: 100, maxDelayMs: 1000, clock }, () => void n++);
  d.trigger();
  await d.flush();
  assert.equal(n, 1);
  d.trigger();
  d.close();
  clock.advance(5000);
  assert.equal(n, 1);
  assert.equal(clock.pending(), 0);
  assert.throws(() => createDebouncer({ quietMs: 100, maxDelayMs: 10 }, () => {}), /maxDelayMs/);
});
