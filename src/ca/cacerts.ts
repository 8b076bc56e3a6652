import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Problem } from '../shared/errors.js';
import { ValidationError } from '../shared/errors.js';
import { CaMaterialError, FileExistsError } from './errors.js';
import type { KeyPair } from './keys.js';
import { keyPairFromPem, x509 } from './keys.js';
import type { Signer } from './pki.js';
import { basicConstraintsOf, certPem, clusterOf, isSignedBy, keyUsagesOf, parseCertificates, toNodeCert, trustDomainOf } from './pki.js';

/** Istio's plug-in CA file names. */
export const CACERTS_FILES = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  certChain: 'cert-chain.pem',
  rootCert: 'root-cert.pem',
} as const;

/** A validated signing CA: what the online CA and `ca workload` sign with. */
export interface CaMaterial {
  signer: Signer;
  /** Certificates sent after a leaf: the signing cert, then any further intermediates; never the root. */
  chain: x509.X509Certificate[];
  /** Trust anchors (root-cert.pem may hold several during a root rotation). */
  roots: x509.X509Certificate[];
  /** From the signing cert's `spiffe://<td>` SAN, when it has one. */
  trustDomain?: string;
  /** From the signing cert's subject (L=), when made by `ca intermediate`. */
  cluster?: string;
}

/** PEM of the trust anchors. */
export function rootsPem(material: CaMaterial): string {
  return material.roots.map(certPem).join('');
}

function sameCert(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

/**
 * Checks that a signing cert, key, chain and roots fit together: key matches cert, cert is a CA
 * allowed to sign certificates, each chain link is signed by the next, the top is signed by a
 * root, nothing has expired. Returns every problem found, each naming its file.
 */
export async function validateCaMaterial(
  m: CaMaterial,
  nowMs: number,
  files: { caCert: string; caKey: string; certChain: string; rootCert: string } = CACERTS_FILES,
): Promise<Problem[]> {
  const problems: Problem[] = [];
  const signerCert = m.signer.cert;
  if (!toNodeCert(signerCert).checkPrivateKey(m.signer.key.privateKey)) {
    problems.push({ file: files.caKey, message: `private key does not match the certificate in ${files.caCert}` });
  }
  const bc = basicConstraintsOf(signerCert);
  if (!bc.ca) problems.push({ file: files.caCert, message: 'not a CA certificate (basicConstraints CA:true missing)' });
  if (!keyUsagesOf(signerCert).includes('keyCertSign')) problems.push({ file: files.caCert, message: 'key usage does not allow keyCertSign' });
  for (const [file, cert] of [[files.caCert, signerCert], ...m.roots.map((r) => [files.rootCert, r] as const)] as const) {
    if (cert.notAfter.getTime() <= nowMs) problems.push({ file, message: `certificate ${cert.subject} expired at ${cert.notAfter.toISOString()}` });
    if (cert.notBefore.getTime() > nowMs + 60_000) problems.push({ file, message: `certificate ${cert.subject} is not valid before ${cert.notBefore.toISOString()}` });
  }
  for (const root of m.roots) {
    if (!basicConstraintsOf(root).ca) problems.push({ file: files.rootCert, message: `${root.subject} is not a CA certificate` });
  }
  if (!sameCert(m.chain[0] ?? signerCert, signerCert)) {
    problems.push({ file: files.certChain, message: `first certificate must be the one in ${files.caCert}` });
  }
  for (let i = 0; i + 1 < m.chain.length; i++) {
    if (!(await isSignedBy(m.chain[i]!, m.chain[i + 1]!))) {
      problems.push({ file: files.certChain, message: `certificate ${i + 1} (${m.chain[i]!.subject}) is not signed by certificate ${i + 2} (${m.chain[i + 1]!.subject})` });
    }
  }
  // A chain file may end with its own copy of the root; that copy must be one of root-cert.pem's.
  const selfSigned = (c: x509.X509Certificate) => c.subject === c.issuer;
  const strayRoots = m.chain.slice(1).filter((c) => selfSigned(c) && !m.roots.some((r) => sameCert(r, c)));
  for (const stray of strayRoots) {
    problems.push({ file: files.certChain, message: `ends with root ${describeKey(stray)}, which is not the root in ${files.rootCert} (${m.roots.map(describeKey).join('; ')})` });
  }
  const issued = m.chain.filter((c, i) => i === 0 || !selfSigned(c));
  const top = issued[issued.length - 1] ?? signerCert;
  let anchored = false;
  for (const root of m.roots) if (sameCert(top, root) || (await isSignedBy(top, root))) anchored = true;
  if (!anchored) {
    problems.push({
      file: sameCert(top, signerCert) ? files.caCert : files.certChain,
      message: `${top.subject} is not signed by the root in ${files.rootCert} (${m.roots.map(describeKey).join('; ')}); its issuer is ${top.issuer}${akiOf(top) ? ` with key id ${akiOf(top)}` : ''}`,
    });
  }
  return problems;
}

function describeKey(c: x509.X509Certificate): string {
  const ski = c.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  return ski ? `${c.subject} with key id ${ski}` : c.subject;
}

function akiOf(c: x509.X509Certificate): string | undefined {
  return c.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
}

function readFile(dir: string, name: string, problems: Problem[]): string | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) {
    problems.push({ file: path, message: 'missing' });
    return undefined;
  }
  return readFileSync(path, 'utf8');
}

