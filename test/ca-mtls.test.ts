import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import {
  addCaService,
  bindServerCredentials,
  caMaterialFromPem,
  connectMeshTls,
  createCaServerCredentials,
  createCertificateAuthority,
  createWorkloadIdentity,
  generateIntermediateCa,
  generateRootCa,
  peerSpiffeId,
  PeerVerificationError,
  secureContextOptions,
  tlsClientOptions,
  tlsServerOptions,
  verifyPeer,
} from '../src/ca/index.js';
import type { CacertsPem, CertificateAuthority, WorkloadIdentity } from '../src/ca/index.js';

const SLEEP = 'spiffe://cluster.local/ns/sample/sa/sleep';
const HELLO = 'spiffe://cluster.local/ns/sample/sa/helloworld';

interface RunningCa {
  ca: CertificateAuthority;
  address: string;
  close(): void;
}

async function startCa(cacerts: CacertsPem, maxTtlSeconds = 86400): Promise<RunningCa> {
  const ca = await createCertificateAuthority({ material: await caMaterialFromPem(cacerts), maxTtlSeconds });
  const server = new grpc.Server();
  addCaService(server, ca);
  const creds = await createCaServerCredentials(ca);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return { ca, address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

function identityFrom(running: RunningCa, spiffeId: string, ttlSeconds?: number): WorkloadIdentity {
  const [, , ns, , sa] = spiffeId.replace('spiffe://', '').split('/') as [string, string, string, string, string];
  return createWorkloadIdentity({
    caAddress: running.address,
    caTrustPem: running.ca.rootsPem(),
    identity: spiffeId,
    token: running.ca.createJoinToken({ namespace: ns, serviceAccount: sa, ttlSeconds: 600 }),
    ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
    retryInitialMs: 50,
    retryMaxMs: 200,
  });
}

/** A mesh echo server: answers each line with `<line>:<caller SPIFFE ID>`. */
async function startEchoServer(identity: WorkloadIdentity): Promise<{ server: tls.Server; port: number; accepted: number; unbind: () => void }> {
  let accepted = 0;
  const server = tls.createServer(tlsServerOptions(identity.current()), (socket) => {
    accepted++;
    const caller = peerSpiffeId(socket) ?? 'anonymous';
    socket.setEncoding('utf8');
    let buf = '';
    socket.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        socket.write(`${buf.slice(0, i)}:${caller}\n`);
        buf = buf.slice(i + 1);
      }
    });
    socket.on('error', () => {});
  });
  const unbind = bindServerCredentials(server, identity);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    unbind,
  };
}

function roundTrip(socket: tls.TLSSocket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i >= 0) {
        socket.off('data', onData);
        socket.off('error', reject);
        resolve(buf.slice(0, i));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(line + '\n');
  });
}

