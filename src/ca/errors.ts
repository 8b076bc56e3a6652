import { CrossmeshError } from '../shared/errors.js';

/** A CA file, key or certificate could not be used; the message names the file and the problem. */
export class CaMaterialError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CA_MATERIAL', message, options);
  }
}

/** The tooling refused to overwrite an existing file (pass --force). */
export class FileExistsError extends CrossmeshError {
  constructor(path: string) {
    super('E_EXISTS', `${path} already exists; pass --force to overwrite`);
  }
}

/** `ca inspect --check-shared-root` found cacerts dirs that do not share one root. */
export class RootMismatchError extends CrossmeshError {
  constructor(message: string) {
    super('E_ROOT_MISMATCH', message);
  }
}

/** A join token could not be created (bad key, bad identity). */
export class TokenError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_TOKEN', message, options);
  }
}

/** A workload could not obtain or use its certificate. */
export class WorkloadIdentityError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_WORKLOAD_IDENTITY', message, options);
  }
}

/** A mutual-TLS peer was refused: untrusted chain or unexpected SPIFFE ID. */
export class PeerVerificationError extends CrossmeshError {
  /** OpenSSL's verify code (e.g. UNABLE_TO_GET_ISSUER_CERT_LOCALLY) or E_SPIFFE_MISMATCH. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('E_PEER_VERIFY', message);
    this.reason = reason;
  }
}
