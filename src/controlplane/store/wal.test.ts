import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import type { Resource } from '../../api/types.js';
import { MAGIC, crc32, decodeLog, encodeRecord } from './wal.js';
import type { WalRecord } from './wal.js';

function records(count: number, size: number): WalRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    revision: i + 1,
    changes: [
      {
        type: i % 3 === 2 ? 'DELETED' : 'ADDED',
        object: { apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'x' }, spec: { pad: 'p'.repeat(size) } } as Resource,
      },
    ],
  }));
}

function encode(recs: WalRecord[]): { buf: Buffer; ends: number[] } {
  const parts: Buffer[] = [MAGIC];
  const ends: number[] = [];
  let off = MAGIC.length;
  for (const r of recs) {
    const b = encodeRecord(r);
    parts.push(b);
    off += b.length;
    ends.push(off);
  }
  return { buf: Buffer.concat(parts), ends };
}

describe('write-ahead log framing', () => {
  it('computes the same CRC-32 as zlib', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => crc32(bytes) === zlibCrc32(bytes)));
  });

  it('round-trips records', () => {
    const recs = records(5, 10);
    const { buf, ends } = encode(recs);
    const res = decodeLog(buf, 0);
    assert.equal(res.problem, undefined);
    assert.equal(res.goodEnd, ends.at(-1));
    assert.deepEqual(res.records, recs);
  });

  it('after truncation at any point, recovers exactly the records that were complete', () => {
    const recs = records(6, 30);
    const { buf, ends } = encode(recs);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: buf.length }), (cut) => {
        const res = decodeLog(buf.subarray(0, cut), 0);
        const complete = ends.filter((e) => e <= cut).length;
        assert.deepEqual(res.records, recs.slice(0, complete));
        assert.equal(res.goodEnd, cut < MAGIC.length ? 0 : (ends[complete - 1] ?? MAGIC.length));
        assert.equal(res.problem !== undefined, cut !== res.goodEnd);
      }),
      { numRuns: 300 },
    );
  });

  it('after any byte is damaged, recovers a prefix including every record before the damage, and never throws', () => {
    const recs = records(6, 30);
    const { buf, ends } = encode(recs);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: buf.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, xor) => {
        const damaged = Buffer.from(buf);
        damaged[pos]! ^= xor;
        const res = decodeLog(damaged, 0);
        const before = ends.filter((e) => e <= pos).length;
        assert.ok(res.records.length >= (pos < MAGIC.length ? 0 : before));
        assert.ok(res.records.length <= before, 'the damaged record itself is never accepted');
        assert.deepEqual(res.records, recs.slice(0, res.records.length));
        assert.ok(res.problem);
      }),
      { numRuns: 400 },
    );
  });

  it('survives arbitrary garbage after the header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        const res = decodeLog(Buffer.concat([MAGIC, junk]), 0);
        assert.ok(res.goodEnd >= MAGIC.length && res.goodEnd <= MAGIC.length + junk.length);
      }),
    );
  });

  it('skips records a snapshot covers and refuses a gap in revisions', () => {
    const recs = records(5, 5);
    const { buf } = encode(recs);
    assert.deepEqual(decodeLog(buf, 3).records.map((r) => r.revision), [4, 5]);
    const gap = encode([recs[0]!, recs[2]!]);
    const res = decodeLog(gap.buf, 0);
    assert.deepEqual(res.records.map((r) => r.revision), [1]);
    assert.match(res.problem!.reason, /revision 3 where 2 was expected/);
  });
});
