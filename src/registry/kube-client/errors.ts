import { CrossmeshError } from '../../shared/errors.js';
import type { Problem } from '../../shared/errors.js';

/**
 * Stable codes: E_KUBE_UNAUTHORIZED (401), E_KUBE_FORBIDDEN (403), E_KUBE_TLS (server certificate not trusted, TLS
 * mismatch), E_KUBE_UNREACHABLE (refused, DNS, reset), E_KUBE_TIMEOUT, E_KUBE_GONE (410: relist), E_KUBE_INVALID
 * (422, with problems), E_KUBE_NOT_FOUND, E_KUBE_CONFLICT, E_KUBE_HTTP (other statuses), E_KUBE_PROTOCOL (unreadable
 * response).
 */
export class KubeClientError extends CrossmeshError {
  readonly status: number | undefined;
  readonly problems: readonly Problem[];

  constructor(code: string, message: string, options: { status?: number; problems?: readonly Problem[]; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause });
    this.status = options.status;
    this.problems = options.problems ?? [];
  }
}

/** The kubeconfig cannot be used; the message names the field. */
export class KubeconfigError extends CrossmeshError {
  constructor(message: string) {
    super('E_KUBECONFIG', `kubeconfig: ${message}`);
  }
}
