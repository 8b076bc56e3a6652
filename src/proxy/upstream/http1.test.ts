import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Http1Pool, buildRequestHead } from './http1.js';
import type { UpstreamSocket } from './socket.js';
import { CONNECTED } from './socket.js';

/** A raw TCP server that answers each request head with the next canned reply, in pieces if asked. */
async function rawServer(replies: Array<string | string[]>): Promise<{ port: number; heads: string[]; connections: () => number; close: () => Promise<void> }> {
  const heads: string[] = [];
  let connections = 0;
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    socks.add(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        heads.push(buf.slice(0, end));
        buf = buf.slice(end + 4);
        const reply = replies.shift();
        if (reply === undefined) continue;
        if (typeof reply === 'string') s.write(reply);
        else reply.forEach((part, i) => setTimeout(() => (part === 'CLOSE' ? s.end() : s.write(part)), i * 5));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    heads,
    connections: () => connections,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function pool(port: number, limits: Partial<{ maxConnections: number; maxRequestsPerConnection: number; idleTimeoutMs: number }> = {}): Http1Pool {
  return new Http1Pool(
    (idleTimeoutMs) => {
      const s: UpstreamSocket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => {
        s[CONNECTED] = true;
        s.setTimeout(idleTimeoutMs);
      });
      return s;
    },
    { maxConnections: 8, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, ...limits },
  );
}

interface Got {
  status?: number;
  headers?: string[];
  body: string;
  error?: { code: string | undefined; connected: boolean; headSeen: boolean; stale: boolean };
  lastFlags: boolean[];
}

function get(p: Http1Pool, method = 'GET', body?: Buffer): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { body: '', lastFlags: [] };
    p.request(
      { head: buildRequestHead(method, '/x', { host: 'svc' }, false), body, noResponseBody: method === 'HEAD' },
      {
        head(status, headers) {
          got.status = status;
          got.headers = headers;
        },
        data(chunk, last) {
          got.body += chunk.toString();
          got.lastFlags.push(last);
          return true;
        },
        end: () => resolve(got),
        error(err, info) {
          got.error = { code: err.code, ...info };
          resolve(got);
        },
      },
    );
  });
}

test('content-length bodies split across packets, then the connection is reused', async () => {
  const srv = await rawServer([['HTTP/1.1 200 OK\r\nContent-Le', 'ngth: 10\r\nX-A: 1\r\n\r\nhello', 'world'], 'HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok']);
  const p = pool(srv.port);
  const a = await get(p);
  assert.equal(a.status, 200);
  assert.equal(a.body, 'helloworld');
  assert.deepEqual(a.headers, ['content-length', '10', 'x-a', '1'], 'names lowercased, values as received');
  // Packets may coalesce on a busy machine: only the chunk that completes the body is marked last.
  assert.deepEqual(a.lastFlags, [...a.lastFlags.slice(0, -1).map(() => false), true]);
  const b = await get(p);
  assert.equal(b.status, 201);
  assert.equal(b.body, 'ok');
  assert.equal(srv.connections(), 1);
  p.retire();
  await srv.close();
});

test('chunked bodies with extensions and trailers; 1xx is skipped; HEAD, 204 and 304 carry no body', async () => {
  const srv = await rawServer([
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nz',
  ]);
  const p = pool(srv.port);
  assert.equal((await get(p)).body, 'hello world');
  const head = await get(p, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await get(p)).status, 204);
  assert.equal((await get(p)).status, 304);
  assert.equal((await get(p)).body, 'z', 'the connection stayed in sync through all of them');
  assert.equal(srv.connections(), 1);
  p.retire();
  await srv.close();
});

