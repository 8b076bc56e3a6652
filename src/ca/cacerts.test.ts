import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../shared/errors.js';
import { caMaterialFromPem, loadCacerts, validateCaMaterial } from './cacerts.js';
import { createCertificateAuthority } from './authority.js';
import { createCsr } from './client.js';
import { generateKeyPair } from './keys.js';
import { parseCertificates, toNodeCert } from './pki.js';
import { generateIntermediateCa, generateRootCa, generateWorkloadCert, writeCacerts } from './tooling.js';

const DAY = 86400_000;

test('a workload cert used as ca-cert is refused: not a CA, no keyCertSign', async () => {
  const root = await generateRootCa();
  const material = await caMaterialFromPem(await generateIntermediateCa({ root, cluster: 'c1' }));
  const wl = await generateWorkloadCert({ material, spiffeId: 'spiffe://cluster.local/ns/a/sa/b' });
  const fake = await caMaterialFromPem({ caCert: wl.certPem, caKey: wl.keyPem, rootCert: root.certPem, certChain: wl.certChainPem });
  const messages = (await validateCaMaterial(fake, Date.now())).map((p) => `${p.file}: ${p.message}`);
  assert.ok(messages.includes('ca-cert.pem: not a CA certificate (basicConstraints CA:true missing)'), messages.join('\n'));
  assert.ok(messages.includes('ca-cert.pem: key usage does not allow keyCertSign'));
});

test('expired material is refused naming the certificate and date', async () => {
  const long = Date.now() - 30 * DAY;
  const root = await generateRootCa({ nowMs: long, days: 3650 });
  const old = await generateIntermediateCa({ root, cluster: 'c1', nowMs: long, days: 1 });
  const problems = await validateCaMaterial(await caMaterialFromPem(old), Date.now());
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /certificate O=crossmesh, L=c1, CN=crossmesh intermediate CA c1 expired at \d{4}-/);
});

test('a cacerts dir with a missing file lists it; the intermediate never outlives the root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossmesh-cacerts-'));
  try {
    const root = await generateRootCa({ days: 10 });
    writeCacerts(dir, await generateIntermediateCa({ root, cluster: 'c1', days: 365 }));
    const m = await loadCacerts(dir, Date.now());
    assert.equal(m.signer.cert.notAfter.getTime(), m.roots[0]!.notAfter.getTime());
    assert.equal(m.cluster, 'c1');
    assert.equal(m.trustDomain, 'cluster.local');
    unlinkSync(join(dir, 'ca-key.pem'));
    await assert.rejects(loadCacerts(dir, Date.now()), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.deepEqual(err.problems, [{ file: join(dir, 'ca-key.pem'), message: 'missing' }]);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RSA root and intermediate sign an EC workload cert that verifies up the chain', async () => {
  const root = await generateRootCa({ keyType: 'rsa-2048', trustDomain: 'example.org' });
  const inter = await generateIntermediateCa({ root, cluster: 'east', keyType: 'rsa-2048' });
  const ca = await createCertificateAuthority({ material: await caMaterialFromPem(inter) });
  assert.equal(ca.trustDomain, 'example.org');
  const id = 'spiffe://example.org/ns/a/sa/b';
  const r = await ca.sign(await createCsr(await generateKeyPair(), id), { identity: id });
  assert.ok(r.ok, r.ok ? '' : r.message);
  const [leaf, mid, top] = parseCertificates(r.certChain.join(''), 'chain').map(toNodeCert) as [ReturnType<typeof toNodeCert>, ReturnType<typeof toNodeCert>, ReturnType<typeof toNodeCert>];
  assert.ok(leaf.verify(mid.publicKey));
  assert.ok(mid.verify(top.publicKey));
  assert.equal(r.certChain[2], inter.rootCert);
  const wrongTd = await ca.sign(await createCsr(await generateKeyPair(), 'spiffe://cluster.local/ns/a/sa/b'), { identity: 'spiffe://cluster.local/ns/a/sa/b' });
  assert.equal(wrongTd.ok ? 'ok' : wrongTd.reason, 'identity-mismatch');
});

test('reload swaps in a new intermediate from the cacerts dir; a broken dir keeps the current one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossmesh-reload-'));
  try {
    const root = await generateRootCa();
    const first = await generateIntermediateCa({ root, cluster: 'c1' });
    writeCacerts(dir, first);
    const ca = await createCertificateAuthority({ cacertsDir: dir });
    const oldToken = ca.createJoinToken({ namespace: 'a', serviceAccount: 'b', ttlSeconds: 600 });
    const id = 'spiffe://cluster.local/ns/a/sa/b';
    const issue = async () => {
      const r = await ca.sign(await createCsr(await generateKeyPair(), id), { identity: id });
      assert.ok(r.ok);
      return r.certChain;
    };
    assert.equal((await issue())[1], first.caCert);
    const second = await generateIntermediateCa({ root, cluster: 'c1' });
    writeCacerts(dir, second, true);
    await ca.reload();
    assert.equal((await issue())[1], second.caCert);
    assert.equal(ca.verifyJoinToken(oldToken).ok, true, 'tokens from the previous key stay valid');
    writeCacerts(dir, { ...second, caKey: first.caKey }, true);
    await assert.rejects(ca.reload(), /private key does not match/);
    assert.equal((await issue())[1], second.caCert, 'kept the last good material');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