describe('mutual TLS across clusters', () => {
  const cleanups: (() => void)[] = [];
  let cluster1: RunningCa;
  let cluster2: RunningCa;
  let cluster3: RunningCa;

  before(async () => {
    const root = await generateRootCa();
    const otherRoot = await generateRootCa();
    cluster1 = await startCa(await generateIntermediateCa({ root, cluster: 'cluster-1' }), 3600);
    cluster2 = await startCa(await generateIntermediateCa({ root, cluster: 'cluster-2' }), 3600);
    cluster3 = await startCa(await generateIntermediateCa({ root: otherRoot, cluster: 'cluster-3' }), 3600);
    cleanups.push(cluster1.close, cluster2.close, cluster3.close);
  });

  after(() => {
    for (const c of cleanups.reverse()) c();
  });

  test('a cluster-1 workload and a cluster-2 workload with intermediates of one root handshake and see each other', async () => {
    const sleep = identityFrom(cluster1, SLEEP);
    const hello = identityFrom(cluster2, HELLO);
    cleanups.push(() => sleep.close(), () => hello.close());
    await Promise.all([sleep.ready(), hello.ready()]);
    assert.match(hello.current().certChainPem.split('-----END CERTIFICATE-----').length.toString(), /3/, 'leaf + intermediate');
    const { server, port, unbind } = await startEchoServer(hello);
    cleanups.push(() => server.close(), unbind);
    const conn = await connectMeshTls({ host: '127.0.0.1', port, credentials: sleep.current(), expectedPeer: [HELLO] });
    try {
      assert.equal(conn.peerSpiffeId, HELLO, 'client sees the server identity');
      assert.equal(await roundTrip(conn.socket, 'hi'), `hi:${SLEEP}`, 'server sees the client identity');
    } finally {
      conn.socket.destroy();
    }
  });

  test('an unexpected peer identity is refused with E_SPIFFE_MISMATCH', async () => {
    const sleep = identityFrom(cluster1, SLEEP);
    const hello = identityFrom(cluster2, HELLO);
    cleanups.push(() => sleep.close(), () => hello.close());
    await Promise.all([sleep.ready(), hello.ready()]);
    const { server, port, unbind } = await startEchoServer(hello);
    cleanups.push(() => server.close(), unbind);
    await assert.rejects(connectMeshTls({ host: '127.0.0.1', port, credentials: sleep.current(), expectedPeer: ['spiffe://cluster.local/ns/sample/sa/other'] }), (err: unknown) => {
      assert.ok(err instanceof PeerVerificationError);
      assert.equal(err.reason, 'E_SPIFFE_MISMATCH');
      assert.match(err.message, /peer identity spiffe:\/\/cluster\.local\/ns\/sample\/sa\/helloworld is not one of the expected/);
      return true;
    });
  });

  test('plain tlsClientOptions: node verifies chain and SPIFFE ID itself', async () => {
    const sleep = identityFrom(cluster1, SLEEP);
    const hello = identityFrom(cluster2, HELLO);
    const stranger = identityFrom(cluster3, HELLO);
    cleanups.push(() => sleep.close(), () => hello.close(), () => stranger.close());
    await Promise.all([sleep.ready(), hello.ready(), stranger.ready()]);
    const good = await startEchoServer(hello);
    const bad = await startEchoServer(stranger);
    cleanups.push(() => good.server.close(), good.unbind, () => bad.server.close(), bad.unbind);
    const connect = (port: number, expectedPeer: string[]) =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect(tlsClientOptions(sleep.current(), { host: '127.0.0.1', port, expectedPeer }), () => resolve(s));
        s.once('error', reject);
      });
    const ok = await connect(good.port, [HELLO]);
    assert.equal(await roundTrip(ok, 'x'), `x:${SLEEP}`);
    ok.destroy();
    await assert.rejects(connect(good.port, [SLEEP]), /peer identity spiffe:\/\/cluster\.local\/ns\/sample\/sa\/helloworld is not one of the expected/);
    await assert.rejects(connect(bad.port, [HELLO]), /unable to get (local )?issuer certificate/);
  });

  test('with two different roots the handshake fails and the error names the untrusted issuer', async () => {
    const sleep = identityFrom(cluster1, SLEEP);
    const stranger = identityFrom(cluster3, HELLO);
    cleanups.push(() => sleep.close(), () => stranger.close());
    await Promise.all([sleep.ready(), stranger.ready()]);
    const echo = await startEchoServer(stranger);
    const { server, port, unbind } = echo;
    cleanups.push(() => server.close(), unbind);
    await assert.rejects(connectMeshTls({ host: '127.0.0.1', port, credentials: sleep.current() }), (err: unknown) => {
      assert.ok(err instanceof PeerVerificationError, String(err));
      assert.match(err.message, /certificate issuer CN=crossmesh intermediate CA cluster-3, O=crossmesh, L=cluster-3 \(cluster-3 intermediate\) does not chain to a trusted root/);
      assert.match(err.message, /issued by CN=crossmesh root CA cluster\.local, O=crossmesh \(key id [0-9a-f]+\), which is not a trusted root/);
      assert.match(err.reason, /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
      return true;
    });
    // The server refuses the cluster-1 client certificate too: node closes such a connection
    // right after the handshake, before the app sees it, so nothing is ever echoed.
    const accepted = echo.accepted;
    const raw = tls.connect({ ...secureContextOptions(sleep.current()), host: '127.0.0.1', port, rejectUnauthorized: false });
    raw.on('error', () => {});
    const closed = once(raw, 'close');
    await once(raw, 'secureConnect');
    raw.write('anyone there?\n');
    let echoed = '';
    raw.on('data', (d: Buffer) => (echoed += d.toString()));
    await closed;
    assert.equal(echoed, '', 'server answered an untrusted client');
    assert.equal(echo.accepted, accepted, 'server app never saw the untrusted connection');
  });
});

