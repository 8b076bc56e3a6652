/**
 * DNS messages (RFC 1035 §4) as far as a mesh DNS proxy needs them: header, questions, A/AAAA/CNAME/NS/PTR
 * and SOA records decoded, every other record kept as opaque bytes (EDNS OPT included), name compression
 * followed on read and applied on write. Decoding never throws on wire input; it returns an error value.
 */
import net from 'node:net';

export const RRType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RRClass = { IN: 1 } as const;
export const RCode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface DnsHeader {
  id: number;
  /** true in responses */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
}

export interface DnsQuestion {
  /** Without the trailing dot, case as sent. */
  name: string;
  type: number;
  class: number;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/**
 * One resource record. `data` is the textual address for A/AAAA, a domain name for CNAME/NS/PTR, an SoaData
 * for SOA, and the raw RDATA for everything else (including OPT, whose class and ttl carry EDNS fields).
 */
export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: string | SoaData | Buffer;
}

export interface DnsMessage {
  header: DnsHeader;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

export type DecodeResult = { ok: true; message: DnsMessage } | { ok: false; error: string; /** when the header was readable */ header?: DnsHeader };

const NAME_TYPES = new Set<number>([RRType.CNAME, RRType.NS, RRType.PTR]);
const MAX_POINTER_HOPS = 64;

class Malformed extends Error {}

function readName(buf: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = start;
  let next = -1;
  let hops = 0;
  let length = 0;
  for (;;) {
    if (pos >= buf.length) throw new Malformed('name runs past the end of the message');
    const len = buf[pos]!;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new Malformed('truncated compression pointer');
      if (++hops > MAX_POINTER_HOPS) throw new Malformed('compression pointer loop');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (next < 0) next = pos + 2;
      // Pointers must go backwards; a forward pointer is how loops and garbage usually show up.
      if (target >= pos) throw new Malformed('compression pointer does not point backwards');
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Malformed('unsupported label type');
    pos++;
    if (len === 0) break;
    if (pos + len > buf.length) throw new Malformed('label runs past the end of the message');
    length += len + 1;
    if (length > 255) throw new Malformed('name longer than 255 octets');
    labels.push(buf.toString('latin1', pos, pos + len));
    pos += len;
  }
  return { name: labels.join('.'), next: next < 0 ? pos : next };
}

function need(buf: Buffer, pos: number, n: number, what: string): void {
  if (pos + n > buf.length) throw new Malformed(`${what} runs past the end of the message`);
}

function readRecord(buf: Buffer, start: number): { record: DnsRecord; next: number } {
  const { name, next } = readName(buf, start);
  need(buf, next, 10, 'record header');
  const type = buf.readUInt16BE(next);
  const klass = buf.readUInt16BE(next + 2);
  const ttl = buf.readUInt32BE(next + 4);
  const rdlength = buf.readUInt16BE(next + 8);
  const rdStart = next + 10;
  need(buf, rdStart, rdlength, 'record data');
  const rdata = buf.subarray(rdStart, rdStart + rdlength);
  let data: DnsRecord['data'];
  if (type === RRType.A && klass === RRClass.IN) {
    if (rdlength !== 4) throw new Malformed('A record data is not 4 octets');
    data = [...rdata].join('.');
  } else if (type === RRType.AAAA && klass === RRClass.IN) {
    if (rdlength !== 16) throw new Malformed('AAAA record data is not 16 octets');
    data = formatIPv6(rdata);
  } else if (NAME_TYPES.has(type)) {
    const target = readName(buf, rdStart);
    if (target.next !== rdStart + rdlength) throw new Malformed('name record data length mismatch');
    data = target.name;
  } else if (type === RRType.SOA) {
    const m = readName(buf, rdStart);
    const r = readName(buf, m.next);
    need(buf, r.next, 20, 'SOA data');
    if (r.next + 20 !== rdStart + rdlength) throw new Malformed('SOA record data length mismatch');
    const u = (i: number): number => buf.readUInt32BE(r.next + 4 * i);
    data = { mname: m.name, rname: r.name, serial: u(0), refresh: u(1), retry: u(2), expire: u(3), minimum: u(4) };
  } else {
    data = Buffer.from(rdata);
  }
  return { record: { name, type, class: klass, ttl, data }, next: rdStart + rdlength };
}

export function decodeHeader(buf: Buffer): DnsHeader | undefined {
  if (buf.length < 12) return undefined;
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  };
}

