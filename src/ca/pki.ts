import { X509Certificate as NodeX509, createHash, randomBytes } from 'node:crypto';
import type { webcrypto } from 'node:crypto';
import type { KeyPair } from './keys.js';
import { x509 } from './keys.js';
import { CaMaterialError } from './errors.js';

/** A CA able to sign: its certificate and private key. */
export interface Signer {
  cert: x509.X509Certificate;
  key: KeyPair;
}

const clusterRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** True for a cluster name we can put in a certificate subject and a token (DNS label). */
export function isClusterName(name: string): boolean {
  return name.length <= 63 && clusterRe.test(name);
}

/** X.509 times have one-second resolution; round down so a fresh cert is valid at once. */
function floorSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40; // positive and a full 16 bytes
  return bytes.toString('hex');
}

function skiOf(cert: x509.X509Certificate): string | undefined {
  return cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
}

async function akiFor(issuer: x509.X509Certificate): Promise<x509.Extension> {
  const keyId = skiOf(issuer);
  return keyId ? new x509.AuthorityKeyIdentifierExtension(keyId) : x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey);
}

/** Subject of the root made by `ca root`. */
export function rootSubject(trustDomain: string): string {
  return `O=crossmesh, CN=crossmesh root CA ${trustDomain}`;
}

/** Subject of a cluster's intermediate: the cluster is both in CN (for people) and L (for code). */
export function intermediateSubject(cluster: string): string {
  return `O=crossmesh, L=${cluster}, CN=crossmesh intermediate CA ${cluster}`;
}

/** A self-signed root: CA:true (critical), keyCertSign+cRLSign, SPIFFE trust-domain URI SAN. */
export async function createRootCertificate(opts: {
  key: KeyPair;
  trustDomain: string;
  nowMs: number;
  validitySeconds: number;
  subject?: string;
}): Promise<x509.X509Certificate> {
  const notBefore = floorSeconds(opts.nowMs);
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: opts.subject ?? rootSubject(opts.trustDomain),
    notBefore,
    notAfter: new Date(notBefore.getTime() + opts.validitySeconds * 1000),
    keys: opts.key.cryptoKeys,
    signingAlgorithm: opts.key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(opts.key.cryptoKeys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${opts.trustDomain}` }]),
    ],
  });
}

/** A cluster intermediate: CA:true pathlen:0 (critical), keyCertSign+cRLSign, subject names the cluster. */
export async function createIntermediateCertificate(opts: {
  key: KeyPair;
  issuer: Signer;
  cluster: string;
  trustDomain: string;
  nowMs: number;
  validitySeconds: number;
}): Promise<x509.X509Certificate> {
  const notBefore = floorSeconds(opts.nowMs);
  const wanted = notBefore.getTime() + opts.validitySeconds * 1000;
  // A CA cert outliving its issuer would only produce chains that stop verifying early.
  const notAfter = new Date(Math.min(wanted, opts.issuer.cert.notAfter.getTime()));
  return x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: intermediateSubject(opts.cluster),
    issuer: opts.issuer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: opts.key.cryptoKeys.publicKey,
    signingKey: opts.issuer.key.cryptoKeys.privateKey,
    signingAlgorithm: opts.issuer.key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(opts.key.cryptoKeys.publicKey),
      await akiFor(opts.issuer.cert),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${opts.trustDomain}` }]),
    ],
  });
}

/**
 * A workload (leaf) certificate: empty subject, critical SAN holding the SPIFFE URI (plus optional
 * DNS/IP names for servers such as the CA itself), CA:false, digitalSignature+keyEncipherment,
 * serverAuth+clientAuth. notAfter never exceeds the issuer's.
 */
export async function issueLeafCertificate(opts: {
  publicKey: x509.PublicKey | webcrypto.CryptoKey;
  issuer: Signer;
  spiffeId: string;
  nowMs: number;
  validitySeconds: number;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}): Promise<x509.X509Certificate> {
  const notBefore = floorSeconds(opts.nowMs);
  const notAfter = new Date(Math.min(notBefore.getTime() + opts.validitySeconds * 1000, opts.issuer.cert.notAfter.getTime()));
  const names: x509.JsonGeneralNames = [{ type: 'url', value: opts.spiffeId }];
  for (const d of opts.dnsNames ?? []) names.push({ type: 'dns', value: d });
  for (const ip of opts.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
  return x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: '',
    issuer: opts.issuer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: opts.publicKey,
    signingKey: opts.issuer.key.cryptoKeys.privateKey,
    signingAlgorithm: opts.issuer.key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      await akiFor(opts.issuer.cert),
      new x509.SubjectAlternativeNameExtension(names, true),
    ],
  });
}

