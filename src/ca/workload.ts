import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { silentLogger } from '../shared/log.js';
import type { CaConnection, CertificateResult } from './client.js';
import { createCsr, requestCertificate } from './client.js';
import { WorkloadIdentityError } from './errors.js';
import type { KeyType } from './keys.js';
import { generateKeyPair, privateKeyPem } from './keys.js';
import { certPem, parseCertificates, spiffeIdsOf, toNodeCert } from './pki.js';
import { parseSpiffeId } from './spiffe.js';

/** A workload's current credentials; replaced as a whole on every rotation. */
export interface WorkloadCredentials {
  /** Leaf then intermediates: what to present in TLS. */
  certChainPem: string;
  keyPem: string;
  /** Trust anchors from the CA's latest answer. */
  rootsPem: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}

/** Something that hands out credentials and says when they change (a WorkloadIdentity, or a fixed set). */
export interface CredentialSource {
  current(): WorkloadCredentials;
  /** cb runs after each successful rotation, with the new credentials; returns an unsubscribe. */
  onRotate(cb: (creds: WorkloadCredentials) => void): () => void;
}

export interface WorkloadIdentityOptions {
  /** host:port of the CA (the control plane's 15012-style port). */
  caAddress: string;
  /** Roots that verify the CA endpoint. */
  caTrustPem: string;
  caServerName?: string;
  /** The SPIFFE ID to request. */
  identity: string;
  /** Join token for the first request (and when renewal by certificate is refused). */
  token?: string;
  /** An existing certificate to authenticate the first request with instead of a token. */
  bootstrap?: { certChainPem: string; keyPem: string };
  keyType?: KeyType;
  /** Requested validity; default: the CA's default. */
  ttlSeconds?: number;
  /** Fraction of the lifetime after which to rotate; default 0.5 (half-life). */
  rotateAt?: number;
  /** Retry backoff after a failed request: initial and maximum delay; default 1 s and 30 s. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
  /** Transport, injectable for tests; default requestCertificate over gRPC. */
  request?: (conn: CaConnection, csrPem: string, ttlSeconds: number) => Promise<CertificateResult>;
}

/** Obtains and rotates a workload certificate from the mesh CA. */
export interface WorkloadIdentity extends CredentialSource {
  /** Resolves with the first credentials (retrying until the CA answers); rejects if closed first. */
  ready(): Promise<WorkloadCredentials>;
  /** The latest credentials; throws WorkloadIdentityError before the first success. */
  current(): WorkloadCredentials;
  /** Rotates now (e.g. the trust bundle changed); shares an attempt already running. */
  rotateNow(): Promise<WorkloadCredentials>;
  /** When the next rotation attempt is scheduled (clock ms), if any. */
  nextAttemptAt(): number | undefined;
  /** Stops timers; current() keeps answering. */
  close(): void;
}

function isSelfSigned(c: ReturnType<typeof parseCertificates>[number]): boolean {
  if (c.subject !== c.issuer) return false;
  return toNodeCert(c).checkIssued(toNodeCert(c));
}

