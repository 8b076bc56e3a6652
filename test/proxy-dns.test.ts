import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import { allocateVips } from '../src/registry/index.js';
import {
  createDnsProxy,
  createNameTableLookup,
  decodeMessage,
  encodeMessage,
  forwardQuery,
  RCode,
  RRType,
} from '../src/proxy/dns/index.js';
import type { DnsMessage, DnsProxy, NameTable } from '../src/proxy/dns/index.js';
import { systemClock } from '../src/shared/clock.js';
import { manualClock } from './proxy-clock.js';

const SEARCH = ['sample.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

/** A fake upstream resolver on UDP and TCP: knows example.com, NXDOMAIN for the rest; counts queries. */
async function startFakeUpstream(): Promise<{ port: number; queries: string[]; close(): Promise<void> }> {
  const queries: string[] = [];
  const answer = (packet: Buffer): Buffer | undefined => {
    const d = decodeMessage(packet);
    if (!d.ok) return undefined;
    const q = d.message.questions[0]!;
    queries.push(q.name);
    const known = q.name.toLowerCase() === 'example.com' && q.type === RRType.A;
    const msg: DnsMessage = {
      header: { ...d.message.header, qr: true, ra: true, rcode: known ? RCode.NOERROR : RCode.NXDOMAIN },
      questions: d.message.questions,
      answers: known ? [{ name: q.name, type: RRType.A, class: 1, ttl: 60, data: '93.184.216.34' }] : [],
      authorities: known ? [] : [{ name: 'example', type: RRType.SOA, class: 1, ttl: 60, data: { mname: 'ns.example', rname: 'admin.example', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 60 } }],
      additionals: [],
    };
    return encodeMessage(msg);
  };
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const port = udp.address().port;
  udp.on('message', (m, rinfo) => {
    const a = answer(m);
    if (a) udp.send(a, rinfo.port, rinfo.address);
  });
  const tcp = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d: Buffer) => {
      const a = answer(d.subarray(2, 2 + d.readUInt16BE(0)));
      if (!a) return s.destroy();
      const len = Buffer.alloc(2);
      len.writeUInt16BE(a.length);
      s.end(Buffer.concat([len, a]));
    });
  });
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', r));
  return { port, queries, close: async () => void (await Promise.all([new Promise((r) => udp.close(() => r(undefined))), new Promise((r) => tcp.close(r))])) };
}

// cluster-1 runs helloworld; ratings exists only in cluster-2 (a remote-only service: just another entry,
// with an auto-allocated VIP); httpbin is dual-stack-less (IPv4 only); big has many addresses.
const vips = allocateVips(['ratings.bookinfo.svc.cluster.local']);
const nameTable: NameTable = {
  table: {
    'helloworld.sample.svc.cluster.local': { ips: ['10.10.0.7'], registry: 'Kubernetes', shortname: 'helloworld', namespace: 'sample' },
    'ratings.bookinfo.svc.cluster.local': { ips: [vips.get('ratings.bookinfo.svc.cluster.local')!], registry: 'Kubernetes', shortname: 'ratings', namespace: 'bookinfo' },
    'big.sample.svc.cluster.local': { ips: Array.from({ length: 60 }, (_, i) => `10.20.0.${i + 1}`), shortname: 'big', namespace: 'sample' },
  },
};

let upstream: Awaited<ReturnType<typeof startFakeUpstream>>;
let proxy: DnsProxy;
let port: number;
let resolver: Resolver;

