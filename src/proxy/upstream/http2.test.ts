import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Http2Pool } from './http2.js';
import type { Http2Request } from './http2.js';
import type { UpstreamSocket } from './socket.js';
import { CONNECTED } from './socket.js';

/** An h2c server; `onStream` answers, `sessions` counts the connections it accepted. */
async function h2Server(
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, session: http2.ServerHttp2Session, n: number) => void,
  settings: http2.Settings = {},
): Promise<{ port: number; sessions: () => number; closed: () => number; close: () => Promise<void> }> {
  let sessions = 0;
  let closed = 0;
  let streams = 0;
  const server = http2.createServer({ settings });
  const open = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions++;
    open.add(s);
    s.on('close', () => {
      closed++;
      open.delete(s);
    });
    s.on('error', () => {});
  });
  server.on('stream', (st, h) => {
    st.on('error', () => {});
    onStream(st, h, st.session as http2.ServerHttp2Session, ++streams);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    sessions: () => sessions,
    closed: () => closed,
    close: () => {
      for (const s of open) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function pool(port: number, limits: Partial<{ maxConnections: number; idleTimeoutMs: number; maxRequestsPerConnection: number }> = {}): Http2Pool {
  return new Http2Pool(
    () => {
      const s: UpstreamSocket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => (s[CONNECTED] = true));
      return s;
    },
    { maxConnections: 8, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, ...limits },
  );
}

interface Got {
  status?: number;
  headers: string[];
  trailers: string[];
  body: string;
  error?: { code: string | undefined; connected: boolean; headSeen: boolean; remoteReset?: boolean };
}

const GET = (path: string, over: Partial<Http2Request> = {}): Http2Request => ({ method: 'GET', path, headers: { host: 'svc:80' }, streaming: false, trailers: false, ...over });

function send(p: Http2Pool, req: Http2Request, onHead?: () => void): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { headers: [], trailers: [], body: '' };
    p.request(req, {
      head(status, raw) {
        got.status = status;
        got.headers = raw;
        onHead?.();
      },
      data(chunk) {
        got.body += chunk.toString();
        return true;
      },
      trailers(raw) {
        got.trailers = raw;
      },
      end: () => resolve(got),
      error(err, info) {
        got.error = { code: err.code, connected: info.connected, headSeen: info.headSeen, ...(info.remoteReset ? { remoteReset: true } : {}) };
        resolve(got);
      },
    });
  });
}

test('a request with a body goes out as one stream; headers, body and trailers come back', async () => {
  const srv = await h2Server((st, h) => {
    let body = '';
    st.on('data', (c: Buffer) => (body += c.toString()));
    st.on('end', () => {
      st.respond({ ':status': 200, 'x-seen': `${String(h[':method'])} ${String(h[':path'])} ${String(h[':authority'])} te=${String(h.te)} ${body}` }, { waitForTrailers: true });
      st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
      st.end('pong');
    });
  });
  const p = pool(srv.port);
  try {
    const got = await send(p, GET('/x?y=1', { method: 'POST', body: Buffer.from('ping'), trailers: true, headers: { host: 'svc:80', connection: 'close', 'x-a': ['1', '2'] } }));
    assert.equal(got.status, 200);
    assert.deepEqual(got.headers.slice(0, 2), ['x-seen', 'POST /x?y=1 svc:80 te=trailers ping']);
    assert.equal(got.body, 'pong');
    assert.deepEqual(got.trailers, ['grpc-status', '0', 'grpc-message', 'fine']);
  } finally {
    p.retire();
    await srv.close();
  }
});

test('concurrent requests share one session', async () => {
  const srv = await h2Server((st) => setTimeout(() => st.respond({ ':status': 204 }, { endStream: true }), 20));
  const p = pool(srv.port);
  try {
    const all = await Promise.all([1, 2, 3, 4].map((i) => send(p, GET(`/${i}`))));
    assert.deepEqual(all.map((g) => g.status), [204, 204, 204, 204]);
    assert.equal(srv.sessions(), 1);
  } finally {
    p.retire();
    await srv.close();
  }
});

test('a stream refused with REFUSED_STREAM is re-sent and answered', async () => {
  const srv = await h2Server((st, _h, _s, n) => {
    if (n === 1) return st.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    st.respond({ ':status': 200 });
    st.end(`attempt ${n}`);
  });
  const p = pool(srv.port);
  try {
    const got = await send(p, GET('/'));
    assert.equal(got.error, undefined);
    assert.equal(got.body, 'attempt 2');
  } finally {
    p.retire();
    await srv.close();
  }
});

