import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errorMessage, ValidationError } from '../shared/errors.js';
import { CACERTS_FILES, loadCacerts } from './cacerts.js';
import type { x509 } from './keys.js';
import {
  basicConstraintsOf,
  clusterOf,
  extKeyUsagesOf,
  fingerprint,
  isSignedBy,
  keyUsagesOf,
  parseCertificates,
  spiffeIdsOf,
  subjectAltNames,
} from './pki.js';
import { isCacertsDir, pemFilesIn } from './tooling.js';

/** What `ca inspect` says about one certificate. */
export interface CertificateInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  /** valid | expired | not-yet-valid at inspection time. */
  validity: 'valid' | 'expired' | 'not-yet-valid';
  sans: string[];
  spiffeIds: string[];
  isCa: boolean;
  pathLength?: number;
  keyUsages: string[];
  extKeyUsages: string[];
  sha256: string;
  /** Subjects from this cert up its issuers (as far as the inspected files allow); ends with a self-signed root when complete. */
  issuerChain: string[];
  /** True when the issuer chain reached a self-signed certificate with valid signatures all the way. */
  chainComplete: boolean;
}

/** One inspected file. */
export interface FileReport {
  path: string;
  certificates: CertificateInfo[];
  /** Set for files that hold no certificate (a private key) or failed to parse. */
  note?: string;
}

/** One inspected cacerts dir. */
export interface CacertsReport {
  dir: string;
  cluster?: string;
  trustDomain?: string;
  rootSha256: string[];
  /** Validation problems (empty when the dir is usable as a plug-in CA). */
  problems: string[];
}

/** The whole answer of `ca inspect`. */
export interface InspectReport {
  files: FileReport[];
  cacerts: CacertsReport[];
  /** Present when two or more cacerts dirs were given: true when all have a root in common and validate. */
  sharedRoot?: boolean;
}

function describe(cert: x509.X509Certificate, nowMs: number): Omit<CertificateInfo, 'issuerChain' | 'chainComplete'> {
  const bc = basicConstraintsOf(cert);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    validity: cert.notAfter.getTime() <= nowMs ? 'expired' : cert.notBefore.getTime() > nowMs ? 'not-yet-valid' : 'valid',
    sans: subjectAltNames(cert).map((n) => `${n.type === 'url' ? 'URI' : n.type.toUpperCase()}:${n.value}`),
    spiffeIds: spiffeIdsOf(cert),
    isCa: bc.ca,
    ...(bc.pathLength !== undefined ? { pathLength: bc.pathLength } : {}),
    keyUsages: keyUsagesOf(cert),
    extKeyUsages: extKeyUsagesOf(cert),
    sha256: fingerprint(cert),
  };
}

async function issuerChain(cert: x509.X509Certificate, pool: x509.X509Certificate[]): Promise<{ chain: string[]; complete: boolean }> {
  const chain = [cert.subject || '(empty subject)'];
  let current = cert;
  for (let depth = 0; depth < 10; depth++) {
    if (current.subject === current.issuer && (await isSignedBy(current, current))) return { chain, complete: true };
    let parent: x509.X509Certificate | undefined;
    for (const c of pool) if (c !== current && (await isSignedBy(current, c))) parent = c;
    if (!parent) {
      chain.push(`${current.issuer} (not found)`);
      return { chain, complete: false };
    }
    chain.push(parent.subject);
    current = parent;
  }
  return { chain, complete: false };
}

function readCerts(path: string): { certs: x509.X509Certificate[]; note?: string } {
  const text = readFileSync(path, 'utf8');
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    return { certs: [], note: /PRIVATE KEY-----/.test(text) ? 'private key (not shown)' : 'no certificate found' };
  }
  try {
    return { certs: parseCertificates(text, path) };
  } catch (err) {
    return { certs: [], note: errorMessage(err) };
  }
}