before(async () => {
  upstream = await startFakeUpstream();
  proxy = createDnsProxy({
    port: 0,
    host: '127.0.0.1',
    lookup: createNameTableLookup(nameTable),
    searchDomains: SEARCH,
    upstreams: [{ address: '127.0.0.1', port: upstream.port }],
    upstreamTimeoutMs: 5000,
  });
  port = (await proxy.listen()).port;
  resolver = new Resolver({ timeout: 3000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
});

after(async () => {
  await proxy.close();
  await upstream.close();
});

test('a local mesh name answers by FQDN, name.ns, short name and the resolver-expanded forms', async () => {
  const asked = upstream.queries.length;
  for (const name of [
    'helloworld.sample.svc.cluster.local',
    'helloworld.sample',
    'helloworld',
    'helloworld.sample.sample.svc.cluster.local',
    'HelloWorld.Sample.svc.cluster.local',
  ]) {
    assert.deepEqual(await resolver.resolve4(name), ['10.10.0.7'], name);
  }
  assert.equal(upstream.queries.length, asked, 'mesh names never reach the upstream');
});

test('a remote-only service resolves to its auto-allocated VIP', async () => {
  const vip = vips.get('ratings.bookinfo.svc.cluster.local')!;
  assert.match(vip, /^240\.240\./);
  assert.deepEqual(await resolver.resolve4('ratings.bookinfo'), [vip]);
  assert.deepEqual(await resolver.resolve4('ratings.bookinfo.svc.cluster.local'), [vip]);
  const withTtl = await resolver.resolve4('ratings.bookinfo.sample.svc.cluster.local', { ttl: true });
  assert.deepEqual(withTtl, [{ address: vip, ttl: 30 }]);
});

test('AAAA for an IPv4-only mesh name is an empty NOERROR, not NXDOMAIN', async () => {
  await assert.rejects(resolver.resolve6('helloworld.sample'), (err: NodeJS.ErrnoException) => err.code === 'ENODATA');
});

test('unknown names are forwarded upstream; its answers, NXDOMAIN included, come back unchanged', async () => {
  const asked = upstream.queries.length;
  assert.deepEqual(await resolver.resolve4('example.com'), ['93.184.216.34']);
  await assert.rejects(resolver.resolve4('nothing.example'), (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND');
  // A short name that is not in the mesh is the upstream's business too.
  await assert.rejects(resolver.resolve4('httpbin'), (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND');
  assert.deepEqual(upstream.queries.slice(asked), ['example.com', 'nothing.example', 'httpbin']);
});

function query(id: number, name: string, type: number): Buffer {
  return encodeMessage({ header: { id, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0 }, questions: [{ name, type, class: 1 }], answers: [], authorities: [], additionals: [] });
}

test('an answer too big for UDP is truncated there and complete over TCP', async () => {
  const sock = dgram.createSocket('udp4');
  try {
    const reply = new Promise<Buffer>((r) => sock.once('message', r));
    sock.send(query(42, 'big.sample', RRType.A), port, '127.0.0.1');
    const udp = decodeMessage(await reply);
    assert.ok(udp.ok);
    assert.equal(udp.message.header.tc, true);
    assert.equal(udp.message.answers.length, 0);
  } finally {
    sock.close();
  }
  const viaTcp = await forwardQuery(query(43, 'big.sample', RRType.A), { servers: [{ address: '127.0.0.1', port }], timeoutMs: 3000, clock: systemClock, transport: 'tcp' });
  assert.ok(viaTcp.ok);
  const full = decodeMessage(viaTcp.response);
  assert.ok(full.ok);
  assert.equal(full.message.header.id, 43);
  assert.equal(full.message.answers.length, 60);
  // Forwarding works over TCP as well.
  const fwd = await forwardQuery(query(44, 'example.com', RRType.A), { servers: [{ address: '127.0.0.1', port }], timeoutMs: 3000, clock: systemClock, transport: 'tcp' });
  assert.ok(fwd.ok);
  const fm = decodeMessage(fwd.response);
  assert.ok(fm.ok && fm.message.answers[0]?.data === '93.184.216.34');
});

test('malformed packets are dropped without an answer and without harm', async () => {
  const sock = dgram.createSocket('udp4');
  try {
    const replies: Buffer[] = [];
    let gotOne!: () => void;
    const first = new Promise<void>((r) => (gotOne = r));
    sock.on('message', (m) => {
      replies.push(m);
      gotOne();
    });
    const garbage = [
      Buffer.from([1, 2, 3]),
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]), // name pointer to itself
      Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 0x61]), // label runs off the end
      Buffer.from(query(9, 'helloworld.sample', RRType.A).map((b, i) => (i === 2 ? b | 0x80 : b))), // a response
    ];
    for (const g of garbage) sock.send(g, port, '127.0.0.1');
    sock.send(query(77, 'helloworld.sample', RRType.A), port, '127.0.0.1');
    await first;
    const d = decodeMessage(replies[0]!);
    assert.ok(d.ok);
    assert.equal(d.message.header.id, 77, 'the first reply is for the valid query');
  } finally {
    sock.close();
  }
  assert.deepEqual(await resolver.resolve4('helloworld'), ['10.10.0.7']);
});

test('an upstream that never answers gives SERVFAIL after the timeout', async () => {
  const blackHole = dgram.createSocket('udp4');
  await new Promise<void>((r) => blackHole.bind(0, '127.0.0.1', r));
  const clock = manualClock();
  const p = createDnsProxy({
    port: 0,
    host: '127.0.0.1',
    lookup: createNameTableLookup(nameTable),
    searchDomains: SEARCH,
    upstreams: [{ address: '127.0.0.1', port: blackHole.address().port }],
    upstreamTimeoutMs: 2000,
    clock,
  });
  try {
    const r = new Resolver({ timeout: 5000, tries: 1 });
    r.setServers([`127.0.0.1:${(await p.listen()).port}`]);
    const swallowed = new Promise((res) => blackHole.once('message', res));
    const answer = r.resolve4('example.com');
    await swallowed;
    clock.advance(1999);
    clock.advance(1);
    await assert.rejects(answer, (err: NodeJS.ErrnoException) => err.code === 'ESERVFAIL');
    // Mesh names keep working while the upstream is gone.
    assert.deepEqual(await r.resolve4('helloworld'), ['10.10.0.7']);
  } finally {
    await p.close();
    blackHole.close();
  }
});

test('EDNS queries get an OPT back and the larger UDP size they asked for', async () => {
  const sock = dgram.createSocket('udp4');
  try {
    const q = decodeMessage(query(5, 'big.sample', RRType.A));
    assert.ok(q.ok);
    q.message.additionals.push({ name: '', type: RRType.OPT, class: 4096, ttl: 0, data: Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]) });
    const reply = new Promise<Buffer>((r) => sock.once('message', r));
    sock.send(encodeMessage(q.message), port, '127.0.0.1');
    const d = decodeMessage(await reply);
    assert.ok(d.ok);
    assert.equal(d.message.header.tc, false);
    assert.equal(d.message.answers.length, 60);
    assert.equal(d.message.additionals.filter((r) => r.type === RRType.OPT).length, 1);
  } finally {
    sock.close();
  }
});
