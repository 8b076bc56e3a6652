import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Http1ServerConnection } from './http1-server.js';
import type { DownstreamRequest, DownstreamResponse, RequestParseError } from './http1-server.js';

type Handler = (req: DownstreamRequest, res: DownstreamResponse) => void;

/** A listener serving each connection with Http1ServerConnection, as the sidecar does (half-open allowed). */
async function serve(handler: Handler, idleTimeoutMs = 60_000): Promise<{ port: number; errors: RequestParseError[]; closed: () => number; close: () => Promise<void> }> {
  const errors: RequestParseError[] = [];
  let closed = 0;
  const socks = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on('close', () => closed++);
    s.on('error', () => {});
    new Http1ServerConnection(s, { idleTimeoutMs, request: handler, parseError: (e) => errors.push(e) });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    errors,
    closed: () => closed,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Sends raw bytes (in parts, if given several) and collects everything until the server closes or `untilMs`. */
function exchange(port: number, parts: string[], untilMs = 300): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let text = '';
    let closedByServer = false;
    c.on('data', (d) => (text += d.toString('latin1')));
    c.on('end', () => {
      closedByServer = true;
      c.destroy();
    });
    c.on('close', () => resolve({ text, closedByServer }));
    c.on('error', () => {});
    parts.forEach((p, i) => setTimeout(() => c.write(p), i * 20));
    setTimeout(() => c.destroy(), untilMs);
  });
}

const echo: Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.once('end', () => {
    const body = Buffer.concat(chunks).toString();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(`${req.method} ${req.url} ${body}`) });
    res.end(`${req.method} ${req.url} ${body}`);
  });
  req.resume();
};

test('keep-alive and pipelining: responses come back in order on one connection', async () => {
  const srv = await serve(echo);
  const { text, closedByServer } = await exchange(srv.port, ['GET /a HTTP/1.1\r\nhost: h\r\n\r\nPOST /b HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nhost: h\r\n\r\n']);
  assert.equal(closedByServer, false);
  const bodies = text.split('HTTP/1.1 200 OK').slice(1).map((r) => r.split('\r\n\r\n')[1]);
  assert.deepEqual(bodies, ['GET /a ', 'POST /b xyz', 'GET /c ']);
  assert.match(text, /date: /);
  await srv.close();
});

test('chunked request bodies, split across packets, reach the handler whole; chunked responses are framed', async () => {
  const srv = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => {
      res.writeHead(200, {});
      res.write(Buffer.from('got:'));
      res.end(Buffer.concat(chunks));
    });
    req.resume();
  });
  const { text } = await exchange(srv.port, ['POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n4\r\nwi', 'ki\r\n5;x=y\r\npedia\r\n0\r\ntrailer: 1\r\n\r\n']);
  assert.match(text, /transfer-encoding: chunked\r\n/);
  assert.ok(text.endsWith('\r\n\r\n4\r\ngot:\r\n9\r\nwikipedia\r\n0\r\n\r\n'), JSON.stringify(text));
  await srv.close();
});