/** Inspects files and dirs (dirs: every .pem in them; cacerts dirs are also validated). */
export async function inspectPaths(paths: readonly string[], nowMs = Date.now()): Promise<InspectReport> {
  const files: string[] = [];
  const cacertsDirs: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new ValidationError([{ file: p, message: 'no such file or directory' }]);
    if (statSync(p).isDirectory()) {
      if (isCacertsDir(p)) cacertsDirs.push(p);
      files.push(...pemFilesIn(p));
    } else files.push(p);
  }
  const loaded = files.map((path) => ({ path, ...readCerts(path) }));
  // Siblings complete chains: a cert.pem next to its cert-chain.pem and root-cert.pem.
  const pool = loaded.flatMap((f) => f.certs);
  for (const f of loaded) {
    for (const sib of [CACERTS_FILES.rootCert, CACERTS_FILES.caCert, CACERTS_FILES.certChain]) {
      const sp = join(dirname(f.path), sib);
      if (!files.includes(sp) && existsSync(sp)) pool.push(...readCerts(sp).certs);
    }
  }
  const fileReports: FileReport[] = [];
  for (const f of loaded) {
    const certificates: CertificateInfo[] = [];
    for (const cert of f.certs) {
      const { chain, complete } = await issuerChain(cert, pool);
      certificates.push({ ...describe(cert, nowMs), issuerChain: chain, chainComplete: complete });
    }
    fileReports.push({ path: f.path, certificates, ...(f.note ? { note: f.note } : {}) });
  }
  const cacerts: CacertsReport[] = [];
  for (const dir of cacertsDirs) {
    const roots = readCerts(join(dir, CACERTS_FILES.rootCert)).certs;
    const caCert = readCerts(join(dir, CACERTS_FILES.caCert)).certs[0];
    let problems: string[] = [];
    let trustDomain: string | undefined;
    try {
      trustDomain = (await loadCacerts(dir, nowMs)).trustDomain;
    } catch (err) {
      problems = err instanceof ValidationError ? err.problems.map((p) => [p.file, p.message].filter(Boolean).join(': ')) : [errorMessage(err)];
    }
    const cluster = caCert ? clusterOf(caCert) : undefined;
    cacerts.push({ dir, ...(cluster ? { cluster } : {}), ...(trustDomain ? { trustDomain } : {}), rootSha256: roots.map(fingerprint), problems });
  }
  const report: InspectReport = { files: fileReports, cacerts };
  if (cacerts.length >= 2) {
    const [first, ...rest] = cacerts;
    const common = first!.rootSha256.filter((fp) => rest.every((c) => c.rootSha256.includes(fp)));
    report.sharedRoot = common.length > 0 && cacerts.every((c) => c.problems.length === 0);
  }
  return report;
}

/** Human-readable rendering of an InspectReport. */
export function renderInspectReport(report: InspectReport): string {
  const out: string[] = [];
  for (const f of report.files) {
    out.push(`${f.path}:${f.note ? ' ' + f.note : ''}`);
    f.certificates.forEach((c, i) => {
      out.push(`  [${i + 1}] subject:   ${c.subject || '(empty)'}`);
      out.push(`      issuer:    ${c.issuer}`);
      out.push(`      validity:  ${c.notBefore} .. ${c.notAfter} (${c.validity})`);
      if (c.sans.length) out.push(`      SANs:      ${c.sans.join(', ')}`);
      if (c.spiffeIds.length) out.push(`      SPIFFE:    ${c.spiffeIds.join(', ')}`);
      out.push(`      CA:        ${c.isCa ? `true${c.pathLength !== undefined ? `, pathlen:${c.pathLength}` : ''}` : 'false'}`);
      out.push(`      usages:    ${[...c.keyUsages, ...c.extKeyUsages].join(', ') || '-'}`);
      out.push(`      chain:     ${c.issuerChain.join(' <- ')}${c.chainComplete ? '' : ' (incomplete)'}`);
      out.push(`      sha256:    ${c.sha256}`);
    });
  }
  for (const c of report.cacerts) {
    out.push(`cacerts ${c.dir}: cluster ${c.cluster ?? '-'}, trust domain ${c.trustDomain ?? '-'}, root ${c.rootSha256.map((s) => s.slice(0, 23)).join(', ')}`);
    for (const p of c.problems) out.push(`  problem: ${p}`);
    if (c.problems.length === 0) out.push('  ok: valid plug-in CA');
  }
  if (report.sharedRoot !== undefined) {
    out.push(report.sharedRoot ? `shared root: yes (${report.cacerts.length} cacerts dirs chain to one root)` : 'shared root: NO (these clusters will not trust each other)');
  }
  return out.join('\n') + '\n';
}
