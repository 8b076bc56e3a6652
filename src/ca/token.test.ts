import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createJoinToken, verifyJoinToken } from './token.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const now = 1_800_000_000_000;
const base = { trustDomain: 'cluster.local', namespace: 'sample', serviceAccount: 'sleep', cluster: 'c1', ttlSeconds: 3600, nowMs: now };
const verify = (t: string, o: Partial<Parameters<typeof verifyJoinToken>[1]> = {}) =>
  verifyJoinToken(t, { keys: [ec.publicKey, rsa.publicKey], trustDomain: 'cluster.local', cluster: 'c1', nowMs: now + 1000, ...o });

test('ES256 and RS256 tokens verify and carry the bound identity', () => {
  for (const [key, alg] of [[ec.privateKey, 'ES256'], [rsa.privateKey, 'RS256']] as const) {
    const t = createJoinToken({ ...base, signingKey: key });
    assert.equal(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).alg, alg);
    const v = verify(t);
    assert.ok(v.ok);
    assert.equal(v.claims.sub, 'spiffe://cluster.local/ns/sample/sa/sleep');
    assert.equal(v.claims.exp, now / 1000 + 3600);
  }
});

test('every refusal has its own reason', () => {
  const t = createJoinToken({ ...base, signingKey: ec.privateKey });
  const reason = (r: ReturnType<typeof verify>) => (r.ok ? 'ok' : r.reason);
  assert.equal(reason(verify(t, { nowMs: now + 3600_000 })), 'expired');
  assert.equal(reason(verify(t, { nowMs: now - 3600_000 })), 'not-yet-valid');
  assert.equal(reason(verify(t, { cluster: 'c2' })), 'wrong-cluster');
  assert.equal(reason(verify(t, { trustDomain: 'other.org' })), 'wrong-trust-domain');
  assert.equal(reason(verify(t, { keys: [rsa.publicKey] })), 'unknown-key');
  assert.equal(reason(verify('a.b')), 'malformed');
  const [h, p, s] = t.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims.exp += 86400;
  assert.equal(reason(verify(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`)), 'bad-signature');
  // alg confusion: header claims HS256 but the key decides the algorithm.
  const header = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), alg: 'HS256' })).toString('base64url');
  assert.equal(reason(verify(`${header}.${p}.${s}`)), 'bad-signature');
  assert.throws(() => createJoinToken({ ...base, namespace: 'Bad NS', signingKey: ec.privateKey }), /namespace "Bad NS" is not a valid name/);
});
