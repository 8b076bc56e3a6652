import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { silentLogger } from '../shared/log.js';
import { ValidationError } from '../shared/errors.js';
import type { CaMaterial } from './cacerts.js';
import { loadCacerts, validateCaMaterial } from './cacerts.js';
import { formatDuration } from './duration.js';
import { CaMaterialError } from './errors.js';
import { generateKeyPair, privateKeyPem, x509 } from './keys.js';
import type { CaMetrics, RejectionReason } from './metrics.js';
import { createCaMetrics } from './metrics.js';
import { certPem, createRootCertificate, issueLeafCertificate } from './pki.js';
import { isTrustDomain, parseSpiffeId } from './spiffe.js';
import type { TokenVerification } from './token.js';
import { createJoinToken, verifyJoinToken } from './token.js';

/** Options of createCertificateAuthority; cacertsDir and material are alternatives. */
export interface CertificateAuthorityOptions {
  /** Istio plug-in CA dir (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem). */
  cacertsDir?: string;
  /** Already-loaded material (validated again here). */
  material?: CaMaterial;
  /** Default: the signing cert's trust domain, else cluster.local. */
  trustDomain?: string;
  /** Cluster this CA serves; join tokens for other clusters are refused. Default: from the intermediate's subject. */
  cluster?: string;
  /** Longest workload certificate the CA signs. Default 90 days, as Istio. */
  maxTtlSeconds?: number;
  /** TTL when a request asks for none. Default 24 h. */
  defaultTtlSeconds?: number;
  /** What to do with a request above maxTtlSeconds: 'reject' (default, as Istio) or 'cap'. */
  ttlPolicy?: 'reject' | 'cap';
  /** Extra public keys accepted for join tokens (tokens made with `token create --signing-key`). */
  tokenKeys?: readonly KeyObject[];
  clock?: Clock;
  logger?: Logger;
  metrics?: CaMetrics;
}

/** A refused signing request, as a value; `reason` maps to a gRPC status in the service. */
export interface SignRejection {
  ok: false;
  reason: RejectionReason;
  message: string;
}

/** A signed certificate: chain is leaf, intermediate(s), root(s) last, each one PEM. */
export interface SignSuccess {
  ok: true;
  certChain: string[];
  spiffeId: string;
  notAfter: Date;
}

/** The online CA the control plane hosts. All methods are safe to call concurrently. */
export interface CertificateAuthority {
  readonly trustDomain: string;
  readonly cluster: string | undefined;
  /** True when no cacerts were given and the CA made its own root (no cross-cluster trust). */
  readonly selfSigned: boolean;
  readonly maxTtlSeconds: number;
  readonly defaultTtlSeconds: number;
  readonly metrics: CaMetrics;
  readonly material: CaMaterial;
  /** PEM of the trust anchors workloads should trust. */
  rootsPem(): string;
  /**
   * Signs a CSR for one of `identity` (the SPIFFE IDs the caller is entitled to). Never issues a CA
   * certificate, never beyond maxTtlSeconds; refusals come back as values, counted and logged.
   */
  sign(csrPem: string, opts: { identity: string | readonly string[]; ttlSeconds?: number }): Promise<SignSuccess | SignRejection>;
  /** Makes a join token signed with the CA key. */
  createJoinToken(opts: { namespace: string; serviceAccount: string; ttlSeconds: number }): string;
  /** Verifies a join token against the CA key and tokenKeys. */
  verifyJoinToken(token: string): TokenVerification;
  /** Public keys join tokens are verified with. */
  readonly tokenKeys: readonly KeyObject[];
  /**
   * Swaps in new CA material (re-read from cacertsDir when none is given) after validating it;
   * on failure the current material stays. Certificates issued afterwards chain to the new one.
   */
  reload(material?: CaMaterial): Promise<void>;
  /** A certificate for the CA's own gRPC endpoint (DNS/IP SANs plus a SPIFFE ID). */
  issueServerCertificate(opts: { dnsNames?: string[]; ipAddresses?: string[]; spiffeId?: string; ttlSeconds?: number }): Promise<{ certChainPem: string; keyPem: string }>;
}

const DAY = 86400;

function rejectWith(metrics: CaMetrics, logger: Logger, reason: RejectionReason, message: string): SignRejection {
  metrics.rejected(reason);
  logger.warn('CSR rejected', { reason, error: message });
  return { ok: false, reason, message };
}

function requestsCa(csr: x509.Pkcs10CertificateRequest): boolean {
  for (const ext of csr.extensions) {
    if (ext instanceof x509.BasicConstraintsExtension && ext.ca) return true;
    if (ext instanceof x509.KeyUsagesExtension && (ext.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) return true;
  }
  return false;
}

function keyProblem(csr: x509.Pkcs10CertificateRequest): string | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (err) {
    return `public key is unreadable (${(err as Error).message})`;
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1' || curve === 'secp384r1' ? undefined : `EC curve ${curve ?? '?'} is not allowed (P-256 or P-384)`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `RSA key of ${bits} bits is too small (at least 2048)`;
  }
  return `key type ${key.asymmetricKeyType ?? '?'} is not allowed (EC P-256/P-384 or RSA)`;
}