test('GOAWAY before the stream was processed: re-sent on a new session', async () => {
  const srv = await h2Server((st, _h, _s, n) => {
    st.respond({ ':status': 200 });
    st.end(`answered by stream ${n}`);
  });
  // The first connection's peer answers the client's preface with SETTINGS and a GOAWAY saying it
  // processed no stream (last stream id 0), as a server shutting down does; later ones reach the server.
  let accepted = 0;
  const front = net.createServer((sock) => {
    if (++accepted > 1) {
      const up = net.connect({ port: srv.port, host: '127.0.0.1' });
      sock.pipe(up).pipe(sock);
      up.on('error', () => sock.destroy());
      sock.on('error', () => up.destroy());
      return;
    }
    sock.on('error', () => {});
    sock.once('data', () => {
      const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
      const goaway = Buffer.from([0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      sock.write(Buffer.concat([settings, goaway]));
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const p = pool((front.address() as AddressInfo).port);
  try {
    const got = await send(p, GET('/'));
    assert.equal(got.error, undefined);
    assert.equal(got.status, 200);
    assert.equal(got.body, 'answered by stream 1');
    assert.equal(accepted, 2);
  } finally {
    p.retire();
    front.close();
    await srv.close();
  }
});

test("the peer's max concurrent streams: a stream beyond it opens another session", async () => {
  const held: http2.ServerHttp2Stream[] = [];
  const srv = await h2Server(
    (st) => {
      st.respond({ ':status': 200 });
      st.write('a');
      held.push(st);
    },
    { maxConcurrentStreams: 1 },
  );
  const p = pool(srv.port);
  try {
    let first!: () => void;
    const headSeen = new Promise<void>((r) => (first = r));
    const one = send(p, GET('/1'), first);
    await headSeen;
    const two = send(p, GET('/2'));
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    assert.equal(srv.sessions(), 2);
    for (const st of held) st.end();
    assert.deepEqual((await Promise.all([one, two])).map((g) => g.body), ['a', 'a']);
  } finally {
    p.retire();
    await srv.close();
  }
});

test('a connection lost mid-response is an error after the head; nothing listening is a connect failure', async () => {
  const srv = await h2Server((st, _h, session) => {
    st.respond({ ':status': 200 });
    st.write('partial', () => setTimeout(() => session.destroy(), 10));
  });
  const p = pool(srv.port);
  try {
    const got = await send(p, GET('/'));
    assert.equal(got.status, 200);
    assert.deepEqual(got.error, { code: 'ECONNRESET', connected: true, headSeen: true });
  } finally {
    p.retire();
    await srv.close();
  }
  const dead = pool(srv.port);
  const got = await send(dead, GET('/'));
  assert.equal(got.error?.connected, false);
  assert.equal(got.error?.headSeen, false);
});

test('an idle session closes after the idle timeout', async () => {
  const srv = await h2Server((st) => st.respond({ ':status': 204 }, { endStream: true }));
  const p = pool(srv.port, { idleTimeoutMs: 50 });
  try {
    assert.equal((await send(p, GET('/'))).status, 204);
    assert.equal(p.sessionCount, 1);
    const end = Date.now() + 2000;
    while (srv.closed() < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.closed(), 1);
    assert.equal(p.sessionCount, 0);
  } finally {
    p.retire();
    await srv.close();
  }
});

test('a stream the peer resets (RST_STREAM) while the connection stays up is a remote reset', async () => {
  const srv = await h2Server((st) => st.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  const p = pool(srv.port);
  try {
    const got = await send(p, GET('/'));
    assert.deepEqual(got.error, { code: 'ECONNRESET', connected: true, headSeen: false, remoteReset: true });
  } finally {
    p.retire();
    await srv.close();
  }
});

test('max_requests_per_connection: a session that carried its share is replaced and closed', async () => {
  const srv = await h2Server((st) => st.respond({ ':status': 204 }, { endStream: true }));
  const p = pool(srv.port, { maxRequestsPerConnection: 2 });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await send(p, GET(`/${i}`))).status, 204);
    assert.equal(srv.sessions(), 3);
    const end = Date.now() + 2000;
    while (srv.closed() < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.closed(), 2);
  } finally {
    p.retire();
    await srv.close();
  }
});