/** Builds CaMaterial from PEM texts without validating it. */
export async function caMaterialFromPem(pem: { caCert: string; caKey: string; rootCert: string; certChain?: string }, names = CACERTS_FILES): Promise<CaMaterial> {
  const cert = parseCertificates(pem.caCert, names.caCert)[0]!;
  const key: KeyPair = await keyPairFromPem(pem.caKey, names.caKey);
  const roots = parseCertificates(pem.rootCert, names.rootCert);
  let chain = pem.certChain ? parseCertificates(pem.certChain, names.certChain) : [cert];
  // cert-chain.pem conventionally ends with the root; the wire chain carries it once, at the end.
  chain = chain.filter((c, i) => i === 0 || !roots.some((r) => sameCert(r, c)));
  const trustDomain = trustDomainOf(cert);
  const cluster = clusterOf(cert);
  return { signer: { cert, key }, chain, roots, ...(trustDomain ? { trustDomain } : {}), ...(cluster ? { cluster } : {}) };
}

/** Loads and validates a cacerts dir; throws ValidationError listing every problem with its file. */
export async function loadCacerts(dir: string, nowMs: number): Promise<CaMaterial> {
  const problems: Problem[] = [];
  const caCert = readFile(dir, CACERTS_FILES.caCert, problems);
  const caKey = readFile(dir, CACERTS_FILES.caKey, problems);
  const rootCert = readFile(dir, CACERTS_FILES.rootCert, problems);
  const chainPath = join(dir, CACERTS_FILES.certChain);
  const certChain = existsSync(chainPath) ? readFileSync(chainPath, 'utf8') : undefined;
  if (caCert === undefined || caKey === undefined || rootCert === undefined) throw new ValidationError(problems);
  const names = {
    caCert: join(dir, CACERTS_FILES.caCert),
    caKey: join(dir, CACERTS_FILES.caKey),
    certChain: chainPath,
    rootCert: join(dir, CACERTS_FILES.rootCert),
  };
  let material: CaMaterial;
  try {
    material = await caMaterialFromPem({ caCert, caKey, rootCert, ...(certChain !== undefined ? { certChain } : {}) }, names as typeof CACERTS_FILES);
  } catch (err) {
    if (err instanceof CaMaterialError) throw new ValidationError([{ message: err.message }], { cause: err });
    throw err;
  }
  const found = await validateCaMaterial(material, nowMs, names);
  if (found.length > 0) throw new ValidationError(found);
  return material;
}

/** One file to write: private keys get mode 0600. */
export interface OutputFile {
  name: string;
  content: string;
  secret?: boolean;
}

/** Writes files into dir (created if needed); refuses to overwrite any existing one unless force. */
export function writeFiles(dir: string, files: readonly OutputFile[], force: boolean): string[] {
  if (!force) {
    for (const f of files) {
      const path = join(dir, f.name);
      if (existsSync(path)) throw new FileExistsError(path);
    }
  }
  mkdirSync(dir, { recursive: true });
  return files.map((f) => {
    const path = join(dir, f.name);
    writeFileSync(path, f.content, { mode: f.secret ? 0o600 : 0o644 });
    // writeFileSync keeps the mode of a file it overwrites; a key must end up private regardless.
    if (f.secret) chmodSync(path, 0o600);
    return path;
  });
}