async function selfSignedMaterial(trustDomain: string, nowMs: number): Promise<CaMaterial> {
  const key = await generateKeyPair('ec-p256');
  const cert = await createRootCertificate({ key, trustDomain, nowMs, validitySeconds: 10 * 365 * DAY, subject: `O=crossmesh, CN=crossmesh self-signed CA ${trustDomain}` });
  return { signer: { cert, key }, chain: [], roots: [cert], trustDomain };
}

interface SigningState {
  material: CaMaterial;
  signer: CaMaterial['signer'];
  rootSet: Set<string>;
  /** PEMs sent after the leaf: intermediates (never a root twice), then the roots, last, as Istio sends them. */
  tail: string[];
  tokenKeys: KeyObject[];
}

function signingState(material: CaMaterial, extraTokenKeys: readonly KeyObject[]): SigningState {
  const rootSet = new Set(material.roots.map((r) => certPem(r)));
  const tail = [...material.chain.map(certPem).filter((p) => !rootSet.has(p)), ...rootSet];
  const own = createPublicKey(material.signer.key.privateKey);
  const tokenKeys = [own, ...extraTokenKeys.filter((k) => !k.equals(own))].slice(0, 8);
  return { material, signer: material.signer, rootSet, tail, tokenKeys };
}

/** Creates the online CA from a cacerts dir, given material, or (warning loudly) a fresh self-signed root. */
/**
 * The name every control plane's TLS certificate carries (as istiod's does), so clients that dial an IP
 * address can still verify a name: TLS forbids an IP address as SNI.
 */
export const CONTROL_PLANE_SERVER_NAME = 'istiod.istio-system.svc';

