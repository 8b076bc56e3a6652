import { test } from 'node:test';
import fc from 'fast-check';
import { caMaterialFromPem } from './cacerts.js';
import { createCertificateAuthority } from './authority.js';
import { createCsr } from './client.js';
import { generateKeyPair, x509 } from './keys.js';
import { basicConstraintsOf, keyUsagesOf, parseCertificates, spiffeIdsOf } from './pki.js';
import { generateIntermediateCa, generateRootCa } from './tooling.js';

const ID = 'spiffe://cluster.local/ns/sample/sa/sleep';
const MAX = 3600;

test('whatever a CSR asks for, the CA issues a workload leaf within max TTL or refuses with the matching reason', async () => {
  const root = await generateRootCa();
  const ca = await createCertificateAuthority({ material: await caMaterialFromPem(await generateIntermediateCa({ root, cluster: 'c1' })), maxTtlSeconds: MAX });
  const key = await generateKeyPair();
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: -10, max: MAX * 3 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 127 }),
      fc.constantFrom(ID, 'spiffe://cluster.local/ns/sample/sa/other', 'spiffe://other.org/ns/sample/sa/sleep'),
      async (ttl, askCa, usages, sanId) => {
        const extra: x509.Extension[] = [];
        if (askCa) extra.push(new x509.BasicConstraintsExtension(true, undefined, true));
        if (usages) extra.push(new x509.KeyUsagesExtension(usages, true));
        const r = await ca.sign(await createCsr(key, sanId, extra), { identity: ID, ttlSeconds: ttl });
        const wantsCa = askCa || (usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0;
        if (wantsCa) return !r.ok && r.reason === 'csr-requests-ca';
        if (sanId !== ID) return !r.ok && r.reason === 'identity-mismatch';
        if (ttl < 0) return !r.ok && r.reason === 'invalid-ttl';
        if (ttl > MAX) return !r.ok && r.reason === 'ttl-exceeds-max';
        if (!r.ok) return false;
        const leaf = parseCertificates(r.certChain[0]!, 'leaf')[0]!;
        const life = (leaf.notAfter.getTime() - leaf.notBefore.getTime()) / 1000;
        return (
          !basicConstraintsOf(leaf).ca &&
          !keyUsagesOf(leaf).includes('keyCertSign') &&
          life === (ttl === 0 ? ca.defaultTtlSeconds : ttl) &&
          life <= MAX &&
          spiffeIdsOf(leaf).join() === ID
        );
      },
    ),
    { numRuns: 40 },
  );
});