describe('server side', () => {
  test('a server that verifies in its handler (rejectUnauthorized: false + verifyPeer) can say why a client is refused', async () => {
    const root = await generateRootCa();
    const c1 = await startCa(await generateIntermediateCa({ root, cluster: 'cluster-1' }));
    const c9 = await startCa(await generateIntermediateCa({ root: await generateRootCa(), cluster: 'cluster-9' }));
    const hello = identityFrom(c1, HELLO);
    const stranger = identityFrom(c9, SLEEP);
    const server = tls.createServer({ ...tlsServerOptions(await hello.ready()), rejectUnauthorized: false });
    try {
      await stranger.ready();
      const verdicts: string[] = [];
      server.on('secureConnection', (socket) => {
        verdicts.push(verifyPeer(socket, hello.current().rootsPem)?.message ?? 'trusted');
        socket.destroy();
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const client = tls.connect({ ...secureContextOptions(stranger.current()), host: '127.0.0.1', port: (server.address() as AddressInfo).port, rejectUnauthorized: false });
      client.on('error', () => {});
      await once(client, 'close');
      while (verdicts.length === 0) await new Promise((r) => setImmediate(r));
      assert.match(verdicts[0]!, /^peer spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep: certificate issuer CN=crossmesh intermediate CA cluster-9, O=crossmesh, L=cluster-9 \(cluster-9 intermediate\) does not chain to a trusted root/);
    } finally {
      server.close();
      hello.close();
      stranger.close();
      c1.close();
      c9.close();
    }
  });
});

describe('rotation under load', () => {
  test('a TLS server keeps serving a client loop while its certificate rotates several times: zero failed requests', async () => {
    const root = await generateRootCa();
    const ca = await startCa(await generateIntermediateCa({ root, cluster: 'cluster-1' }), 60);
    // 4 s TTLs rotate at 2 s and leave 2 s of margin, so a loaded CI machine does not see expiry races.
    const server = identityFrom(ca, HELLO, 4);
    const client = identityFrom(ca, SLEEP, 4);
    const echo = await (async () => {
      await Promise.all([server.ready(), client.ready()]);
      return startEchoServer(server);
    })();
    const serials = new Set<string>();
    let rotations = 0;
    const unsubscribe = server.onRotate(() => rotations++);
    let ok = 0;
    const failures: string[] = [];
    try {
      // A connection opened before any rotation must survive all of them.
      const longLived = await connectMeshTls({ host: '127.0.0.1', port: echo.port, credentials: client.current(), expectedPeer: [HELLO] });
      const deadline = Date.now() + 30_000;
      while (rotations < 3 && Date.now() < deadline) {
        try {
          const c = await connectMeshTls({ host: '127.0.0.1', port: echo.port, credentials: client.current(), expectedPeer: [HELLO] });
          serials.add(c.socket.getPeerCertificate().serialNumber);
          const answer = await roundTrip(c.socket, `req${ok}`);
          if (answer !== `req${ok}:${SLEEP}`) failures.push(`bad answer ${answer}`);
          else ok++;
          c.socket.destroy();
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      assert.equal(await roundTrip(longLived.socket, 'still-there'), `still-there:${SLEEP}`, 'existing connection kept');
      longLived.socket.destroy();
    } finally {
      unsubscribe();
      echo.unbind();
      echo.server.close();
      server.close();
      client.close();
      ca.close();
    }
    assert.deepEqual(failures, []);
    assert.ok(rotations >= 3, `rotated ${rotations} times`);
    assert.ok(serials.size >= 3, `served ${serials.size} distinct certificates`);
    assert.ok(ok > 10, `${ok} requests`);
  });
});
