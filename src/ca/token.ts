import { createHash, createPublicKey, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { TokenError } from './errors.js';
import { formatSpiffeId } from './spiffe.js';

/**
 * Join tokens: compact JWS (RFC 7515) signed with the cluster CA's private key — ES256/ES384 for
 * EC keys, RS256 for RSA — so the CA verifies them with the key it already holds and no extra
 * secret has to be distributed. A token is bound to trust domain, namespace, service account and
 * cluster, and expires. Tokens are bearer credentials: reusable until `exp`.
 */
export interface JoinTokenClaims {
  /** Issuer: `crossmesh/<cluster>`. */
  iss: string;
  /** The SPIFFE ID the holder may obtain a certificate for. */
  sub: string;
  aud: 'crossmesh-ca';
  td: string;
  ns: string;
  sa: string;
  cluster: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
  jti: string;
}

/** Why a token was refused (all map to gRPC UNAUTHENTICATED). */
export type TokenRejection = 'malformed' | 'bad-signature' | 'unknown-key' | 'expired' | 'not-yet-valid' | 'wrong-audience' | 'wrong-trust-domain' | 'wrong-cluster';

export type TokenVerification = { ok: true; claims: JoinTokenClaims } | { ok: false; reason: TokenRejection; message: string };

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function algFor(key: KeyObject): { alg: string; hash: string; dsaEncoding?: 'ieee-p1363' } {
  if (key.asymmetricKeyType === 'rsa') return { alg: 'RS256', hash: 'sha256' };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { alg: 'ES256', hash: 'sha256', dsaEncoding: 'ieee-p1363' };
    if (curve === 'secp384r1') return { alg: 'ES384', hash: 'sha384', dsaEncoding: 'ieee-p1363' };
  }
  throw new TokenError(`cannot sign join tokens with a ${key.asymmetricKeyType ?? 'unknown'} key; use EC P-256/P-384 or RSA`);
}

/** Key id: first 16 bytes of SHA-256 over the public key's SPKI DER, base64url. */
export function tokenKeyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return b64url(createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest().subarray(0, 16));
}

/** Creates a signed join token; throws TokenError for an unusable key or identity. */
export function createJoinToken(opts: {
  signingKey: KeyObject;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  cluster: string;
  ttlSeconds: number;
  nowMs: number;
}): string {
  let sub: string;
  try {
    sub = formatSpiffeId(opts.trustDomain, opts.namespace, opts.serviceAccount);
  } catch (err) {
    throw new TokenError((err as Error).message, { cause: err });
  }
  if (!(opts.ttlSeconds > 0)) throw new TokenError(`ttl must be positive (got ${opts.ttlSeconds})`);
  const { alg, hash, dsaEncoding } = algFor(opts.signingKey);
  const iat = Math.floor(opts.nowMs / 1000);
  const claims: JoinTokenClaims = {
    iss: `crossmesh/${opts.cluster}`,
    sub,
    aud: 'crossmesh-ca',
    td: opts.trustDomain,
    ns: opts.namespace,
    sa: opts.serviceAccount,
    cluster: opts.cluster,
    iat,
    exp: iat + Math.ceil(opts.ttlSeconds),
    jti: b64url(randomBytes(12)),
  };
  const input = `${b64url(JSON.stringify({ alg, typ: 'JWT', kid: tokenKeyId(opts.signingKey) }))}.${b64url(JSON.stringify(claims))}`;
  const sig = nodeSign(hash, Buffer.from(input), dsaEncoding ? { key: opts.signingKey, dsaEncoding } : opts.signingKey);
  return `${input}.${b64url(sig)}`;
}

function parseJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function isClaims(v: unknown): v is JoinTokenClaims {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return ['iss', 'sub', 'aud', 'td', 'ns', 'sa', 'cluster', 'jti'].every((k) => typeof c[k] === 'string') && typeof c.iat === 'number' && typeof c.exp === 'number';
}

/**
 * Verifies a join token against the CA's verification keys. The algorithm comes from the key, never
 * from the token header, so a token cannot pick a weaker scheme. Rejections are values.
 */
export function verifyJoinToken(
  token: string,
  opts: { keys: readonly KeyObject[]; trustDomain: string; cluster?: string; nowMs: number; clockSkewSeconds?: number },
): TokenVerification {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return { ok: false, reason: 'malformed', message: 'join token is not a compact JWS (three base64url parts)' };
  const header = parseJson(parts[0]!) as { alg?: unknown; kid?: unknown } | undefined;
  const claims = parseJson(parts[1]!);
  if (!header || typeof header.kid !== 'string' || !isClaims(claims)) return { ok: false, reason: 'malformed', message: 'join token header or claims are not valid JSON of the expected shape' };
  const key = opts.keys.find((k) => tokenKeyId(k) === header.kid);
  if (!key) return { ok: false, reason: 'unknown-key', message: `join token was signed by a key this CA does not know (kid ${header.kid}); it may be for another cluster` };
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const { alg, hash, dsaEncoding } = algFor(pub);
  if (header.alg !== alg) return { ok: false, reason: 'bad-signature', message: `join token alg ${String(header.alg)} does not match the signing key (${alg})` };
  const good = nodeVerify(hash, Buffer.from(`${parts[0]}.${parts[1]}`), dsaEncoding ? { key: pub, dsaEncoding } : pub, Buffer.from(parts[2]!, 'base64url'));
  if (!good) return { ok: false, reason: 'bad-signature', message: 'join token signature is invalid (forged or altered)' };
  const now = Math.floor(opts.nowMs / 1000);
  const skew = opts.clockSkewSeconds ?? 30;
  if (claims.exp <= now) return { ok: false, reason: 'expired', message: `join token for ${claims.sub} expired at ${new Date(claims.exp * 1000).toISOString()}` };
  if (claims.iat > now + skew) return { ok: false, reason: 'not-yet-valid', message: `join token for ${claims.sub} is issued in the future (${new Date(claims.iat * 1000).toISOString()})` };
  if (claims.aud !== 'crossmesh-ca') return { ok: false, reason: 'wrong-audience', message: `join token audience "${claims.aud}" is not crossmesh-ca` };
  let expectedSub: string;
  try {
    expectedSub = formatSpiffeId(claims.td, claims.ns, claims.sa);
  } catch {
    return { ok: false, reason: 'malformed', message: `join token names an invalid identity (${claims.td}/${claims.ns}/${claims.sa})` };
  }
  if (claims.td !== opts.trustDomain || expectedSub !== claims.sub) {
    return { ok: false, reason: 'wrong-trust-domain', message: `join token is for trust domain "${claims.td}", this CA serves "${opts.trustDomain}"` };
  }
  if (opts.cluster !== undefined && claims.cluster !== opts.cluster) {
    return { ok: false, reason: 'wrong-cluster', message: `join token is for cluster "${claims.cluster}", this CA serves "${opts.cluster}"` };
  }
  return { ok: true, claims };
}