export async function createCertificateAuthority(opts: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const metrics = opts.metrics ?? createCaMetrics();
  const maxTtlSeconds = opts.maxTtlSeconds ?? 90 * DAY;
  const defaultTtlSeconds = Math.min(opts.defaultTtlSeconds ?? DAY, maxTtlSeconds);
  const ttlPolicy = opts.ttlPolicy ?? 'reject';
  if (!(maxTtlSeconds > 0)) throw new ValidationError([{ path: 'maxTtlSeconds', message: `must be positive (got ${maxTtlSeconds})` }]);

  let material: CaMaterial;
  let selfSigned = false;
  if (opts.cacertsDir !== undefined) {
    material = await loadCacerts(opts.cacertsDir, clock.now());
  } else if (opts.material !== undefined) {
    material = opts.material;
    const problems = await validateCaMaterial(material, clock.now());
    if (problems.length > 0) throw new ValidationError(problems);
  } else {
    const td = opts.trustDomain ?? 'cluster.local';
    material = await selfSignedMaterial(td, clock.now());
    selfSigned = true;
    logger.warn('no cacerts given: using a self-signed root made at startup; workloads of other clusters will NOT be trusted (make a shared root with "crossmesh ca root" and per-cluster intermediates with "crossmesh ca intermediate")', {
      trustDomain: td,
    });
  }
  const trustDomain = opts.trustDomain ?? material.trustDomain ?? 'cluster.local';
  if (!isTrustDomain(trustDomain)) throw new ValidationError([{ path: 'trustDomain', message: `"${trustDomain}" is not a valid trust domain` }]);
  if (material.trustDomain !== undefined && material.trustDomain !== trustDomain) {
    throw new CaMaterialError(`the CA certificate is for trust domain "${material.trustDomain}" but the CA was asked to serve "${trustDomain}"`);
  }
  const cluster = opts.cluster ?? material.cluster;
  let state = signingState(material, opts.tokenKeys ?? []);
  const sign: CertificateAuthority['sign'] = async (csrPem, req) => {
    metrics.requested();
    const log = logger.child({ component: 'ca' });
    let csr: x509.Pkcs10CertificateRequest;
    try {
      if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) throw new Error('no PEM CERTIFICATE REQUEST block');
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      return rejectWith(metrics, log, 'malformed-csr', `malformed CSR: ${(err as Error).message}`);
    }
    let signatureOk = false;
    try {
      signatureOk = await csr.verify();
    } catch {
      signatureOk = false;
    }
    if (!signatureOk) return rejectWith(metrics, log, 'malformed-csr', 'malformed CSR: its signature does not verify with its own public key');
    const badKey = keyProblem(csr);
    if (badKey) return rejectWith(metrics, log, 'malformed-csr', `malformed CSR: ${badKey}`);
    if (requestsCa(csr)) return rejectWith(metrics, log, 'csr-requests-ca', 'CSR asks for a CA certificate (basicConstraints CA:true or keyCertSign); the mesh CA only issues workload certificates');
    const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
    const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
    if (uris.length !== 1) return rejectWith(metrics, log, 'invalid-identity', `CSR must carry exactly one URI SAN with the SPIFFE ID (found ${uris.length})`);
    const requested = uris[0]!;
    const parsed = parseSpiffeId(requested);
    if (!parsed.ok) return rejectWith(metrics, log, 'invalid-identity', `CSR SAN: ${parsed.message}`);
    if (parsed.id.trustDomain !== trustDomain) {
      return rejectWith(metrics, log, 'identity-mismatch', `CSR is for trust domain "${parsed.id.trustDomain}", this CA signs for "${trustDomain}"`);
    }
    const entitled = typeof req.identity === 'string' ? [req.identity] : [...req.identity];
    if (!entitled.includes(requested)) {
      return rejectWith(metrics, log, 'identity-mismatch', `CSR is for ${requested} but the caller is entitled only to ${entitled.join(', ') || '(nothing)'}`);
    }
    let ttl = req.ttlSeconds === undefined || req.ttlSeconds === 0 ? defaultTtlSeconds : req.ttlSeconds;
    if (!Number.isFinite(ttl) || ttl < 0) return rejectWith(metrics, log, 'invalid-ttl', `requested validity ${req.ttlSeconds}s is not a positive number of seconds`);
    if (ttl > maxTtlSeconds) {
      if (ttlPolicy === 'reject') {
        return rejectWith(metrics, log, 'ttl-exceeds-max', `requested validity ${formatDuration(ttl)} exceeds the CA's maximum ${formatDuration(maxTtlSeconds)}`);
      }
      ttl = maxTtlSeconds;
    }
    const { signer, tail } = state; // one consistent snapshot even if a reload happens meanwhile
    const leaf = await issueLeafCertificate({ publicKey: csr.publicKey, issuer: signer, spiffeId: requested, nowMs: clock.now(), validitySeconds: ttl });
    metrics.issued();
    log.info('certificate issued', { spiffeId: requested, notAfter: leaf.notAfter.toISOString(), serial: leaf.serialNumber });
    return { ok: true, certChain: [certPem(leaf), ...tail], spiffeId: requested, notAfter: leaf.notAfter };
  };

  return {
    trustDomain,
    cluster,
    selfSigned,
    maxTtlSeconds,
    defaultTtlSeconds,
    metrics,
    get material() {
      return state.material;
    },
    get tokenKeys() {
      return state.tokenKeys;
    },
    rootsPem: () => [...state.rootSet].join(''),
    sign,
    createJoinToken: (t) =>
      createJoinToken({ signingKey: state.signer.key.privateKey, trustDomain, namespace: t.namespace, serviceAccount: t.serviceAccount, cluster: cluster ?? 'default', ttlSeconds: t.ttlSeconds, nowMs: clock.now() }),
    verifyJoinToken: (token) => verifyJoinToken(token, { keys: state.tokenKeys, trustDomain, ...(cluster !== undefined ? { cluster } : {}), nowMs: clock.now() }),
    async reload(next) {
      const fresh = next ?? (opts.cacertsDir !== undefined ? await loadCacerts(opts.cacertsDir, clock.now()) : undefined);
      if (!fresh) throw new CaMaterialError('reload: this CA was not created from a cacerts dir; pass the new material');
      if (next) {
        const problems = await validateCaMaterial(fresh, clock.now());
        if (problems.length > 0) throw new ValidationError(problems);
      }
      if (fresh.trustDomain !== undefined && fresh.trustDomain !== trustDomain) {
        throw new CaMaterialError(`reload: the new CA certificate is for trust domain "${fresh.trustDomain}", this CA serves "${trustDomain}"`);
      }
      // Tokens signed with the previous key stay valid until they expire.
      state = signingState(fresh, [...(opts.tokenKeys ?? []), ...state.tokenKeys]);
      logger.info('CA material reloaded', { signer: fresh.signer.cert.subject, roots: fresh.roots.map((r) => r.subject) });
    },
    async issueServerCertificate(o) {
      const { signer, tail, rootSet } = state;
      const key = await generateKeyPair('ec-p256');
      const leaf = await issueLeafCertificate({
        publicKey: key.cryptoKeys.publicKey,
        issuer: signer,
        spiffeId: o.spiffeId ?? `spiffe://${trustDomain}/ns/istio-system/sa/crossmesh-control-plane`,
        dnsNames: [...new Set([...(o.dnsNames ?? ['localhost']), CONTROL_PLANE_SERVER_NAME])],
        ipAddresses: o.ipAddresses ?? ['127.0.0.1'],
        nowMs: clock.now(),
        validitySeconds: o.ttlSeconds ?? 365 * DAY,
      });
      return { certChainPem: [certPem(leaf), ...tail.filter((p) => !rootSet.has(p))].join(''), keyPem: privateKeyPem(key) };
    },
  };
}
