import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../shared/clock.js';
import { caMaterialFromPem } from './cacerts.js';
import { createCertificateAuthority } from './authority.js';
import type { CertificateAuthority } from './authority.js';
import type { CaConnection, CertificateResult } from './client.js';
import { createWorkloadIdentity } from './workload.js';
import type { WorkloadCredentials } from './workload.js';
import { generateIntermediateCa, generateRootCa } from './tooling.js';

const SLEEP = 'spiffe://cluster.local/ns/sample/sa/sleep';

interface FakeClock extends Clock {
  advance(ms: number): void;
}

function fakeClock(startMs: number): FakeClock {
  let now = startMs;
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return { cancel: () => void (t.cancelled = true) };
    },
    advance(ms) {
      now += ms;
      for (const t of timers.filter((t) => !t.cancelled && t.at <= now).sort((a, b) => a.at - b.at)) {
        t.cancelled = true;
        t.fn();
      }
    },
  };
}

async function caAt(clock: Clock): Promise<CertificateAuthority> {
  const root = await generateRootCa();
  return createCertificateAuthority({ material: await caMaterialFromPem(await generateIntermediateCa({ root, cluster: 'cluster-1' })), clock, maxTtlSeconds: 86400 });
}

/** A transport that signs with a real CA in-process and records what each call carried. */
function transport(getCa: () => CertificateAuthority, failures: { count: number; code?: grpc.status } = { count: 0 }) {
  const calls: CaConnection[] = [];
  const request = async (conn: CaConnection, csr: string, ttl: number): Promise<CertificateResult> => {
    calls.push(conn);
    if (failures.count > 0) {
      failures.count--;
      return { ok: false, code: failures.code ?? grpc.status.UNAVAILABLE, message: 'CA down' };
    }
    const r = await getCa().sign(csr, { identity: SLEEP, ttlSeconds: ttl });
    return r.ok ? { ok: true, certChain: r.certChain } : { ok: false, code: grpc.status.INVALID_ARGUMENT, message: r.message };
  };
  return { calls, request };
}

function nextRotation(identity: { onRotate(cb: (c: WorkloadCredentials) => void): () => void }): Promise<WorkloadCredentials> {
  return new Promise((resolve) => {
    const off = identity.onRotate((c) => {
      off();
      resolve(c);
    });
  });
}

describe('workload identity', () => {
  test('first request uses the token; rotation happens at half-life, renewing with the current certificate', async () => {
    const clock = fakeClock(Math.floor(Date.now() / 1000) * 1000);
    const ca = await caAt(clock);
    const t = transport(() => ca);
    const id = createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: ca.rootsPem(), identity: SLEEP, token: 'tok', ttlSeconds: 100, clock, request: t.request });
    const first = await id.ready();
    assert.equal(first.notAfter.getTime() - first.notBefore.getTime(), 100_000);
    assert.equal(t.calls[0]!.token, 'tok');
    assert.equal(t.calls[0]!.clientCert, undefined);
    assert.equal(id.nextAttemptAt(), first.notBefore.getTime() + 50_000);
    clock.advance(49_000);
    assert.equal(t.calls.length, 1, 'not yet');
    const rotated = nextRotation(id);
    clock.advance(1_000);
    const second = await rotated;
    assert.equal(t.calls.length, 2);
    assert.equal(t.calls[1]!.token, undefined, 'renewal does not need the token');
    assert.equal(t.calls[1]!.clientCert?.certChainPem, first.certChainPem);
    assert.notEqual(second.keyPem, first.keyPem, 'a fresh key per rotation');
    assert.equal(id.current(), second);
    id.close();
  });

  test('failures are retried with exponential backoff, earlier than the next half-life', async () => {
    const clock = fakeClock(Math.floor(Date.now() / 1000) * 1000);
    const ca = await caAt(clock);
    const failures = { count: 3 };
    const t = transport(() => ca, failures);
    const id = createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: ca.rootsPem(), identity: SLEEP, token: 'tok', clock, request: t.request, random: () => 1, retryInitialMs: 1000, retryMaxMs: 3000 });
    assert.throws(() => id.current(), /no certificate yet/);
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      while (id.nextAttemptAt() === undefined) await new Promise((r) => setImmediate(r));
      const delay = id.nextAttemptAt()! - clock.now();
      delays.push(delay);
      clock.advance(delay);
    }
    assert.deepEqual(delays, [1000, 2000, 3000]);
    const creds = await id.ready();
    assert.equal(creds.spiffeId, SLEEP);
    assert.equal(t.calls.length, 4);
    id.close();
  });

  test('renewal refused as UNAUTHENTICATED falls back to the join token at once', async () => {
    const clock = fakeClock(Math.floor(Date.now() / 1000) * 1000);
    const ca = await caAt(clock);
    const failures = { count: 0, code: grpc.status.UNAUTHENTICATED };
    const t = transport(() => ca, failures);
    const id = createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: ca.rootsPem(), identity: SLEEP, token: 'tok', ttlSeconds: 10, clock, request: t.request });
    await id.ready();
    failures.count = 1;
    await id.rotateNow();
    assert.deepEqual(
      t.calls.map((c) => (c.clientCert ? 'cert' : c.token ? 'token' : 'none')),
      ['token', 'cert', 'token'],
    );
    id.close();
  });

  test('a new root from the CA (trust bundle change) replaces rootsPem on rotation', async () => {
    const clock = fakeClock(Math.floor(Date.now() / 1000) * 1000);
    const ca1 = await caAt(clock);
    const ca2 = await caAt(clock);
    let current = ca1;
    const t = transport(() => current);
    const id = createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: ca1.rootsPem(), identity: SLEEP, token: 'tok', clock, request: t.request });
    assert.equal((await id.ready()).rootsPem, ca1.rootsPem());
    current = ca2;
    const seen: string[] = [];
    id.onRotate((c) => seen.push(c.rootsPem));
    await id.rotateNow();
    assert.deepEqual(seen, [ca2.rootsPem()]);
    assert.ok(t.calls[1]!.caTrustPem.includes(ca1.rootsPem().trim()));
    id.close();
  });

  test('close before the first certificate rejects ready()', async () => {
    const clock = fakeClock(Date.now());
    const ca = await caAt(clock);
    const id = createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: ca.rootsPem(), identity: SLEEP, token: 'tok', clock, request: transport(() => ca, { count: 100 }).request });
    id.close();
    await assert.rejects(id.ready(), /closed before a certificate was obtained/);
    assert.throws(() => createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: '', identity: 'spiffe://nope', token: 't' }), /identity: "spiffe:\/\/nope" is not a workload SPIFFE ID/);
    assert.throws(() => createWorkloadIdentity({ caAddress: 'x:1', caTrustPem: '', identity: SLEEP }), /a join token or a bootstrap certificate is required/);
  });
});
