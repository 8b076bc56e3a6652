import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, RRType, RCode } from './index.js';
import type { DnsMessage, DnsRecord } from './index.js';

/** Plain-prototype records, so deepEqual compares them with what the decoder builds. */
const rec = <T extends object>(shape: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(shape, { noNullPrototype: true }) as fc.Arbitrary<T>;

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6().map((ip) => decodeRoundTrip(ip));

/** fast-check's IPv6 texts are not canonical; the codec prints RFC 5952 form, so compare after one pass. */
function decodeRoundTrip(ip: string): string {
  const m = encodeMessage({ header: hdr(1), questions: [], answers: [{ name: 'x', type: RRType.AAAA, class: 1, ttl: 1, data: ip }], authorities: [], additionals: [] });
  const d = decodeMessage(m);
  assert.ok(d.ok);
  return d.message.answers[0]!.data as string;
}

function hdr(id: number): DnsMessage['header'] {
  return { id, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: true, rcode: 0 };
}

const record: fc.Arbitrary<DnsRecord> = fc.oneof(
  rec({ name, type: fc.constant<number>(RRType.A), class: fc.constant(1), ttl: fc.nat(), data: ipv4 }),
  rec({ name, type: fc.constant<number>(RRType.AAAA), class: fc.constant(1), ttl: fc.nat(), data: ipv6 }),
  rec({ name, type: fc.constant<number>(RRType.CNAME), class: fc.constant(1), ttl: fc.nat(), data: name }),
  rec({ name, type: fc.constant<number>(RRType.TXT), class: fc.constant(1), ttl: fc.nat(), data: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) }),
  rec({
    name,
    type: fc.constant<number>(RRType.SOA),
    class: fc.constant(1),
    ttl: fc.nat(),
    data: rec({ mname: name, rname: name, serial: fc.nat(), refresh: fc.nat(), retry: fc.nat(), expire: fc.nat(), minimum: fc.nat() }),
  }),
);

const message: fc.Arbitrary<DnsMessage> = rec({
  header: rec({ id: fc.integer({ min: 0, max: 65535 }), qr: fc.boolean(), opcode: fc.integer({ min: 0, max: 15 }), aa: fc.boolean(), tc: fc.boolean(), rd: fc.boolean(), ra: fc.boolean(), rcode: fc.integer({ min: 0, max: 15 }) }),
  questions: fc.array(rec({ name, type: fc.integer({ min: 1, max: 65535 }), class: fc.constant(1) }), { maxLength: 3 }),
  answers: fc.array(record, { maxLength: 5 }),
  authorities: fc.array(record, { maxLength: 2 }),
  additionals: fc.array(record, { maxLength: 2 }),
});

test('encode then decode gives the message back', () => {
  fc.assert(
    fc.property(message, (m) => {
      const d = decodeMessage(encodeMessage(m));
      assert.ok(d.ok, d.ok ? '' : d.error);
      assert.deepEqual(d.message, m);
    }),
    { numRuns: 150 },
  );
});

test('repeated names are compressed on write and followed on read', () => {
  const m: DnsMessage = {
    header: hdr(7),
    questions: [{ name: 'httpbin.default.svc.cluster.local', type: RRType.A, class: 1 }],
    answers: [1, 2, 3].map((i) => ({ name: 'httpbin.default.svc.cluster.local', type: RRType.A, class: 1, ttl: 30, data: `10.0.0.${i}` })),
    authorities: [],
    additionals: [{ name: 'reviews.default.svc.cluster.local', type: RRType.CNAME, class: 1, ttl: 5, data: 'other.svc.cluster.local' }],
  };
  const bytes = encodeMessage(m);
  // Question name written once (35 octets); each answer owner is a 2-octet pointer.
  assert.equal(bytes.length, 12 + 35 + 4 + 3 * (2 + 10 + 4) + (8 + 2) + 10 + (6 + 2));
  const d = decodeMessage(bytes);
  assert.ok(d.ok);
  assert.deepEqual(d.message, m);
});

test('hand-built packets: pointers, loops, truncation and garbage are errors, not exceptions', () => {
  // query for a.b with an answer whose owner is a pointer to offset 12
  const q = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0x61, 1, 0x62, 0, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 9, 8, 7, 6]);
  const ok = decodeMessage(q);
  assert.ok(ok.ok);
  assert.equal(ok.message.answers[0]!.name, 'a.b');
  assert.equal(ok.message.answers[0]!.data, '9.8.7.6');
  assert.equal(ok.message.header.rcode, RCode.NOERROR);

  const loop = Buffer.from(q);
  loop[21] = 0xc0;
  loop[22] = 21; // points at itself
  assert.equal(decodeMessage(loop).ok, false);
  for (let n = 0; n < q.length; n++) {
    const r = decodeMessage(q.subarray(0, n));
    assert.equal(r.ok, false, `prefix ${n}`);
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => void decodeMessage(Buffer.from(b))));
});

test('IPv6 addresses print in RFC 5952 form', () => {
  assert.equal(decodeRoundTrip('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(decodeRoundTrip('::'), '::');
  assert.equal(decodeRoundTrip('::ffff:1.2.3.4'), '::ffff:102:304');
  assert.equal(decodeRoundTrip('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
});