test('malformed requests get 400 (431 for huge heads) and the connection closes', async () => {
  const srv = await serve(echo);
  const cases: Array<[string, RegExp]> = [
    ['NOT HTTP AT ALL\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nbad header\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['POST / HTTP/1.1\r\ncontent-length: abc\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', /^HTTP\/1\.1 400 /],
    [`GET / HTTP/1.1\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
  ];
  for (const [raw, want] of cases) {
    const { text, closedByServer } = await exchange(srv.port, [raw]);
    assert.match(text, want, raw.slice(0, 40));
    assert.ok(closedByServer, `closed after ${raw.slice(0, 40)}`);
  }
  assert.equal(srv.errors.length, cases.length);
  assert.match(srv.errors.find((e) => e.status === 400)!.message, /invalid request line/);
  await srv.close();
});

test('HTTP/1.0: close unless keep-alive was asked for; a body without length ends with the connection', async () => {
  const srv = await serve((_req, res) => {
    res.writeHead(200, {});
    res.end(Buffer.from('streamed'));
  });
  const plain = await exchange(srv.port, ['GET / HTTP/1.0\r\n\r\n']);
  assert.match(plain.text, /connection: close/);
  assert.ok(plain.closedByServer);
  const kept = await exchange(srv.port, ['GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n']);
  assert.ok(kept.closedByServer, 'no length and no chunked encoding in HTTP/1.0: the close ends the body');
  await srv.close();
});

test('an unread small body is skipped to keep the connection; a client FIN closes it (no CLOSE-WAIT leak)', async () => {
  const srv = await serve((req, res) => {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    void req;
  });
  const { text } = await exchange(srv.port, ['POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nhello', 'GET /y HTTP/1.1\r\nhost: h\r\n\r\n']);
  assert.equal(text.split('HTTP/1.1 404').length - 1, 2);
  const before = srv.closed();
  await new Promise<void>((resolve) => {
    const c = net.connect(srv.port, '127.0.0.1', () => c.end());
    c.on('close', () => resolve());
    c.resume();
  });
  for (let i = 0; i < 50 && srv.closed() === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(srv.closed(), before + 1, 'the server side closed after the client half-closed');
  await srv.close();
});

test('Expect: 100-continue gets an interim response; idle connections time out', async () => {
  const srv = await serve(echo, 150);
  const { text, closedByServer } = await exchange(srv.port, ['POST /e HTTP/1.1\r\nhost: h\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n', 'ok'], 1000);
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
  assert.match(text, /POST \/e ok$/);
  assert.ok(closedByServer, 'closed by the idle timeout');
  await srv.close();
});

test('a request slower than the idle timeout is answered and the connection kept; then idle closes it', async () => {
  const srv = await serve((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'content-length': 4 });
      res.end('late');
    }, 250);
    req.resume();
  }, 100);
  const c = net.connect(srv.port, '127.0.0.1');
  let text = '';
  let closedAt = 0;
  const started = Date.now();
  c.on('data', (d) => (text += d.toString('latin1')));
  c.on('end', () => (closedAt = Date.now() - started));
  c.write('GET /1 HTTP/1.1\r\nhost: h\r\n\r\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.match(text, /^HTTP\/1\.1 200 OK[\s\S]*late$/);
  c.write('GET /2 HTTP/1.1\r\nhost: h\r\n\r\n');
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(text.split('late').length - 1, 2, 'the second request used the same connection');
  assert.ok(closedAt >= 550, `closed by the idle timeout only after the second answer (${closedAt} ms)`);
  c.destroy();
  await srv.close();
});

test('invalid response headers from a header op are refused before anything is sent', async () => {
  const srv = await serve((_req, res) => {
    assert.throws(() => res.writeHead(200, { 'x-bad': 'a\r\nset-cookie: injected' }), /invalid value for header "x-bad"/);
    res.writeHead(502, { 'content-length': 0 });
    res.end();
  });
  const { text } = await exchange(srv.port, ['GET / HTTP/1.1\r\nhost: h\r\n\r\n']);
  assert.match(text, /^HTTP\/1\.1 502 /);
  assert.doesNotMatch(text, /injected/);
  await srv.close();
});

test('upgrade requests: the handler may switch protocols and gets the socket with the bytes already sent', async () => {
  const seen: Array<string | undefined> = [];
  const srv = await serve((req, res) => {
    seen.push(req.upgrade);
    if (req.upgrade !== 'websocket') return echo(req, res);
    const { socket, head } = res.switchProtocols({ upgrade: 'websocket' });
    socket.write(`tunnel got ${head.toString()}`);
    socket.on('data', (d: Buffer) => socket.end(`+${d.toString()}`));
  });
  const ws = await exchange(srv.port, ['GET /ws HTTP/1.1\r\nhost: h\r\nconnection: keep-alive, Upgrade\r\nupgrade: WebSocket\r\n\r\nframe1', 'GET / HTTP/1.1\r\n\r\n']);
  assert.match(ws.text, /^HTTP\/1\.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\ntunnel got frame1\+GET \/ HTTP\/1\.1\r\n\r\n$/);
  // h2c is not an upgrade the proxy takes: an ordinary keep-alive request.
  const h2c = await exchange(srv.port, ['GET /a HTTP/1.1\r\nhost: h\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAA\r\n\r\nGET /b HTTP/1.1\r\nhost: h\r\n\r\n']);
  assert.equal(h2c.text.split('HTTP/1.1 200 OK').length - 1, 2);
  assert.equal(h2c.closedByServer, false);
  // An upgrade answered without switching: the reply goes out and the connection closes (what follows is not HTTP).
  const refused = await exchange(srv.port, ['GET / HTTP/1.1\r\nhost: h\r\nconnection: upgrade\r\nupgrade: other\r\n\r\n']);
  assert.match(refused.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(refused.text, /connection: close/);
  assert.ok(refused.closedByServer);
  assert.deepEqual(seen, ['websocket', undefined, undefined, 'other']);
  await srv.close();
});

test('CONNECT reaches the handler, and the connection closes after its reply', async () => {
  const srv = await serve((req, res) => {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    void req;
  });
  const { text, closedByServer } = await exchange(srv.port, ['CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n\x16\x03\x01']);
  assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.equal(text.split('HTTP/1.1').length - 1, 1, 'the bytes after the CONNECT head were not parsed as a request');
  assert.ok(closedByServer);
  assert.equal(srv.errors.length, 0);
  await srv.close();
});

test('codec AUTO: a connection opening with the HTTP/2 preface (even split) is handed over with its bytes; without the hook it is a 400', async () => {
  const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  const handed: string[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on('error', () => {});
    new Http1ServerConnection(s, {
      idleTimeoutMs: 60_000,
      request: echo,
      parseError: () => {},
      http2: (buffered) => {
        handed.push(buffered.toString('latin1'));
        s.end('handed');
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const split = await exchange(port, ['PRI * HT', `${preface.slice(8)}frames`]);
    assert.equal(split.text, 'handed');
    assert.deepEqual(handed, [`${preface}frames`]);
    // A request starting with the same letter is HTTP/1.1 as usual.
    const h1 = await exchange(port, ['PUT /p HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n']);
    assert.match(h1.text, /^HTTP\/1\.1 200 OK\r\n[^]*PUT \/p $/);
    assert.equal(handed.length, 1);
  } finally {
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
  // codec HTTP1: no hook, the preface is a bad request line.
  const h1only = await serve(echo);
  try {
    const r = await exchange(h1only.port, [preface]);
    assert.match(r.text, /^HTTP\/1\.1 400/);
    assert.equal(h1only.errors.length, 1);
  } finally {
    await h1only.close();
  }
});

test('writeHeadRaw: the head straight from a name/value list, hop-by-hop and skipped names dropped, framing and date as writeHead', async () => {
  const srv = await serve((req, res) => {
    req.resume();
    if (req.url === '/empty') {
      res.writeHeadRaw(502, ['Content-Length', '0'], new Set()).end();
      return;
    }
    const raw = ['Content-Type', 'text/plain', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'X-Drop', '1', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'];
    if (req.url === '/sized') raw.push('Content-Length', '2', 'Date', 'Thu, 01 Jan 1970 00:00:00 GMT');
    res.writeHeadRaw(200, raw, new Set(['x-drop']));
    res.end(Buffer.from('ok'));
  });
  const { text } = await exchange(srv.port, ['GET /sized HTTP/1.1\r\nhost: h\r\n\r\nGET /chunked HTTP/1.1\r\nhost: h\r\n\r\nGET /empty HTTP/1.1\r\nhost: h\r\n\r\n']);
  const [sized, chunked, empty] = text.split(/(?=HTTP\/1\.1 )/);
  assert.equal(sized, 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 2\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nok');
  assert.match(chunked!, /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ndate: [^\r]+ GMT\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n$/);
  assert.match(empty!, /^HTTP\/1\.1 502 Bad Gateway\r\ncontent-length: 0\r\n/);
  await srv.close();
});