/** Decodes a whole message; trailing bytes after the last record are tolerated, as most resolvers do. */
export function decodeMessage(buf: Buffer): DecodeResult {
  const header = decodeHeader(buf);
  if (header === undefined) return { ok: false, error: 'message shorter than the 12-octet header' };
  try {
    const counts = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o)) as [number, number, number, number];
    let pos = 12;
    const questions: DnsQuestion[] = [];
    for (let i = 0; i < counts[0]; i++) {
      const { name, next } = readName(buf, pos);
      need(buf, next, 4, 'question');
      questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
      pos = next + 4;
    }
    const sections: DnsRecord[][] = [[], [], []];
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < counts[s + 1]!; i++) {
        const { record, next } = readRecord(buf, pos);
        sections[s]!.push(record);
        pos = next;
      }
    }
    return { ok: true, message: { header, questions, answers: sections[0]!, authorities: sections[1]!, additionals: sections[2]! } };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, error: err.message, header };
    throw err;
  }
}

/** A growable output buffer that remembers where each name suffix was written, for compression. */
class Writer {
  private buf = Buffer.alloc(512);
  length = 0;
  private readonly names = new Map<string, number>();

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  patchU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }
  name(name: string): void {
    const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = this.names.get(suffix);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.length < 0x4000) this.names.set(suffix, this.length);
      const label = Buffer.from(labels[i]!, 'latin1');
      if (label.length === 0 || label.length > 63) throw new RangeError(`DNS label "${labels[i]}" in "${name}" must be 1..63 octets`);
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

function writeRecord(w: Writer, r: DnsRecord): void {
  w.name(r.name);
  w.u16(r.type);
  w.u16(r.class);
  w.u32(r.ttl);
  const lengthAt = w.length;
  w.u16(0);
  const start = w.length;
  if (typeof r.data === 'string') {
    if (r.type === RRType.A) w.bytes(parseIPv4(r.data));
    else if (r.type === RRType.AAAA) w.bytes(parseIPv6(r.data));
    else w.name(r.data);
  } else if (Buffer.isBuffer(r.data)) {
    w.bytes(r.data);
  } else {
    const soa = r.data;
    w.name(soa.mname);
    w.name(soa.rname);
    for (const v of [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum]) w.u32(v);
  }
  w.patchU16(lengthAt, w.length - start);
}

/** Encodes a message with name compression. Throws RangeError for unencodable input (a programming error). */
export function encodeMessage(m: DnsMessage): Buffer {
  const w = new Writer();
  const h = m.header;
  w.u16(h.id);
  w.u16((h.qr ? 0x8000 : 0) | ((h.opcode & 0xf) << 11) | (h.aa ? 0x0400 : 0) | (h.tc ? 0x0200 : 0) | (h.rd ? 0x0100 : 0) | (h.ra ? 0x0080 : 0) | (h.rcode & 0xf));
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) w.u16(n);
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of [...m.answers, ...m.authorities, ...m.additionals]) writeRecord(w, r);
  return w.result();
}

function parseIPv4(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  throw new RangeError(`"${ip}" is not an IPv4 address`);
}

function parseIPv6(ip: string): Buffer {
  if (!net.isIPv6(ip)) throw new RangeError(`"${ip}" is not an IPv6 address`);
  let text = ip;
  const out = Buffer.alloc(16);
  // An embedded dotted quad (::ffff:1.2.3.4) is rewritten as two hex groups first.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = parseIPv4(dotted[1]!);
    text = text.slice(0, dotted.index) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function formatIPv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
