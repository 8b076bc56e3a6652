import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../shared/errors.js';
import type { CaMaterial } from './cacerts.js';
import { CACERTS_FILES, rootsPem, writeFiles } from './cacerts.js';
import { CaMaterialError } from './errors.js';
import type { KeyType } from './keys.js';
import { generateKeyPair, keyPairFromPem, privateKeyPem } from './keys.js';
import {
  certPem,
  createIntermediateCertificate,
  createRootCertificate,
  isClusterName,
  issueLeafCertificate,
  parseCertificates,
  trustDomainOf,
} from './pki.js';
import { isTrustDomain, parseSpiffeId } from './spiffe.js';

const DAY = 86400;

/** A root CA in PEM form, as `ca root` writes it. */
export interface RootCaPem {
  certPem: string;
  keyPem: string;
}

/** Istio plug-in CA files in PEM form. */
export interface CacertsPem {
  caCert: string;
  caKey: string;
  certChain: string;
  rootCert: string;
}

/** Makes a self-signed mesh root (default EC P-256, 10 years). */
export async function generateRootCa(opts: { trustDomain?: string; days?: number; keyType?: KeyType; nowMs?: number } = {}): Promise<RootCaPem> {
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  if (!isTrustDomain(trustDomain)) throw new ValidationError([{ path: '--trust-domain', message: `"${trustDomain}" is not a valid trust domain` }]);
  const key = await generateKeyPair(opts.keyType ?? 'ec-p256');
  const cert = await createRootCertificate({ key, trustDomain, nowMs: opts.nowMs ?? Date.now(), validitySeconds: (opts.days ?? 3650) * DAY });
  return { certPem: certPem(cert), keyPem: privateKeyPem(key) };
}

/** Writes root-cert.pem and root-key.pem (0600); refuses to overwrite unless force. */
export function writeRootCa(dir: string, root: RootCaPem, force = false): string[] {
  return writeFiles(dir, [{ name: 'root-cert.pem', content: root.certPem }, { name: 'root-key.pem', content: root.keyPem, secret: true }], force);
}

/** Reads a dir written by `ca root`. */
export function readRootCa(dir: string): RootCaPem {
  const files = ['root-cert.pem', 'root-key.pem'].map((n) => join(dir, n));
  for (const f of files) if (!existsSync(f)) throw new CaMaterialError(`${f}: missing (make a root with "crossmesh ca root --out ${dir}")`);
  return { certPem: readFileSync(files[0]!, 'utf8'), keyPem: readFileSync(files[1]!, 'utf8') };
}

/** Makes a cluster intermediate signed by the root: the four Istio plug-in files. */
export async function generateIntermediateCa(opts: { root: RootCaPem; cluster: string; days?: number; keyType?: KeyType; nowMs?: number }): Promise<CacertsPem> {
  if (!isClusterName(opts.cluster)) {
    throw new ValidationError([{ path: '--cluster', message: `"${opts.cluster}" must be a DNS label (lower case letters, digits, '-')` }]);
  }
  const rootCert = parseCertificates(opts.root.certPem, 'root-cert.pem')[0]!;
  const rootKey = await keyPairFromPem(opts.root.keyPem, 'root-key.pem');
  const key = await generateKeyPair(opts.keyType ?? 'ec-p256');
  const cert = await createIntermediateCertificate({
    key,
    issuer: { cert: rootCert, key: rootKey },
    cluster: opts.cluster,
    trustDomain: trustDomainOf(rootCert) ?? 'cluster.local',
    nowMs: opts.nowMs ?? Date.now(),
    validitySeconds: (opts.days ?? 730) * DAY,
  });
  const caCert = certPem(cert);
  const root = certPem(rootCert);
  return { caCert, caKey: privateKeyPem(key), certChain: caCert + root, rootCert: root };
}

/** Writes ca-cert.pem, ca-key.pem (0600), cert-chain.pem, root-cert.pem. */
export function writeCacerts(dir: string, pem: CacertsPem, force = false): string[] {
  return writeFiles(
    dir,
    [
      { name: CACERTS_FILES.caCert, content: pem.caCert },
      { name: CACERTS_FILES.caKey, content: pem.caKey, secret: true },
      { name: CACERTS_FILES.certChain, content: pem.certChain },
      { name: CACERTS_FILES.rootCert, content: pem.rootCert },
    ],
    force,
  );
}

/** A workload's credentials in PEM form. */
export interface WorkloadCertPem {
  /** The leaf alone. */
  certPem: string;
  keyPem: string;
  /** Leaf then intermediates: what a TLS endpoint presents. */
  certChainPem: string;
  rootCertPem: string;
}

/** Issues a workload certificate offline from a CA (for tests, VMs, debugging). */
export async function generateWorkloadCert(opts: { material: CaMaterial; spiffeId: string; ttlSeconds?: number; keyType?: KeyType; nowMs?: number }): Promise<WorkloadCertPem> {
  const parsed = parseSpiffeId(opts.spiffeId);
  if (!parsed.ok) throw new ValidationError([{ path: '--spiffe', message: parsed.message }]);
  if (opts.material.trustDomain && parsed.id.trustDomain !== opts.material.trustDomain) {
    throw new ValidationError([{ path: '--spiffe', message: `trust domain "${parsed.id.trustDomain}" differs from the CA's "${opts.material.trustDomain}"` }]);
  }
  const key = await generateKeyPair(opts.keyType ?? 'ec-p256');
  const leaf = await issueLeafCertificate({
    publicKey: key.cryptoKeys.publicKey,
    issuer: opts.material.signer,
    spiffeId: opts.spiffeId,
    nowMs: opts.nowMs ?? Date.now(),
    validitySeconds: opts.ttlSeconds ?? DAY,
  });
  const leafPem = certPem(leaf);
  return {
    certPem: leafPem,
    keyPem: privateKeyPem(key),
    certChainPem: leafPem + opts.material.chain.map(certPem).join(''),
    rootCertPem: rootsPem(opts.material),
  };
}

/** Writes cert.pem, key.pem (0600), cert-chain.pem, root-cert.pem. */
export function writeWorkloadCert(dir: string, pem: WorkloadCertPem, force = false): string[] {
  return writeFiles(
    dir,
    [
      { name: 'cert.pem', content: pem.certPem },
      { name: 'key.pem', content: pem.keyPem, secret: true },
      { name: 'cert-chain.pem', content: pem.certChainPem },
      { name: 'root-cert.pem', content: pem.rootCertPem },
    ],
    force,
  );
}

/** Lists the .pem files in a dir (for inspect). */
export function pemFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.pem') || n.endsWith('.crt'))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

/** True when dir holds Istio plug-in CA files. */
export function isCacertsDir(dir: string): boolean {
  return existsSync(join(dir, CACERTS_FILES.caCert)) && existsSync(join(dir, CACERTS_FILES.rootCert));
}
