/**
 * Traffic management through one sidecar, executing the routes and clusters generated from
 * VirtualServices and DestinationRules: weighted split, retries, fault injection, consistent hashing,
 * outlier detection and priority failover. Endpoints are plaintext apps so that many can run cheaply.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { createSidecar } from '../src/proxy/sidecar/index.js';
import type { SidecarHandle as Sidecar } from '../src/proxy/sidecar/index.js';
import { destinationRule, recorder, request, startBackend, stateFor, svc, virtualService, workload } from './sidecar-mesh.js';
import type { Backend } from './sidecar-mesh.js';

const NS = 'shop';
const host = (name: string): string => `${name}.${NS}.svc.cluster.local`;
const plain = { plaintext: true };
const resources = [
  svc(NS, 'split', 7000, 7000),
  workload(NS, 'split-v1', '127.78.1.11', { app: 'split', version: 'v1' }, plain),
  workload(NS, 'split-v2', '127.78.1.12', { app: 'split', version: 'v2' }, plain),
  svc(NS, 'flaky', 7001, 7001),
  workload(NS, 'flaky-1', '127.78.1.21', { app: 'flaky' }, plain),
  svc(NS, 'faulty', 7002, 7002),
  workload(NS, 'faulty-1', '127.78.1.31', { app: 'faulty' }, plain),
  svc(NS, 'hash', 7004, 7004),
  workload(NS, 'hash-1', '127.78.1.41', { app: 'hash' }, plain),
  workload(NS, 'hash-2', '127.78.1.42', { app: 'hash' }, plain),
  workload(NS, 'hash-3', '127.78.1.43', { app: 'hash' }, plain),
  svc(NS, 'outlier', 7005, 7005),
  workload(NS, 'outlier-bad', '127.78.1.51', { app: 'outlier' }, plain),
  workload(NS, 'outlier-good', '127.78.1.52', { app: 'outlier' }, plain),
  svc(NS, 'failover', 7006, 7006),
  workload(NS, 'fo-near', '127.78.1.61', { app: 'failover' }, { ...plain, locality: 'r1/z1' }),
  workload(NS, 'fo-far', '127.78.1.62', { app: 'failover' }, { ...plain, locality: 'r2/z9' }),
  svc(NS, 'slow', 7007, 7007),
  workload(NS, 'slow-1', '127.78.1.71', { app: 'slow' }, plain),
  svc(NS, 'shadow', 7007, 7008),
  workload(NS, 'shadow-1', '127.78.1.81', { app: 'shadow' }, plain),
  svc(NS, 'echo', 7009, 7009),
  workload(NS, 'echo-1', '127.78.1.91', { app: 'echo' }, plain),
  svc(NS, 'raw', 7010, 7010),
  workload(NS, 'raw-1', '127.78.1.101', { app: 'raw' }, plain),
  svc(NS, 'client', 80, 80),
];
const config = {
  virtualServices: [
    virtualService(NS, 'split', {
      hosts: ['split'],
      http: [{ route: [{ destination: { host: 'split', subset: 'v1' }, weight: 80 }, { destination: { host: 'split', subset: 'v2' }, weight: 20 }] }],
    }),
    virtualService(NS, 'flaky', { hosts: ['flaky'], http: [{ retries: { attempts: 2, retryOn: '5xx' }, route: [{ destination: { host: 'flaky' } }] }] }),
    virtualService(NS, 'faulty', {
      hosts: ['faulty'],
      http: [
        { match: [{ uri: { prefix: '/abort' } }], fault: { abort: { httpStatus: 418, percentage: { value: 50 } } }, route: [{ destination: { host: 'faulty' } }] },
        { match: [{ uri: { prefix: '/delay' } }], fault: { delay: { fixedDelay: '50ms', percentage: { value: 50 } } }, route: [{ destination: { host: 'faulty' } }] },
        {
          match: [{ uri: { exact: '/direct' } }],
          directResponse: { status: 202, body: { string: 'made here' } },
        },
        {
          match: [{ headers: { 'x-variant': { exact: 'b' } }, uri: { prefix: '/api' } }],
          rewrite: { uri: '/v2' },
          headers: { request: { set: { 'x-added': 'yes' } }, response: { add: { 'x-route': 'b' } } },
          route: [{ destination: { host: 'faulty' } }],
        },
      ],
    }),
    virtualService(NS, 'slow', {
      hosts: ['slow'],
      http: [
        { match: [{ uri: { prefix: '/timeout' } }], timeout: '100ms', route: [{ destination: { host: 'slow' } }] },
        { mirror: { host: 'shadow' }, mirrorPercentage: { value: 100 }, route: [{ destination: { host: 'slow' } }] },
      ],
    }),
  ],
  destinationRules: [
    destinationRule(NS, 'slow', { host: 'slow', trafficPolicy: { connectionPool: { http: { http2MaxRequests: 2 } } } }),
    destinationRule(NS, 'split', { host: 'split', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    destinationRule(NS, 'hash', { host: 'hash', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } }),
    destinationRule(NS, 'outlier', {
      host: 'outlier',
      trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 100 } },
    }),
    destinationRule(NS, 'failover', {
      host: 'failover',
      trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: true } }, outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 100 } },
    }),
  ],
};

describe('sidecar traffic management', () => {
  let sidecar: Sidecar;
  let port = 0;
  const backends = new Map<string, Backend>();
  const log = recorder();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const seen: string[] = [];
  /** An app that records the request heads it gets and answers what the path asks for, malformed included. */
  const heads: string[] = [];
  const raw = net.createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        heads.push(head);
        const path = head.split(' ')[1];
        if (path === '/bad-header') s.write('HTTP/1.1 200 OK\r\nNo Colon Here\r\ncontent-length: 2\r\n\r\nok');
        else if (path === '/bad-status') s.write('HTTP/1.1 2000 Nope\r\ncontent-length: 2\r\n\r\nok');
        else s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Reply: One\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok');
      }
    });
    s.on('error', () => {});
  });

  const get = (url: string, headers?: Record<string, string>) => request({ host: '127.78.1.1', port }, url, { agent, ...(headers ? { headers } : {}) });
  const many = async (n: number, url: string, headers?: Record<string, string>) => {
    const out = [];
    for (let i = 0; i < n; i += 8) out.push(...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => get(url, headers)))));
    return out;
  };

  before(async () => {
    const named = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      seen.push(`${name} ${req.url} ${req.headers['x-added'] ?? ''}`);
      res.end(name);
    };
    for (const [name, addr, p] of [
      ['split-v1', '127.78.1.11', 7000],
      ['split-v2', '127.78.1.12', 7000],
      ['faulty-1', '127.78.1.31', 7002],
      ['hash-1', '127.78.1.41', 7004],
      ['hash-2', '127.78.1.42', 7004],
      ['hash-3', '127.78.1.43', 7004],
      ['outlier-good', '127.78.1.52', 7005],
      ['fo-near', '127.78.1.61', 7006],
      ['fo-far', '127.78.1.62', 7006],
    ] as const) {
      backends.set(name, await startBackend(addr, p, name, named(name)));
    }
    backends.set('flaky-1', await startBackend('127.78.1.21', 7001, 'flaky-1', (req, res, n) => {
      req.resume();
      res.statusCode = n % 2 === 1 ? 503 : 200;
      res.end(`attempt ${n}`);
    }));
    backends.set('outlier-bad', await startBackend('127.78.1.51', 7005, 'outlier-bad', (req, res) => {
      req.resume();
      res.statusCode = 500;
      res.end('bad');
    }));
    backends.set('slow-1', await startBackend('127.78.1.71', 7007, 'slow-1', (req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), Number(/ms=(\d+)/.exec(req.url ?? '')?.[1] ?? 0));
    }));
    backends.set('shadow-1', await startBackend('127.78.1.81', 7008, 'shadow-1', (req, res) => {
      req.resume();
      seen.push(`shadow ${req.url} ${req.headers.host}`);
      res.end('shadow');
    }));
    await new Promise<void>((r) => raw.listen(7010, '127.78.1.101', r));
    sidecar = createSidecar({ credentials: () => undefined, identity: { cluster: 'c1', namespace: NS, workload: 'client', network: 'n1' }, accessLog: log.log });
    const state = stateFor(resources, { ip: '127.78.1.1', pod: 'client-1', namespace: NS, labels: { app: 'client' }, appHost: '127.78.2.1' }, config);
    assert.deepEqual(sidecar.apply(state).problems, []);
    port = (await sidecar.listening()).get('127.78.1.1_15001')!.port;
  });

  after(async () => {
    agent.destroy();
    raw.close();
    await sidecar.close();
    await Promise.all([...backends.values()].map((b) => b.close()));
  });

  test('weighted split 80/20 by subset, measured per request', async () => {
    const replies = await many(400, 'http://split.shop:7000/');
    assert.ok(replies.every((r) => r.status === 200));
    const v2 = replies.filter((r) => r.body === 'split-v2').length;
    // 400 draws at p = 0.2: mean 80, sd 8; ±4 sd.
    assert.ok(v2 > 48 && v2 < 112, `v2 got ${v2} of 400`);
    assert.equal(log.records.at(-1)!.route_name, 'split.0');
    assert.match(log.records.at(-1)!.upstream_cluster!, /^outbound\|7000\|v[12]\|split\.shop\.svc\.cluster\.local$/);
  });

  test('retries hide a backend that fails every other request', async () => {
    // One at a time: the backend alternates per arrival, and concurrent retries are capped (max_retries 3).
    const replies = [];
    for (let i = 0; i < 40; i++) replies.push(await get('http://flaky.shop:7001/'));
    assert.deepEqual(replies.filter((r) => r.status !== 200).map((r) => r.status), []);
    assert.equal(backends.get('flaky-1')!.requests, 80, 'every request took one retry');
  });

  test('fault abort and delay by percentage, with FI and DI flags', async () => {
    const start = log.records.length;
    const replies = await many(200, 'http://faulty.shop:7002/abort');
    const aborted = replies.filter((r) => r.status === 418).length;
    assert.ok(aborted > 60 && aborted < 140, `aborted ${aborted} of 200`);
    assert.equal(replies.filter((r) => r.status !== 418 && r.status !== 200).length, 0);
    assert.equal(log.records.slice(start).filter((r) => r.response_flags === 'FI').length, aborted);
    const t0 = log.records.length;
    await many(64, 'http://faulty.shop:7002/delay');
    const delayed = log.records.slice(t0).filter((r) => r.response_flags === 'DI');
    assert.ok(delayed.length > 12 && delayed.length < 52, `delayed ${delayed.length} of 64`);
    assert.ok(delayed.every((r) => r.duration >= 45), 'delayed requests took the fixed delay');
  });

  test('direct response, header-matched route with prefix rewrite and header ops', async () => {
    const d = await get('http://faulty.shop:7002/direct');
    assert.equal(d.status, 202);
    assert.equal(d.body, 'made here');
    const r = await get('http://faulty.shop:7002/api/items?q=1', { 'x-variant': 'b' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-route'], 'b');
    assert.equal(seen.at(-1), 'faulty-1 /v2/items?q=1 yes');
    const n = await get('http://faulty.shop:7002/api/items', { 'x-variant': 'a' });
    assert.equal(n.status, 404, 'no route matches without the header');
  });

  /** Sends `head` as is on a fresh connection to the sidecar and returns the whole reply. */
  const exchangeRaw = (head: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.78.1.1', port }, () => s.end(head));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  const headerMap = (head: string): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    for (const line of head.split('\r\n').slice(1)) {
      const c = line.indexOf(':');
      const name = line.slice(0, c);
      m.set(name, [...(m.get(name) ?? []), ...line.slice(c + 1).trim().split(/, */)]);
    }
    return m;
  };

  test('the request head upstream: names lowercased, hop-by-hop and client XFCC dropped, repeats kept, the proxy sets host, request id and proto', async () => {
    const reply = await exchangeRaw(
      'GET http://raw.shop:7010/echo?q=1 HTTP/1.1\r\nHost: raw.shop:7010\r\nX-Multi: a\r\nX-Multi: b\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n' +
        'Proxy-Connection: keep-alive\r\nX-Request-Id: my-id\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Client-Cert: By=spiffe://x\r\nUser-Agent: raw\r\n\r\n',
    );
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
    const [replyHead, replyBody] = reply.split('\r\n\r\n');
    assert.equal(replyBody, 'ok');
    const back = headerMap(replyHead!);
    assert.deepEqual(back.get('x-reply'), ['One'], 'response names lowercased, values as sent');
    assert.equal(back.get('keep-alive'), undefined, 'the upstream hop-by-hop headers stay behind');
    const head = heads.at(-1)!;
    assert.equal(head.split('\r\n')[0], 'GET /echo?q=1 HTTP/1.1');
    const h = headerMap(head);
    assert.deepEqual([...h.keys()].filter((k) => k !== k.toLowerCase()), [], 'every name lowercased');
    for (const hop of ['connection', 'keep-alive', 'te', 'proxy-connection', 'transfer-encoding']) assert.equal(h.get(hop), undefined, `${hop} not forwarded`);
    assert.deepEqual(h.get('x-multi'), ['a', 'b']);
    assert.deepEqual(h.get('host'), ['raw.shop:7010']);
    assert.deepEqual(h.get('x-request-id'), ['my-id'], "the client's request id is kept");
    assert.deepEqual(h.get('x-forwarded-proto'), ['http'], 'the proto is what the client connection was');
    assert.equal(h.get('x-forwarded-client-cert'), undefined, "the client's own XFCC is dropped (SANITIZE, Envoy's default)");
    assert.deepEqual(h.get('user-agent'), ['raw']);
  });

  test('a malformed upstream response is 502 UPE (protocol error); a path that needs escaping is 400; the sidecar keeps serving', async () => {
    for (const path of ['/bad-header', '/bad-status']) {
      const r = await get(`http://raw.shop:7010${path}`);
      assert.equal(r.status, 502, path);
      assert.match(r.body, /reset reason: protocol error/);
      assert.equal(log.records.at(-1)!.response_flags, 'UPE');
    }
    const before = heads.length;
    const bad = await exchangeRaw('GET http://raw.shop:7010/caf\xe9 HTTP/1.1\r\nHost: raw.shop:7010\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    assert.equal(heads.length, before, 'nothing was sent upstream');
    const ok = await get('http://raw.shop:7010/fine');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'ok');
  });

  test('consistent hash keeps a header value on one endpoint', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const replies = await many(16, 'http://hash.shop:7004/', { 'x-user': user });
      assert.equal(new Set(replies.map((r) => r.body)).size, 1, `${user} stuck to one endpoint`);
    }
    const spread = await Promise.all(Array.from({ length: 24 }, (_, i) => get('http://hash.shop:7004/', { 'x-user': `user-${i}` })));
    assert.ok(new Set(spread.map((r) => r.body)).size >= 2, 'different keys spread over endpoints');
  });

  test('bodies of every framing pass through whole: buffered, streamed, chunked both ways, HEAD without body', async () => {
    backends.set('echo-1', await startBackend('127.78.1.91', 7009, 'echo-1', (req, res) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => {
        if (req.url === '/stream') {
          // No content-length: Node frames this response chunked, in many writes.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          for (let i = 0; i < 50; i++) res.write(Buffer.alloc(10_000, i));
          res.end();
          return;
        }
        res.setHeader('x-framing', req.headers['transfer-encoding'] ?? `length ${req.headers['content-length'] ?? 0}`);
        res.end(`${n} ${h.digest('hex')}`);
      });
    }));
    const digest = (b: Buffer) => `${b.length} ${createHash('sha256').update(b).digest('hex')}`;
    const send = (body: Buffer, chunked: boolean, method = 'POST'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.78.1.1', port, path: 'http://echo.shop:7009/echo', method, agent, headers: chunked ? {} : { 'content-length': body.length } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        if (chunked) for (let i = 0; i < body.length; i += 7_000) req.write(body.subarray(i, i + 7_000));
        else req.write(body);
        req.end();
      });
    const small = Buffer.alloc(10_000, 3);
    const large = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const buffered = await send(small, false);
    assert.equal(buffered.body.toString(), digest(small), 'buffered (replayable) body');
    assert.equal(buffered.headers['x-framing'], 'length 10000');
    const streamed = await send(large, false);
    assert.equal(streamed.body.toString(), digest(large), 'body over 64 KiB streamed with its length');
    assert.equal(streamed.headers['x-framing'], 'length 300000');
    const chunked = await send(large, true);
    assert.equal(chunked.body.toString(), digest(large), 'chunked request body re-chunked upstream');
    assert.equal(chunked.headers['x-framing'], 'chunked');
    const down = await request({ host: '127.78.1.1', port }, 'http://echo.shop:7009/stream', { agent });
    assert.equal(down.status, 200);
    assert.equal(Buffer.byteLength(down.body, 'latin1'), 500_000, 'chunked response passed through whole');
    const head = await send(Buffer.alloc(0), false, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const after = await send(small, false);
    assert.equal(after.body.toString(), digest(small), 'the pooled connections stayed in sync');
  });

  test('outlier detection ejects the failing endpoint and traffic moves', async () => {
    await many(24, 'http://outlier.shop:7005/');
    const status = sidecar.clusterStatus().find((c) => c.name === `outbound|7005||${host('outlier')}`)!;
    const bad = status.endpoints.find((e) => e.address === '127.78.1.51')!;
    assert.equal(bad.ejected, true);
    const after = await many(24, 'http://outlier.shop:7005/');
    assert.deepEqual([...new Set(after.map((r) => r.body))], ['outlier-good']);
  });

  test('priority failover: the near locality takes everything until it fails, then the next priority does', async () => {
    const first = await many(16, 'http://failover.shop:7006/');
    assert.deepEqual([...new Set(first.map((r) => r.body))], ['fo-near']);
    const status = sidecar.clusterStatus().find((c) => c.name === `outbound|7006||${host('failover')}`)!;
    const near = status.endpoints.find((e) => e.address === '127.78.1.61')!;
    const far = status.endpoints.find((e) => e.address === '127.78.1.62')!;
    assert.ok(far.priority > near.priority, `priorities near=${near.priority} far=${far.priority}`);
    await backends.get('fo-near')!.close();
    backends.delete('fo-near');
    // Sequential: concurrent retries are capped by the cluster's max_retries (Envoy's default 3).
    const next = [];
    for (let i = 0; i < 16; i++) next.push(await get('http://failover.shop:7006/'));
    assert.deepEqual(next.map((r) => r.status).filter((s) => s !== 200), [], 'connect failures were retried elsewhere');
    assert.deepEqual([...new Set(next.map((r) => r.body))], ['fo-far']);
    assert.ok(sidecar.clusterStatus().find((c) => c.name === `outbound|7006||${host('failover')}`)!.endpoints.find((e) => e.address === '127.78.1.61')!.ejected);
  });

  test('route timeout gives 504 UT; the circuit breaker gives 503 UO; mirrors are fire-and-forget', async () => {
    const t = await get('http://slow.shop:7007/timeout?ms=1000');
    assert.equal(t.status, 504);
    assert.equal(log.records.at(-1)!.response_flags, 'UT');
    // max_requests 2: a third concurrent request overflows.
    const three = await Promise.all([1, 2, 3].map(() => get('http://slow.shop:7007/hold?ms=300')));
    assert.deepEqual(three.map((r) => r.status).sort(), [200, 200, 503]);
    assert.ok(log.records.some((r) => r.response_flags === 'UO'));
    const before = seen.filter((x) => x.startsWith('shadow')).length;
    const m = await get('http://slow.shop:7007/copy?ms=0');
    assert.equal(m.body, 'slow', 'the caller gets the primary answer');
    for (let i = 0; i < 100 && seen.filter((x) => x.startsWith('shadow')).length === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seen.filter((x) => x.startsWith('shadow')).at(-1), 'shadow /copy?ms=0 slow.shop-shadow:7007');
  });
});
