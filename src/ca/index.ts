/**
 * Mesh identity: offline CA tooling, the online CA the control plane hosts (Istio's
 * IstioCertificateService), join tokens, and the workload side that obtains and rotates certs.
 */

// Offline tooling (what `crossmesh ca root|intermediate|workload` do).
/** generateRootCa: a self-signed mesh root (PEM); writeRootCa/readRootCa: root-cert.pem + root-key.pem (0600). */
export { generateRootCa, writeRootCa, readRootCa } from './tooling.js';
/** generateIntermediateCa: a cluster intermediate (CA:true pathlen:0) as Istio plug-in files; writeCacerts writes them. */
export { generateIntermediateCa, writeCacerts } from './tooling.js';
/** generateWorkloadCert: a SPIFFE leaf from a CaMaterial; writeWorkloadCert: cert.pem, key.pem, cert-chain.pem, root-cert.pem. */
export { generateWorkloadCert, writeWorkloadCert, isCacertsDir } from './tooling.js';
export type { RootCaPem, CacertsPem, WorkloadCertPem } from './tooling.js';
/** inspectPaths: subject, SANs, issuer chain, validity, SPIFFE IDs per file and shared-root check per cacerts dir. */
export { inspectPaths, renderInspectReport } from './inspect.js';
export type { InspectReport, CertificateInfo, FileReport, CacertsReport } from './inspect.js';

// CA material.
/** loadCacerts: read + validate a cacerts dir (ValidationError naming each file); validateCaMaterial: the same checks on loaded material. */
export { loadCacerts, validateCaMaterial, caMaterialFromPem, rootsPem, CACERTS_FILES } from './cacerts.js';
export type { CaMaterial } from './cacerts.js';

// Online CA.
/** createCertificateAuthority: loads cacerts (or a warned-about self-signed root) and signs workload CSRs, never a CA, never beyond max TTL. */
export { createCertificateAuthority, CONTROL_PLANE_SERVER_NAME } from './authority.js';
export type { CertificateAuthority, CertificateAuthorityOptions, SignSuccess, SignRejection } from './authority.js';
/** addCaService: registers istio.v1.auth.IstioCertificateService/CreateCertificate on a grpc.Server. */
export { addCaService, createMeshAuthenticator, createCaServerCredentials, CaServerCredentials, grpcStatusFor } from './service.js';
export type { Authenticator, Authentication, CallerCredentials } from './service.js';
/** createCaMetrics: CSR counters (citadel_server_* and crossmesh_ca_rejections_total{reason}) on a prom-client registry. */
export { createCaMetrics } from './metrics.js';
export type { CaMetrics, RejectionReason } from './metrics.js';
/** The CA service definition and wire types loaded from protos/istio/security/v1alpha1/ca.proto. */
export { istioCertificateService, certificateServiceClient, CREATE_CERTIFICATE_PATH } from './proto.js';
export type { IstioCertificateRequest, IstioCertificateResponse } from './proto.js';

// Join tokens.
/** createJoinToken/verifyJoinToken: compact JWS (ES256/ES384/RS256) signed by the cluster CA key, bound to td/ns/sa/cluster, expiring. */
export { createJoinToken, verifyJoinToken, tokenKeyId } from './token.js';
export type { JoinTokenClaims, TokenVerification, TokenRejection } from './token.js';

// Workload side.
/** createWorkloadIdentity: key + CSR + CreateCertificate, rotation at half-life with backoff on failure, current() and onRotate(). */
export { createWorkloadIdentity, staticCredentials } from './workload.js';
export type { WorkloadIdentity, WorkloadIdentityOptions, WorkloadCredentials, CredentialSource } from './workload.js';
/** requestCertificate: one CreateCertificate call (token and/or client cert); createCsr: a CSR with only the SPIFFE URI SAN. */
export { requestCertificate, createCsr, hostOf } from './client.js';
export type { CaConnection, CertificateResult } from './client.js';
/** TLS helpers: server/client options from credentials, setSecureContext on rotation, peer SPIFFE ID, explained verify failures. */
export { tlsServerOptions, tlsClientOptions, secureContextOptions, bindServerCredentials, peerSpiffeId, spiffeIdOfPeer, verifyPeer, connectMeshTls } from './tls.js';
export type { MeshConnection } from './tls.js';

// Primitives.
/** Key generation/parsing usable by node:crypto and @peculiar/x509. */
export { generateKeyPair, keyPairFromPem, privateKeyPem, isKeyType, keyTypes } from './keys.js';
/** The @peculiar/x509 namespace with node's WebCrypto and the Reflect polyfill it needs already set up: import it from here. */
export { x509 } from './keys.js';
export type { KeyPair, KeyType } from './keys.js';
/** Certificate helpers: PEM parsing, SPIFFE IDs, usages, fingerprints. */
export { parseCertificates, certPem, spiffeIdsOf, subjectAltNames, keyUsagesOf, extKeyUsagesOf, basicConstraintsOf, fingerprint, isClusterName } from './pki.js';
/** SPIFFE ID parse/format for spiffe://<td>/ns/<ns>/sa/<sa>. */
export { parseSpiffeId, formatSpiffeId, isTrustDomain } from './spiffe.js';
export type { SpiffeId } from './spiffe.js';
/** Durations as the CLI writes them (90s, 30m, 24h, 7d). */
export { parseDurationSeconds, formatDuration } from './duration.js';
/** Errors with stable codes. */
export { CaMaterialError, FileExistsError, RootMismatchError, TokenError, WorkloadIdentityError, PeerVerificationError } from './errors.js';