/** Starts obtaining a certificate at once; await ready() for the first one. */
export function createWorkloadIdentity(opts: WorkloadIdentityOptions): WorkloadIdentity {
  const parsed = parseSpiffeId(opts.identity);
  if (!parsed.ok) throw new WorkloadIdentityError(`identity: ${parsed.message}`);
  if (opts.token === undefined && opts.bootstrap === undefined) throw new WorkloadIdentityError('a join token or a bootstrap certificate is required');
  const clock = opts.clock ?? systemClock;
  const logger = (opts.logger ?? silentLogger).child({ component: 'workload-identity', spiffeId: opts.identity });
  const random = opts.random ?? Math.random;
  const request = opts.request ?? requestCertificate;
  const rotateAt = opts.rotateAt ?? 0.5;
  const retryInitial = opts.retryInitialMs ?? 1000;
  const retryMax = opts.retryMaxMs ?? 30_000;

  let creds: WorkloadCredentials | undefined;
  let failures = 0;
  let timer: { cancel(): void } | undefined;
  let nextAt: number | undefined;
  let inflight: Promise<WorkloadCredentials> | undefined;
  let closed = false;
  const listeners = new Set<(c: WorkloadCredentials) => void>();
  let resolveReady!: (c: WorkloadCredentials) => void;
  let rejectReady!: (e: Error) => void;
  const readyPromise = new Promise<WorkloadCredentials>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  readyPromise.catch(() => {});

  const schedule = (delayMs: number) => {
    timer?.cancel();
    if (closed) return;
    nextAt = clock.now() + delayMs;
    timer = clock.setTimeout(() => {
      timer = undefined;
      nextAt = undefined;
      attempt().catch(() => {});
    }, delayMs);
  };

  const connection = (useCert: boolean): CaConnection => {
    const trust = opts.caTrustPem + (creds && !opts.caTrustPem.includes(creds.rootsPem.trim()) ? creds.rootsPem : '');
    const clientCert = useCert ? (creds ? { certChainPem: creds.certChainPem, keyPem: creds.keyPem } : opts.bootstrap) : undefined;
    return {
      address: opts.caAddress,
      caTrustPem: trust,
      ...(opts.caServerName ? { serverName: opts.caServerName } : {}),
      ...(!useCert && opts.token !== undefined ? { token: opts.token } : {}),
      ...(clientCert ? { clientCert } : {}),
    };
  };

  const once = async (): Promise<WorkloadCredentials> => {
    const key = await generateKeyPair(opts.keyType ?? 'ec-p256');
    const csr = await createCsr(key, opts.identity);
    const haveCert = (creds !== undefined && creds.notAfter.getTime() > clock.now()) || (creds === undefined && opts.bootstrap !== undefined);
    let result = await request(connection(haveCert), csr, opts.ttlSeconds ?? 0);
    if (!result.ok && haveCert && result.code === grpc.status.UNAUTHENTICATED && opts.token !== undefined) {
      logger.warn('renewal with the current certificate was refused; retrying with the join token', { error: result.message });
      result = await request(connection(false), csr, opts.ttlSeconds ?? 0);
    }
    if (!result.ok) throw new WorkloadIdentityError(`CA refused the certificate request (${grpc.status[result.code] ?? result.code}): ${result.message}`);
    const certs = parseCertificates(result.certChain.join('\n'), 'CA response');
    const leaf = certs[0]!;
    if (!spiffeIdsOf(leaf).includes(opts.identity)) throw new WorkloadIdentityError(`CA issued a certificate for ${spiffeIdsOf(leaf).join(', ')}, not ${opts.identity}`);
    if (!toNodeCert(leaf).checkPrivateKey(key.privateKey)) throw new WorkloadIdentityError('CA issued a certificate for a different key');
    const roots = certs.slice(1).filter(isSelfSigned);
    const chain = [leaf, ...certs.slice(1).filter((c) => !isSelfSigned(c))];
    return {
      certChainPem: chain.map(certPem).join(''),
      keyPem: privateKeyPem(key),
      rootsPem: roots.length > 0 ? roots.map(certPem).join('') : opts.caTrustPem,
      spiffeId: opts.identity,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
    };
  };

  const attempt = (): Promise<WorkloadCredentials> => {
    if (inflight) return inflight;
    // inflight is cleared first thing in both branches: listeners and ready() waiters may start
    // the next attempt synchronously, and must not be handed this finished one.
    inflight = once().then(
      (fresh) => {
        inflight = undefined;
        creds = fresh;
        failures = 0;
        const lifetime = fresh.notAfter.getTime() - fresh.notBefore.getTime();
        schedule(Math.max(0, fresh.notBefore.getTime() + lifetime * rotateAt - clock.now()));
        logger.info('workload certificate obtained', { notAfter: fresh.notAfter.toISOString(), nextRotation: new Date(nextAt ?? 0).toISOString() });
        resolveReady(fresh);
        for (const l of listeners) {
          try {
            l(fresh);
          } catch (err) {
            logger.error('rotation listener failed', { error: (err as Error).message });
          }
        }
        return fresh;
      },
      (err: unknown) => {
        inflight = undefined;
        failures++;
        const base = Math.min(retryMax, retryInitial * 2 ** (failures - 1));
        const delay = Math.round(base * (0.5 + random() * 0.5));
        logger.warn('certificate request failed; retrying', { attempt: failures, retryInMs: delay, error: err instanceof Error ? err.message : String(err) });
        schedule(delay);
        throw err;
      },
    );
    return inflight;
  };

  attempt().catch(() => {});

  return {
    ready: () => readyPromise,
    current() {
      if (!creds) throw new WorkloadIdentityError(`no certificate yet for ${opts.identity}`);
      return creds;
    },
    onRotate(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    rotateNow: () => attempt(),
    nextAttemptAt: () => nextAt,
    close() {
      closed = true;
      timer?.cancel();
      timer = undefined;
      nextAt = undefined;
      if (!creds) rejectReady(new WorkloadIdentityError(`closed before a certificate was obtained for ${opts.identity}`));
    },
  };
}

/** A CredentialSource that never rotates (certs from files or the offline tooling). */
export function staticCredentials(creds: WorkloadCredentials): CredentialSource {
  return { current: () => creds, onRotate: () => () => {} };
}
