import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { silentLogger } from '../shared/log.js';
import type { CertificateAuthority } from './authority.js';
import { x509 } from './keys.js';
import type { RejectionReason } from './metrics.js';
import { basicConstraintsOf, spiffeIdsOf } from './pki.js';
import type { IstioCertificateRequest, IstioCertificateResponse } from './proto.js';
import { istioCertificateService } from './proto.js';
import { parseSpiffeId } from './spiffe.js';

/** What the transport tells us about a caller. */
export interface CallerCredentials {
  /** From gRPC metadata `authorization: Bearer <token>`. */
  bearerToken?: string;
  /** DER of the client certificate, present only when the TLS layer verified it against the mesh roots. */
  peerCertificateDer?: Buffer;
}

/** Who the caller is: the SPIFFE IDs it may request certificates for, or why it is refused. */
export type Authentication = { ok: true; identities: string[]; methods: string[] } | { ok: false; message: string };

/** Decides which identities a caller is entitled to. May be async; must not throw for bad credentials. */
export interface Authenticator {
  authenticate(creds: CallerCredentials): Promise<Authentication>;
}

/**
 * The universal-mode authenticator: a join token made by this CA entitles to its identity; a
 * still-valid mesh client certificate (verified by TLS against the mesh roots) entitles to exactly
 * the SPIFFE ID in it (renewal). A bad token is refused even when a certificate is also presented.
 */
export function createMeshAuthenticator(ca: CertificateAuthority, opts: { clock?: Clock } = {}): Authenticator {
  const clock = opts.clock ?? systemClock;
  return {
    async authenticate(creds) {
      const identities: string[] = [];
      const methods: string[] = [];
      if (creds.bearerToken !== undefined) {
        const v = ca.verifyJoinToken(creds.bearerToken);
        if (!v.ok) return { ok: false, message: v.message };
        identities.push(v.claims.sub);
        methods.push('join-token');
      }
      if (creds.peerCertificateDer !== undefined) {
        const cert = new x509.X509Certificate(creds.peerCertificateDer);
        const now = clock.now();
        const ids = spiffeIdsOf(cert);
        const id = ids.length === 1 ? parseSpiffeId(ids[0]!) : undefined;
        if (basicConstraintsOf(cert).ca) return { ok: false, message: 'client certificate is a CA certificate' };
        if (cert.notAfter.getTime() <= now) return { ok: false, message: `client certificate expired at ${cert.notAfter.toISOString()}` };
        if (!id?.ok) return { ok: false, message: 'client certificate carries no single workload SPIFFE ID' };
        if (id.id.trustDomain !== ca.trustDomain) return { ok: false, message: `client certificate is for trust domain "${id.id.trustDomain}", not "${ca.trustDomain}"` };
        identities.push(id.id.uri);
        methods.push('client-certificate');
      }
      if (methods.length === 0) {
        return { ok: false, message: 'no credentials: send "authorization: Bearer <join token>" or present a valid mesh client certificate' };
      }
      return { ok: true, identities, methods };
    },
  };
}

const statusFor: Record<RejectionReason, grpc.status> = {
  unauthenticated: grpc.status.UNAUTHENTICATED,
  'malformed-csr': grpc.status.INVALID_ARGUMENT,
  'csr-requests-ca': grpc.status.INVALID_ARGUMENT,
  'invalid-identity': grpc.status.INVALID_ARGUMENT,
  'invalid-ttl': grpc.status.INVALID_ARGUMENT,
  'ttl-exceeds-max': grpc.status.INVALID_ARGUMENT,
  'identity-mismatch': grpc.status.PERMISSION_DENIED,
  internal: grpc.status.INTERNAL,
};

/** gRPC status the service answers a rejection reason with. */
export function grpcStatusFor(reason: RejectionReason): grpc.status {
  return statusFor[reason];
}

function bearer(metadata: grpc.Metadata): string | undefined {
  const v = metadata.get('authorization')[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(v.trim());
  return m ? m[1] : v.trim();
}

/**
 * Adds istio.v1.auth.IstioCertificateService/CreateCertificate to a grpc.Server. For renewal by
 * certificate the server must request (not require) client certs verified against the mesh
 * roots — use createCaServerCredentials.
 */
export function addCaService(server: grpc.Server, ca: CertificateAuthority, authenticator: Authenticator = createMeshAuthenticator(ca), opts: { logger?: Logger } = {}): void {
  const logger = (opts.logger ?? silentLogger).child({ component: 'ca-service' });
  const handler: grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse> = (call, callback) => {
    const peer = call.getPeer();
    const fail = (reason: RejectionReason, message: string) => {
      callback({ code: statusFor[reason], details: message } as grpc.ServiceError);
    };
    void (async () => {
      const auth = call.getAuthContext();
      const token = bearer(call.metadata);
      const der = auth.sslPeerCertificate?.raw;
      const who = await authenticator.authenticate({ ...(token !== undefined ? { bearerToken: token } : {}), ...(der ? { peerCertificateDer: der } : {}) });
      if (!who.ok) {
        ca.metrics.requested();
        ca.metrics.rejected('unauthenticated');
        logger.warn('CSR rejected', { reason: 'unauthenticated', peer, error: who.message });
        return fail('unauthenticated', `unauthenticated: ${who.message}`);
      }
      const ttl = Number(call.request.validity_duration ?? 0);
      const result = await ca.sign(call.request.csr ?? '', { identity: who.identities, ttlSeconds: ttl });
      if (!result.ok) {
        logger.warn('CSR rejected', { reason: result.reason, peer, caller: who.identities, via: who.methods, error: result.message });
        return fail(result.reason, result.message);
      }
      logger.info('certificate issued', { spiffeId: result.spiffeId, peer, via: who.methods, notAfter: result.notAfter.toISOString() });
      callback(null, { cert_chain: result.certChain });
    })().catch((err: unknown) => {
      ca.metrics.rejected('internal');
      logger.error('CSR handling failed', { peer, error: err instanceof Error ? err.message : String(err) });
      fail('internal', 'internal error while signing');
    });
  };
  server.addService(istioCertificateService(), { CreateCertificate: handler });
}

/**
 * Server credentials for the CA port (15012 style): TLS with the given cert, asking clients for a
 * certificate but not requiring one (a joining proxy has only a token). A presented certificate is
 * verified against `rootsPem`; grpc-js exposes it to handlers only when it verified. update()
 * swaps cert or roots without a restart.
 */
export class CaServerCredentials extends grpc.ServerCredentials {
  constructor(opts: { certChainPem: string; keyPem: string; rootsPem: string }) {
    super({ requestCert: true, rejectUnauthorized: false }, { cert: opts.certChainPem, key: opts.keyPem, ca: opts.rootsPem });
  }
  update(opts: { certChainPem: string; keyPem: string; rootsPem: string }): void {
    this.updateSecureContextOptions({ cert: opts.certChainPem, key: opts.keyPem, ca: opts.rootsPem });
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Issues the CA endpoint's certificate from the CA itself and wraps it as server credentials. */
export async function createCaServerCredentials(ca: CertificateAuthority, opts: { dnsNames?: string[]; ipAddresses?: string[] } = {}): Promise<CaServerCredentials> {
  const { certChainPem, keyPem } = await ca.issueServerCertificate(opts);
  return new CaServerCredentials({ certChainPem, keyPem, rootsPem: ca.rootsPem() });
}
