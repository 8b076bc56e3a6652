import * as tls from 'node:tls';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { PeerVerificationError } from './errors.js';
import { x509 } from './keys.js';
import { parseCertificates } from './pki.js';
import type { CredentialSource, WorkloadCredentials } from './workload.js';

/**
 * tls.createServer options for mesh mTLS: present our chain, require and verify a client cert
 * against the mesh roots. Node then drops untrusted clients silently; to log why, override
 * rejectUnauthorized: false and call verifyPeer in 'secureConnection', destroying on failure.
 */
export function tlsServerOptions(creds: WorkloadCredentials, extra: tls.TlsOptions = {}): tls.TlsOptions {
  return { ...extra, ...secureContextOptions(creds), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' };
}

/** The parts of TLS options that change on rotation. */
export function secureContextOptions(creds: WorkloadCredentials): tls.SecureContextOptions {
  return { key: creds.keyPem, cert: creds.certChainPem, ca: creds.rootsPem };
}

/**
 * Keeps a tls.Server on the source's latest credentials: new handshakes get the new cert and roots,
 * established connections are untouched. Returns an unsubscribe.
 */
export function bindServerCredentials(server: tls.Server, source: CredentialSource): () => void {
  return source.onRotate((creds) => server.setSecureContext(secureContextOptions(creds)));
}

/**
 * tls.connect options built from the current credentials: the server's chain must verify against
 * the mesh roots (node rejects the handshake otherwise) and its SPIFFE ID must be one of
 * expectedPeer when given. Hostnames are not checked, as in Istio: mesh identity is the SPIFFE ID.
 * Use connectMeshTls instead when you want failures explained (it names the untrusted issuer).
 */
export function tlsClientOptions(creds: WorkloadCredentials, opts: tls.ConnectionOptions & { expectedPeer?: readonly string[] } = {}): tls.ConnectionOptions {
  const { expectedPeer, ...extra } = opts;
  return {
    ...extra,
    ...secureContextOptions(creds),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    checkServerIdentity: (_host, cert) => spiffeMismatch(spiffeIdOfPeer(cert), expectedPeer),
  };
}

function spiffeMismatch(id: string | undefined, expected: readonly string[] | undefined): PeerVerificationError | undefined {
  if (id === undefined) return new PeerVerificationError('E_SPIFFE_MISMATCH', 'peer certificate carries no SPIFFE ID');
  if (expected && expected.length > 0 && !expected.includes(id)) {
    return new PeerVerificationError('E_SPIFFE_MISMATCH', `peer identity ${id} is not one of the expected ${expected.join(', ')}`);
  }
  return undefined;
}

/** The SPIFFE ID in a peer certificate's URI SAN, if any. */
export function spiffeIdOfPeer(cert: PeerCertificate | undefined): string | undefined {
  const san = cert?.subjectaltname;
  if (!san) return undefined;
  for (const part of san.split(/,\s*/)) if (part.startsWith('URI:spiffe://')) return part.slice(4);
  return undefined;
}

/** The SPIFFE ID the peer on this socket authenticated with, if any. */
export function peerSpiffeId(socket: tls.TLSSocket): string | undefined {
  return spiffeIdOfPeer(socket.getPeerCertificate());
}

function dn(subject: object | undefined): string {
  if (!subject) return '(none)';
  const fields = subject as Record<string, string | string[] | undefined>;
  const order = ['CN', 'OU', 'O', 'L', 'ST', 'C'];
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined).sort((a, b) => rank(a) - rank(b));
  return keys.map((k) => `${k}=${String(fields[k])}`).join(', ') || '(empty)';
}

function akiOf(raw: Buffer): string | undefined {
  try {
    return new x509.X509Certificate(raw).getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  } catch {
    return undefined;
  }
}

function skiOf(cert: x509.X509Certificate): string | undefined {
  return cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
}

/** The presented chain, leaf first, without the self-loop node prints at a root. */
function presentedChain(socket: tls.TLSSocket): DetailedPeerCertificate[] {
  const chain: DetailedPeerCertificate[] = [];
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(c);
    c = c.issuerCertificate;
  }
  return chain;
}

/**
 * Explains why a peer is not trusted, or undefined when it is: the chain must verify against the
 * roots (the socket's `authorized`), and when `expected` is given the peer's SPIFFE ID must be in it.
 * The message names the untrusted issuer, e.g. "certificate issuer CN=… (cluster-2 intermediate)
 * does not chain to a trusted root".
 */
export function verifyPeer(socket: tls.TLSSocket, trustedRootsPem: string, expected?: readonly string[]): PeerVerificationError | undefined {
  const chain = presentedChain(socket);
  const leaf = chain[0];
  if (!leaf) return new PeerVerificationError('NO_PEER_CERTIFICATE', 'peer presented no certificate (plaintext or one-way TLS is not allowed in the mesh)');
  const id = spiffeIdOfPeer(leaf) ?? '(no SPIFFE ID)';
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'UNKNOWN');
    const top = chain[chain.length - 1]!;
    const cluster = (top.subject as unknown as Record<string, string> | undefined)?.L;
    const roots = safeRoots(trustedRootsPem);
    const trusted = roots.map((r) => `${r.subject} (key id ${skiOf(r) ?? '?'})`).join('; ') || '(none)';
    const aki = akiOf(top.raw);
    const issuerText = top === leaf ? `certificate issuer ${dn(top.issuer)}` : `certificate issuer ${dn(top.subject)}${cluster ? ` (${cluster} intermediate)` : ''}`;
    const detail = top === leaf ? '' : `: it is issued by ${dn(top.issuer)}${aki ? ` (key id ${aki})` : ''}, which is not a trusted root`;
    return new PeerVerificationError(code, `peer ${id}: ${issuerText} does not chain to a trusted root${detail}; trusted roots: ${trusted} [${code}]`);
  }
  return spiffeMismatch(spiffeIdOfPeer(leaf), expected);
}

function safeRoots(pem: string): x509.X509Certificate[] {
  try {
    return parseCertificates(pem, 'trusted roots');
  } catch {
    return [];
  }
}

/** A mesh mTLS connection whose peer has been verified. */
export interface MeshConnection {
  socket: tls.TLSSocket;
  peerSpiffeId: string;
}

/**
 * Connects with mutual TLS using the source's current credentials and resolves once the server's
 * chain and (optionally) SPIFFE ID are verified; rejects with PeerVerificationError otherwise.
 */
export function connectMeshTls(opts: {
  host: string;
  port: number;
  credentials: WorkloadCredentials;
  expectedPeer?: readonly string[];
  servername?: string;
  ALPNProtocols?: string[];
  timeoutMs?: number;
}): Promise<MeshConnection> {
  return new Promise((resolve, reject) => {
    // Verification is done by verifyPeer after the handshake, where the presented chain is still
    // available to explain a failure; node's own check would only give an error code.
    const socket = tls.connect({
      ...tlsClientOptions(opts.credentials, {
        host: opts.host,
        port: opts.port,
        ...(opts.servername ? { servername: opts.servername } : {}),
        ...(opts.ALPNProtocols ? { ALPNProtocols: opts.ALPNProtocols } : {}),
      }),
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => socket.destroy(new Error(`TLS handshake with ${opts.host}:${opts.port} timed out`)), opts.timeoutMs ?? 10_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const problem = verifyPeer(socket, opts.credentials.rootsPem, opts.expectedPeer);
      if (problem) {
        socket.destroy();
        reject(problem);
        return;
      }
      socket.off('error', onError);
      resolve({ socket, peerSpiffeId: peerSpiffeId(socket)! });
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
}