test('a body without length ends at close and the connection is not reused; Connection: close is honoured', async () => {
  const srv = await rawServer([['HTTP/1.0 200 OK\r\n\r\nuntil', ' close', 'CLOSE'], 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nyo']);
  const p = pool(srv.port);
  assert.equal((await get(p)).body, 'until close');
  assert.equal((await get(p)).body, 'hi');
  assert.equal((await get(p)).body, 'yo');
  assert.equal(srv.connections(), 3);
  p.retire();
  await srv.close();
});

test('malformed responses fail the exchange with a parse error, never reach the caller as a response', async () => {
  for (const bad of ['HTTP/1.1 2xx OK\r\n\r\n', 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n']) {
    const srv = await rawServer([bad]);
    const p = pool(srv.port);
    const got = await get(p);
    assert.equal(got.status, undefined, bad);
    assert.equal(got.error?.code, 'HPE_INVALID_RESPONSE', bad);
    assert.equal(got.error?.headSeen, false);
    p.retire();
    await srv.close();
  }
  const srv = await rawServer(['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n']);
  const p = pool(srv.port);
  const got = await get(p);
  assert.equal(got.status, 200);
  assert.equal(got.error?.code, 'HPE_INVALID_RESPONSE', 'a bad chunk size after the head is a mid-body failure');
  assert.equal(got.error?.headSeen, true);
  p.retire();
  await srv.close();
});

test('a pooled connection the server closed is reported stale; a refused connection as not connected', async () => {
  const srv = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n']);
  const p = pool(srv.port);
  assert.equal((await get(p)).status, 200);
  // The server goes away while the next request is on a reused connection: stale, so safe to retry.
  const pending = get(p);
  await new Promise((r) => setTimeout(r, 20));
  await srv.close();
  const got = await pending;
  assert.deepEqual(got.error && { stale: got.error.stale, headSeen: got.error.headSeen, connected: got.error.connected }, { stale: true, headSeen: false, connected: true });
  const refused = await get(pool(srv.port));
  assert.equal(refused.error?.connected, false);
  assert.equal(refused.error?.code, 'ECONNREFUSED');
  p.retire();
});

test('requests beyond maxConnections wait for a free connection; maxRequestsPerConnection rotates connections', async () => {
  const reply = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
  const srv = await rawServer(Array.from({ length: 6 }, () => reply));
  const p = pool(srv.port, { maxConnections: 1, maxRequestsPerConnection: 2 });
  const all = await Promise.all([get(p), get(p), get(p), get(p), get(p), get(p)]);
  assert.deepEqual(all.map((g) => g.body), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
  assert.equal(srv.connections(), 3, 'two requests per connection, one connection at a time');
  p.retire();
  await srv.close();
});

test('the idle timeout closes idle pooled connections but never one waiting for a slow response', async () => {
  const opened: net.Socket[] = [];
  const server = net.createServer((s) => {
    opened.push(s);
    s.on('data', () => setTimeout(() => s.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow'), 250));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = pool((server.address() as AddressInfo).port, { idleTimeoutMs: 100 });
  assert.equal((await get(p)).body, 'slow', 'a response slower than the idle timeout still arrives');
  assert.equal((await get(p)).body, 'slow');
  assert.equal(opened.length, 1, 'the connection was reused after the slow response');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(opened[0]!.destroyed || opened[0]!.readableEnded, true, 'closed once idle for longer than the timeout');
  assert.equal((await get(p)).body, 'slow');
  assert.equal(opened.length, 2, 'the next request opens a new connection');
  p.retire();
  for (const s of opened) s.destroy();
  await new Promise((r) => server.close(r));
});

test('buildRequestHead refuses what would corrupt the message', () => {
  assert.equal(buildRequestHead('POST', '/a?b=1', { host: 'h', 'x-list': ['1', '2'], 'content-length': 3 }, false), 'POST /a?b=1 HTTP/1.1\r\nhost: h\r\nx-list: 1\r\nx-list: 2\r\ncontent-length: 3\r\n\r\n');
  assert.match(buildRequestHead('POST', '/', { host: 'h' }, true), /transfer-encoding: chunked\r\n\r\n$/);
  assert.throws(() => buildRequestHead('GET', '/', { 'x-bad': 'a\r\nInjected: 1' }, false), /invalid value for header "x-bad"/);
  assert.throws(() => buildRequestHead('GET', '/', { 'bad name': 'v' }, false), /invalid header name/);
  assert.throws(() => buildRequestHead('GET', '/a b', {}, false), /unescaped characters/);
  assert.throws(() => buildRequestHead('GE T', '/', {}, false), /invalid method/);
});

test('a 101 to an upgrade request hands the connection over with the bytes after the head; the pool never reuses it', async () => {
  const srv = await rawServer([['HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nearly', 'later'], 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
  const p = pool(srv.port);
  const handed = await new Promise<{ headers: string[]; sock: net.Socket; rest: string }>((resolve, reject) => {
    p.request(
      { head: buildRequestHead('GET', '/ws', { host: 'svc', connection: 'upgrade', upgrade: 'websocket' }, false), noResponseBody: false, upgrade: true },
      {
        head: () => reject(new Error('head instead of upgraded')),
        upgraded: (headers, sock, rest) => resolve({ headers, sock, rest: rest.toString() }),
        data: () => true,
        end: () => reject(new Error('end')),
        error: reject,
      },
    );
  });
  assert.equal(handed.rest, 'early');
  assert.deepEqual(handed.headers.slice(0, 2), ['upgrade', 'websocket']);
  // Later tunnel bytes are the caller's, not the response parser's (which would call them a framing error).
  assert.equal(await new Promise<string>((resolve) => handed.sock.once('data', (d: Buffer) => resolve(d.toString()))), 'later');
  assert.equal(handed.sock.destroyed, false);
  const next = await get(p);
  assert.equal(next.body, 'ok');
  assert.equal(srv.connections(), 2, 'the ordinary request opened its own connection');
  handed.sock.destroy();
  await srv.close();
});
