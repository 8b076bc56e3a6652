import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../src/shared/log.js';
import type { Clock } from '../src/shared/clock.js';
import {
  addCaService,
  basicConstraintsOf,
  caMaterialFromPem,
  createCaServerCredentials,
  createCertificateAuthority,
  createCsr,
  createJoinToken,
  createWorkloadIdentity,
  generateIntermediateCa,
  generateKeyPair,
  generateRootCa,
  generateWorkloadCert,
  keyPairFromPem,
  parseCertificates,
  requestCertificate,
  spiffeIdsOf,
} from '../src/ca/index.js';
import type { CacertsPem, CaConnection, CertificateAuthority, CertificateResult, RootCaPem } from '../src/ca/index.js';
import { x509 } from '../src/ca/keys.js';

const SLEEP = 'spiffe://cluster.local/ns/sample/sa/sleep';
const HELLO = 'spiffe://cluster.local/ns/sample/sa/helloworld';
const MAX_TTL = 48 * 3600;

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('IstioCertificateService over real gRPC', () => {
  let ca: CertificateAuthority;
  let server: grpc.Server;
  let conn: CaConnection;
  let dir: string;
  let c1: CacertsPem;
  let c2: CacertsPem;
  let otherRoot: RootCaPem;
  const logLines: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crossmesh-ca-svc-'));
    const root = await generateRootCa();
    c1 = await generateIntermediateCa({ root, cluster: 'cluster-1' });
    c2 = await generateIntermediateCa({ root, cluster: 'cluster-2' });
    otherRoot = await generateRootCa();
    const logger = createLogger({ level: 'debug', json: true, write: (l) => logLines.push(l) });
    ca = await createCertificateAuthority({ material: await caMaterialFromPem(c1), maxTtlSeconds: MAX_TTL, logger });
    server = new grpc.Server();
    addCaService(server, ca, undefined, { logger });
    const creds = await createCaServerCredentials(ca);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
    conn = { address: `127.0.0.1:${port}`, caTrustPem: ca.rootsPem() };
  });

  after(() => {
    server?.forceShutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tokenFor = (sa: string, ttlSeconds = 3600) => ca.createJoinToken({ namespace: 'sample', serviceAccount: sa, ttlSeconds });

  async function ask(spiffeId: string, c: Partial<CaConnection>, ttlSeconds = 0, csrPem?: string): Promise<CertificateResult & { keyPem?: string }> {
    const key = await generateKeyPair();
    const csr = csrPem ?? (await createCsr(key, spiffeId));
    const r = await requestCertificate({ ...conn, ...c }, csr, ttlSeconds);
    return r.ok ? { ...r, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } : r;
  }

  function rejected(r: CertificateResult, code: grpc.status, pattern: RegExp): void {
    assert.equal(r.ok, false, 'expected a rejection');
    if (r.ok) return;
    assert.equal(grpc.status[r.code], grpc.status[code], r.message);
    assert.match(r.message, pattern);
  }

  test('a join token gets a SPIFFE cert; chain is leaf, intermediate, root last; openssl verifies it', async () => {
    const r = await ask(SLEEP, { token: tokenFor('sleep') });
    assert.ok(r.ok, r.ok ? '' : r.message);
    const certs = parseCertificates(r.certChain.join(''), 'response');
    assert.equal(certs.length, 3);
    assert.deepEqual(spiffeIdsOf(certs[0]!), [SLEEP]);
    assert.match(certs[1]!.subject, /cluster-1/);
    assert.equal(certs[2]!.subject, certs[2]!.issuer, 'root last');
    assert.equal(r.certChain[2], c1.rootCert);
    writeFileSync(join(dir, 'root-cert.pem'), r.certChain[2]!);
    writeFileSync(join(dir, 'ca-cert.pem'), r.certChain[1]!);
    writeFileSync(join(dir, 'workload.pem'), r.certChain[0]!);
    assert.match(openssl(['verify', '-CAfile', 'root-cert.pem', '-untrusted', 'ca-cert.pem', 'workload.pem'], dir), /workload\.pem: OK/);
    const text = openssl(['x509', '-in', 'workload.pem', '-noout', '-text'], dir);
    assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    const notBefore = certs[0]!.notBefore.getTime();
    assert.equal(certs[0]!.notAfter.getTime() - notBefore, ca.defaultTtlSeconds * 1000, 'default TTL applied');
    assert.match(text, /Not After : /);
  });

  test('a requested TTL under the max is honoured; over the max is INVALID_ARGUMENT and nothing is signed', async () => {
    const ok = await ask(SLEEP, { token: tokenFor('sleep') }, 3600);
    assert.ok(ok.ok);
    const leaf = parseCertificates(ok.certChain[0]!, 'leaf')[0]!;
    assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), 3600_000);
    const before = ca.metrics.snapshot().issued;
    rejected(await ask(SLEEP, { token: tokenFor('sleep') }, MAX_TTL + 1), grpc.status.INVALID_ARGUMENT, /exceeds the CA's maximum 2d/);
    assert.equal(ca.metrics.snapshot().issued, before);
  });

  test('a CSR for another identity than the token is PERMISSION_DENIED', async () => {
    rejected(await ask(HELLO, { token: tokenFor('sleep') }), grpc.status.PERMISSION_DENIED, /CSR is for spiffe:\/\/cluster\.local\/ns\/sample\/sa\/helloworld but the caller is entitled only to spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/);
  });

  test('malformed CSRs are INVALID_ARGUMENT: garbage, a broken signature, no SPIFFE SAN', async () => {
    rejected(await ask(SLEEP, { token: tokenFor('sleep') }, 0, 'not a csr'), grpc.status.INVALID_ARGUMENT, /malformed CSR/);
    const key = await generateKeyPair();
    const good = await createCsr(key, SLEEP);
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff; // corrupt the signature
    const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    rejected(await ask(SLEEP, { token: tokenFor('sleep') }, 0, broken), grpc.status.INVALID_ARGUMENT, /malformed CSR/);
    const noSan = (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=sleep', keys: key.cryptoKeys, signingAlgorithm: key.signingAlgorithm })).toString('pem');
    rejected(await ask(SLEEP, { token: tokenFor('sleep') }, 0, noSan), grpc.status.INVALID_ARGUMENT, /exactly one URI SAN/);
  });

  test('a CSR asking for a CA certificate is INVALID_ARGUMENT', async () => {
    const key = await generateKeyPair();
    const caCsr = await createCsr(key, SLEEP, [new x509.BasicConstraintsExtension(true, 0, true)]);
    rejected(await ask(SLEEP, { token: tokenFor('sleep') }, 0, caCsr), grpc.status.INVALID_ARGUMENT, /asks for a CA certificate/);
    const signCsr = await createCsr(key, SLEEP, [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]);
    rejected(await ask(SLEEP, { token: tokenFor('sleep') }, 0, signCsr), grpc.status.INVALID_ARGUMENT, /asks for a CA certificate/);
  });

  test('missing, expired, forged and foreign tokens are UNAUTHENTICATED', async () => {
    rejected(await ask(SLEEP, {}), grpc.status.UNAUTHENTICATED, /no credentials/);
    const past: Clock = { now: () => Date.now() - 7200_000, setTimeout: () => ({ cancel() {} }) };
    const key = await keyPairFromPem(c1.caKey);
    const expired = createJoinToken({ signingKey: key.privateKey, trustDomain: 'cluster.local', namespace: 'sample', serviceAccount: 'sleep', cluster: 'cluster-1', ttlSeconds: 3600, nowMs: past.now() });
    rejected(await ask(SLEEP, { token: expired }), grpc.status.UNAUTHENTICATED, /expired at/);
    const [h, p, s] = tokenFor('sleep').split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    claims.sa = 'helloworld';
    claims.sub = HELLO;
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    rejected(await ask(HELLO, { token: forged }), grpc.status.UNAUTHENTICATED, /signature is invalid/);
    const c2key = await keyPairFromPem(c2.caKey);
    const foreign = createJoinToken({ signingKey: c2key.privateKey, trustDomain: 'cluster.local', namespace: 'sample', serviceAccount: 'sleep', cluster: 'cluster-2', ttlSeconds: 3600, nowMs: Date.now() });
    rejected(await ask(SLEEP, { token: foreign }), grpc.status.UNAUTHENTICATED, /key this CA does not know/);
    rejected(await ask(SLEEP, { token: 'garbage' }), grpc.status.UNAUTHENTICATED, /not a compact JWS/);
  });

  test('renewal: a valid mesh certificate may renew exactly its own identity, over mTLS', async () => {
    const first = await ask(SLEEP, { token: tokenFor('sleep') });
    assert.ok(first.ok);
    const clientCert = { certChainPem: first.certChain.slice(0, 2).join(''), keyPem: first.keyPem! };
    const renewed = await ask(SLEEP, { clientCert });
    assert.ok(renewed.ok, renewed.ok ? '' : renewed.message);
    rejected(await ask(HELLO, { clientCert }), grpc.status.PERMISSION_DENIED, /entitled only to spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/);
    // A cluster-2 workload shares the root, so it may renew its own identity here too.
    const c2wl = await generateWorkloadCert({ material: await caMaterialFromPem(c2), spiffeId: HELLO });
    const viaC2 = await ask(HELLO, { clientCert: { certChainPem: c2wl.certChainPem, keyPem: c2wl.keyPem } });
    assert.ok(viaC2.ok, viaC2.ok ? '' : viaC2.message);
  });

  test('a workload identity bootstraps with an existing certificate (no token) and renews with its own over mTLS', async () => {
    const boot = await generateWorkloadCert({ material: await caMaterialFromPem(c1), spiffeId: SLEEP, ttlSeconds: 600 });
    const id = createWorkloadIdentity({ caAddress: conn.address, caTrustPem: ca.rootsPem(), identity: SLEEP, bootstrap: { certChainPem: boot.certChainPem, keyPem: boot.keyPem } });
    try {
      const first = await id.ready();
      const issuedBefore = ca.metrics.snapshot().issued;
      const second = await id.rotateNow();
      assert.equal(ca.metrics.snapshot().issued, issuedBefore + 1);
      assert.notEqual(first.certChainPem, second.certChainPem);
      assert.deepEqual(spiffeIdsOf(parseCertificates(second.certChainPem, 'chain')[0]!), [SLEEP]);
      assert.equal(second.rootsPem, c1.rootCert);
      assert.ok(id.nextAttemptAt()! > Date.now() + 3600_000, 'next rotation at half of 24 h');
    } finally {
      id.close();
    }
  });

  test('a certificate from another root is not a credential (UNAUTHENTICATED)', async () => {
    const foreignCa = await generateIntermediateCa({ root: otherRoot, cluster: 'cluster-9' });
    const wl = await generateWorkloadCert({ material: await caMaterialFromPem(foreignCa), spiffeId: SLEEP });
    rejected(await ask(SLEEP, { clientCert: { certChainPem: wl.certChainPem, keyPem: wl.keyPem } }), grpc.status.UNAUTHENTICATED, /no credentials/);
  });

  test('rejections are counted by reason and logged', () => {
    const snap = ca.metrics.snapshot();
    for (const reason of ['unauthenticated', 'malformed-csr', 'csr-requests-ca', 'identity-mismatch', 'ttl-exceeds-max', 'invalid-identity'] as const) {
      assert.ok((snap.rejected[reason] ?? 0) >= 1, `${reason} counted`);
    }
    assert.ok(snap.requested >= snap.issued + Object.values(snap.rejected).reduce((a, b) => a + b, 0));
    const warnings = logLines.map((l) => JSON.parse(l) as { level: string; msg: string; reason?: string }).filter((l) => l.msg === 'CSR rejected');
    assert.ok(warnings.some((w) => w.reason === 'identity-mismatch' && w.level === 'warn'));
    assert.ok(warnings.some((w) => w.reason === 'unauthenticated'));
  });

  test('prometheus exposition carries the counters', async () => {
    const text = await ca.metrics.registry.metrics();
    assert.match(text, /citadel_server_success_cert_issuance_count \d+/);
    assert.match(text, /crossmesh_ca_rejections_total\{reason="identity-mismatch"\} \d+/);
  });
});