/** PEM of one certificate, newline-terminated. */
export function certPem(cert: x509.X509Certificate): string {
  return cert.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n';
}

/** Splits PEM text into certificates; `source` names the file in errors. Non-certificate blocks are errors. */
export function parseCertificates(pem: string, source: string): x509.X509Certificate[] {
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  if (blocks.length === 0) throw new CaMaterialError(`${source}: no PEM certificate found`);
  return blocks.map((b, i) => {
    if (b[1] !== 'CERTIFICATE') throw new CaMaterialError(`${source}: PEM block ${i + 1} is a ${b[1]}, expected CERTIFICATE`);
    try {
      return new x509.X509Certificate(b[0]);
    } catch (err) {
      throw new CaMaterialError(`${source}: PEM block ${i + 1} is not a valid certificate (${(err as Error).message})`, { cause: err });
    }
  });
}

/** SPIFFE URIs in the certificate's SAN. */
export function spiffeIdsOf(cert: x509.X509Certificate): string[] {
  return subjectAltNames(cert).filter((n) => n.type === 'url' && n.value.startsWith('spiffe://')).map((n) => n.value);
}

/** The trust domain a CA certificate names in its `spiffe://<td>` SAN, if any. */
export function trustDomainOf(cert: x509.X509Certificate): string | undefined {
  return spiffeIdsOf(cert)
    .map((u) => /^spiffe:\/\/([^/]+)\/?$/.exec(u)?.[1])
    .find((t) => t !== undefined);
}

/** All SAN entries as {type, value}. */
export function subjectAltNames(cert: x509.X509Certificate): { type: string; value: string }[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return ext ? ext.names.items.map((n) => ({ type: n.type, value: n.value })) : [];
}

/** Basic constraints as {ca, pathLength}; absent means not a CA. */
export function basicConstraintsOf(cert: x509.X509Certificate): { ca: boolean; pathLength?: number } {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  return bc ? { ca: bc.ca, ...(bc.pathLength !== undefined ? { pathLength: bc.pathLength } : {}) } : { ca: false };
}

const usageNames: [number, string][] = [
  [x509.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [x509.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [x509.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [x509.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [x509.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [x509.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [x509.KeyUsageFlags.cRLSign, 'cRLSign'],
];

/** Key usage names set in the certificate (empty when the extension is absent). */
export function keyUsagesOf(cert: x509.X509Certificate): string[] {
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  return ku ? usageNames.filter(([flag]) => (ku.usages & flag) !== 0).map(([, name]) => name) : [];
}

const ekuNames: Record<string, string> = { [x509.ExtendedKeyUsage.serverAuth]: 'serverAuth', [x509.ExtendedKeyUsage.clientAuth]: 'clientAuth' };

/** Extended key usages, by name where known, else OID. */
export function extKeyUsagesOf(cert: x509.X509Certificate): string[] {
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return eku ? eku.usages.map((u) => ekuNames[String(u)] ?? String(u)) : [];
}

/** Node's view of the same certificate, for issuer checks and key matching. */
export function toNodeCert(cert: x509.X509Certificate): NodeX509 {
  return new NodeX509(Buffer.from(cert.rawData));
}

/** SHA-256 fingerprint as colon-separated hex, the form openssl prints. */
export function fingerprint(cert: x509.X509Certificate): string {
  return createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/** The cluster named by an intermediate made by `ca intermediate` (its L attribute), if any. */
export function clusterOf(cert: x509.X509Certificate): string | undefined {
  return cert.subjectName.getField('L')[0];
}

/** True when `child` names `parent` as issuer and carries a valid signature by parent's key. */
export async function isSignedBy(child: x509.X509Certificate, parent: x509.X509Certificate): Promise<boolean> {
  if (child.issuer !== parent.subject) return false;
  try {
    return await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}
