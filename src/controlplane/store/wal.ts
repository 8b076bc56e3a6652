import type { Resource } from '../../api/types.js';
import type { Change } from './state.js';
import type { WatchEventType } from './types.js';

/**
 * Write-ahead log framing. The file starts with MAGIC; then records, each
 *   u32be payload length | u32be CRC-32 of payload | payload (UTF-8 JSON {r: revision, c: [[type, object], …]})
 * A record is trusted only if it is complete, its CRC matches, it parses, and its revision follows the previous one.
 */
export const MAGIC = Buffer.from('CMWAL01\n', 'latin1');
const HEADER = 8;
/** Larger lengths can only come from corruption; refusing them avoids huge allocations. */
const MAX_RECORD = 256 * 1024 * 1024;

const typeCodes: Record<WatchEventType, string> = { ADDED: 'A', MODIFIED: 'M', DELETED: 'D' };
const codeTypes: Record<string, WatchEventType> = { A: 'ADDED', M: 'MODIFIED', D: 'DELETED' };

export interface WalRecord {
  revision: number;
  changes: Change[];
}

export function encodeRecord(rec: WalRecord): Buffer {
  const payload = Buffer.from(
    JSON.stringify({ r: rec.revision, c: rec.changes.map((c) => [typeCodes[c.type], c.object]) }),
    'utf8',
  );
  const head = Buffer.alloc(HEADER);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt32BE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

export interface DecodeResult {
  records: WalRecord[];
  /** Offset just after the last good record: where the file must be truncated to. */
  goodEnd: number;
  /** Why decoding stopped before the end of the buffer, if it did. */
  problem?: { offset: number; reason: string };
}

/** Reads records until the end or the first bad one; never throws. `afterRevision` is the last revision known good. */
export function decodeLog(buf: Buffer, afterRevision: number): DecodeResult {
  const records: WalRecord[] = [];
  if (buf.length < MAGIC.length) {
    return buf.length === 0
      ? { records, goodEnd: 0 }
      : { records, goodEnd: 0, problem: { offset: 0, reason: 'truncated file header' } };
  }
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { records, goodEnd: 0, problem: { offset: 0, reason: 'bad file header (not a crossmesh log)' } };
  }
  let off = MAGIC.length;
  let last = -1;
  while (off < buf.length) {
    const fail = (reason: string): DecodeResult => ({ records, goodEnd: off, problem: { offset: off, reason } });
    if (buf.length - off < HEADER) return fail(`torn record header (${buf.length - off} of ${HEADER} bytes)`);
    const len = buf.readUInt32BE(off);
    const crc = buf.readUInt32BE(off + 4);
    if (len > MAX_RECORD) return fail(`implausible record length ${len}`);
    if (buf.length - off - HEADER < len) return fail(`torn record (${buf.length - off - HEADER} of ${len} payload bytes)`);
    const payload = buf.subarray(off + HEADER, off + HEADER + len);
    if (crc32(payload) !== crc) return fail('checksum mismatch');
    let rec: WalRecord;
    try {
      rec = parsePayload(payload);
    } catch (err) {
      return fail(`unreadable record: ${(err as Error).message}`);
    }
    // Records at or below the snapshot's revision are leftovers of a compaction that was interrupted.
    if (rec.revision > afterRevision) {
      const expected = last < 0 ? afterRevision + 1 : last + 1;
      if (rec.revision !== expected) return fail(`revision ${rec.revision} where ${expected} was expected`);
      last = rec.revision;
      records.push(rec);
    }
    off += HEADER + len;
  }
  return { records, goodEnd: off };
}

function parsePayload(payload: Buffer): WalRecord {
  const raw = JSON.parse(payload.toString('utf8')) as { r?: unknown; c?: unknown };
  if (typeof raw.r !== 'number' || !Number.isSafeInteger(raw.r) || !Array.isArray(raw.c)) {
    throw new Error('missing revision or changes');
  }
  const changes = raw.c.map((entry: unknown): Change => {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !codeTypes[entry[0]]) throw new Error('bad change');
    const object = entry[1] as Resource;
    if (typeof object !== 'object' || object === null || typeof object.metadata !== 'object') throw new Error('bad object');
    return { type: codeTypes[entry[0]]!, object };
  });
  return { revision: raw.r, changes };
}

const table = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE), as zlib computes it; our own so any Node 20 works. */
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = table[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
