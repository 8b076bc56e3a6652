/**
 * x-request-id values: random (version 4) UUIDs, as Envoy generates them. Random bytes are drawn in
 * batches, and each id is formatted into a scratch buffer and read out as one string; Node's randomUUID
 * builds its string from twenty concatenations, about 600 bytes of garbage per request.
 */
import { randomFillSync } from 'node:crypto';

const BATCH = 128;
const random = Buffer.alloc(16 * BATCH);
let next = BATCH;
const scratch = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

export function newRequestId(): string {
  if (next === BATCH) {
    randomFillSync(random);
    next = 0;
  }
  const o = next++ * 16;
  // Version 4, variant 10xx (RFC 9562).
  random[o + 6] = (random[o + 6]! & 0x0f) | 0x40;
  random[o + 8] = (random[o + 8]! & 0x3f) | 0x80;
  let p = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) scratch[p++] = 45; /* - */
    const b = random[o + i]!;
    scratch[p++] = HEX[b >> 4]!;
    scratch[p++] = HEX[b & 15]!;
  }
  return scratch.toString('latin1', 0, 36);
}