describe('certificate authority (library)', () => {
  test('never signs a CA cert or beyond max TTL, whatever the CSR asks (cap policy)', async () => {
    const root = await generateRootCa();
    const ca = await createCertificateAuthority({ material: await caMaterialFromPem(await generateIntermediateCa({ root, cluster: 'c1' })), maxTtlSeconds: 600, ttlPolicy: 'cap' });
    for (const ttl of [1, 599, 600, 601, 86400 * 365]) {
      const r = await ca.sign(await createCsr(await generateKeyPair(), SLEEP), { identity: SLEEP, ttlSeconds: ttl });
      assert.ok(r.ok);
      const leaf = parseCertificates(r.certChain[0]!, 'leaf')[0]!;
      assert.equal(basicConstraintsOf(leaf).ca, false);
      assert.ok(leaf.notAfter.getTime() - leaf.notBefore.getTime() <= 600_000, `ttl ${ttl}`);
      assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime(), Math.min(ttl, 600) * 1000);
    }
    const r = await ca.sign(await createCsr(await generateKeyPair(), SLEEP), { identity: SLEEP, ttlSeconds: -5 });
    assert.equal(r.ok ? 'ok' : r.reason, 'invalid-ttl');
  });

  test('without cacerts it makes a self-signed root and warns that cross-cluster trust will fail', async () => {
    const lines: string[] = [];
    const ca = await createCertificateAuthority({ logger: createLogger({ write: (l) => lines.push(l) }) });
    assert.equal(ca.selfSigned, true);
    assert.ok(lines.some((l) => /WARN/.test(l) && /other clusters will NOT be trusted/.test(l)));
    const r = await ca.sign(await createCsr(await generateKeyPair(), SLEEP), { identity: SLEEP });
    assert.ok(r.ok);
    assert.equal(r.certChain.length, 2, 'leaf and root');
  });

  test('refuses material whose key does not match or whose intermediate is not signed by the root', async () => {
    const root = await generateRootCa();
    const a = await generateIntermediateCa({ root, cluster: 'a' });
    const b = await generateIntermediateCa({ root: await generateRootCa(), cluster: 'b' });
    await assert.rejects(createCertificateAuthority({ material: await caMaterialFromPem({ ...a, caKey: b.caKey }) }), /ca-key\.pem: private key does not match the certificate in ca-cert\.pem/);
    await assert.rejects(createCertificateAuthority({ material: await caMaterialFromPem({ ...a, rootCert: b.rootCert, certChain: a.caCert }) }), /ca-cert\.pem: .*is not signed by the root in root-cert\.pem/);
  });
});
