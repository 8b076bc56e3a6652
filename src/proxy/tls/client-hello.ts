/**
 * A pure parser for the first flight of a TLS connection: it reads as many TLS records as it takes to hold
 * one complete ClientHello handshake message and extracts the SNI host name and the ALPN protocol list.
 * Nothing here touches a socket, so it can be fed any prefix of a byte stream and asked again with more.
 */

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
/** RFC 8446 §5.1: a record's plaintext is at most 2^14 bytes; allow the 2^14+2048 TLSCiphertext bound too. */
const MAX_RECORD_PAYLOAD = 16384 + 2048;

/** What the bytes seen so far say about the stream. `need-more` means: feed a longer prefix and ask again. */
export type ClientHelloParse =
  | { kind: 'client-hello'; hello: ClientHello; /** bytes of the prefix the ClientHello records took */ consumed: number }
  | { kind: 'need-more' }
  | { kind: 'not-tls'; reason: string }
  | { kind: 'invalid'; reason: string };

/** The parts of a ClientHello a proxy routes on. */
export interface ClientHello {
  /** The host_name entry of server_name, lower-cased; undefined when the client sent none. */
  sni: string | undefined;
  /** ALPN protocols in the client's order of preference; empty when the extension is absent. */
  alpn: string[];
  /** legacy_version from the ClientHello body, e.g. 0x0303. */
  version: number;
}

/**
 * Parses a ClientHello from the start of `data`, which may be any prefix of the client's byte stream.
 * Never throws on bad input: anything that is not TLS is `not-tls`, a TLS stream that breaks the grammar is
 * `invalid`, and an incomplete prefix of a valid stream is `need-more`.
 */
export function parseClientHello(data: Uint8Array): ClientHelloParse {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length === 0) return { kind: 'need-more' };
  if (buf[0] !== CONTENT_HANDSHAKE) {
    return { kind: 'not-tls', reason: `first byte 0x${buf[0]!.toString(16).padStart(2, '0')} is not a TLS handshake record` };
  }
  if (buf.length >= 2 && buf[1] !== 0x03) return { kind: 'not-tls', reason: 'record version major is not 3' };
  if (buf.length >= 3 && buf[2]! > 0x04) return { kind: 'not-tls', reason: 'record version minor is out of range' };

  // A handshake message may be split across several records and a record may end mid-message, so the
  // handshake bytes are reassembled from consecutive handshake records before the message is parsed.
  const fragments: Buffer[] = [];
  let handshakeBytes = 0;
  let wanted = -1;
  let offset = 0;
  while (wanted < 0 || handshakeBytes < wanted) {
    if (buf.length < offset + RECORD_HEADER) return { kind: 'need-more' };
    const type = buf[offset]!;
    if (type !== CONTENT_HANDSHAKE) {
      return { kind: 'invalid', reason: `record type ${type} interleaved with the ClientHello` };
    }
    if (buf[offset + 1] !== 0x03) return { kind: 'invalid', reason: 'record version major is not 3' };
    const length = buf.readUInt16BE(offset + 3);
    if (length === 0) return { kind: 'invalid', reason: 'empty handshake record' };
    if (length > MAX_RECORD_PAYLOAD) return { kind: 'invalid', reason: `record length ${length} exceeds the TLS limit` };
    const start = offset + RECORD_HEADER;
    const available = Math.min(length, buf.length - start);
    fragments.push(buf.subarray(start, start + available));
    handshakeBytes += available;
    if (wanted < 0 && handshakeBytes >= HANDSHAKE_HEADER) {
      const head = Buffer.concat(fragments).subarray(0, HANDSHAKE_HEADER);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) {
        return { kind: 'invalid', reason: `first handshake message has type ${head[0]}, not ClientHello` };
      }
      wanted = HANDSHAKE_HEADER + head.readUIntBE(1, 3);
    }
    if (available < length) return { kind: 'need-more' };
    offset = start + length;
  }
  const message = Buffer.concat(fragments).subarray(HANDSHAKE_HEADER, wanted);
  const body = parseBody(message);
  if (typeof body === 'string') return { kind: 'invalid', reason: body };
  return { kind: 'client-hello', hello: body, consumed: offset };
}

/**
 * Reads the bytes a ClientHello occupies before its handshake is complete, to tell how large the first
 * flight claims to be; used by callers to refuse oversized hellos early. Returns undefined until known.
 */
export function announcedHandshakeLength(data: Uint8Array): number | undefined {
  if (data.length < RECORD_HEADER + HANDSHAKE_HEADER || data[0] !== CONTENT_HANDSHAKE) return undefined;
  return (data[RECORD_HEADER + 1]! << 16) | (data[RECORD_HEADER + 2]! << 8) | data[RECORD_HEADER + 3]!;
}

/** A bounds-checked cursor; every read past the end throws `Short`, turned into an `invalid` result. */
class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Short();
  }
}

class Short extends Error {}

function parseBody(message: Buffer): ClientHello | string {
  try {
    const r = new Reader(message);
    const version = r.u16();
    r.bytes(32); // random
    r.bytes(r.u8()); // legacy_session_id
    const suites = r.u16();
    if (suites === 0 || suites % 2 !== 0) return 'cipher_suites length is not a positive even number';
    r.bytes(suites);
    r.bytes(r.u8()); // legacy_compression_methods
    const hello: ClientHello = { sni: undefined, alpn: [], version };
    if (r.remaining === 0) return hello; // extensions are optional before TLS 1.2
    const ext = new Reader(r.bytes(r.u16()));
    const seen = new Set<number>();
    while (ext.remaining > 0) {
      const type = ext.u16();
      const data = ext.bytes(ext.u16());
      if (seen.has(type)) return `extension ${type} appears twice`;
      seen.add(type);
      if (type === EXT_SERVER_NAME) {
        const sni = parseServerName(data);
        if (typeof sni === 'object') return sni.error;
        hello.sni = sni;
      } else if (type === EXT_ALPN) {
        const alpn = parseAlpn(data);
        if (typeof alpn === 'string') return alpn;
        hello.alpn = alpn;
      }
    }
    return hello;
  } catch (err) {
    if (err instanceof Short) return 'ClientHello is truncated inside its own length';
    throw err;
  }
}

function parseServerName(data: Buffer): string | undefined | { error: string } {
  const r = new Reader(data);
  const list = new Reader(r.bytes(r.u16()));
  let host: string | undefined;
  while (list.remaining > 0) {
    const nameType = list.u8();
    const name = list.bytes(list.u16());
    if (nameType !== 0) continue; // only host_name (0) is defined; others are skipped as the RFC allows
    if (host !== undefined) return { error: 'server_name carries two host names' };
    if (name.length === 0) return { error: 'server_name host name is empty' };
    // RFC 6066: ASCII, no trailing dot; anything else cannot be a DNS name we route on.
    for (const c of name) if (c < 0x21 || c > 0x7e) return { error: 'server_name host name is not printable ASCII' };
    host = name.toString('ascii').toLowerCase();
  }
  return host;
}

function parseAlpn(data: Buffer): string[] | string {
  const r = new Reader(data);
  const list = new Reader(r.bytes(r.u16()));
  const out: string[] = [];
  while (list.remaining > 0) {
    const len = list.u8();
    if (len === 0) return 'ALPN protocol name is empty';
    out.push(list.bytes(len).toString('latin1'));
  }
  if (out.length === 0) return 'ALPN protocol list is empty';
  return out;
}
