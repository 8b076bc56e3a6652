import { Counter, Registry } from 'prom-client';

/** Why the CA refused a request; each is counted under this label. */
export type RejectionReason =
  | 'unauthenticated'
  | 'malformed-csr'
  | 'csr-requests-ca'
  | 'invalid-identity'
  | 'identity-mismatch'
  | 'invalid-ttl'
  | 'ttl-exceeds-max'
  | 'internal';

/** Counters for CSR handling; registered on the given prom-client registry. */
export interface CaMetrics {
  readonly registry: Registry;
  requested(): void;
  issued(): void;
  rejected(reason: RejectionReason): void;
  /** Current counts, for status pages and tests. */
  snapshot(): { requested: number; issued: number; rejected: Partial<Record<RejectionReason, number>> };
}

/** Istio's citadel_server_* names where one exists, plus crossmesh_ca_rejections_total{reason}. */
export function createCaMetrics(registry: Registry = new Registry()): CaMetrics {
  const csr = new Counter({ name: 'citadel_server_csr_count', help: 'CSRs received by the CA.', registers: [registry] });
  const success = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'Certificates issued.', registers: [registry] });
  const authFail = new Counter({ name: 'citadel_server_authentication_failure_count', help: 'CSRs whose caller failed authentication.', registers: [registry] });
  const parseErr = new Counter({ name: 'citadel_server_csr_parsing_err_count', help: 'CSRs that could not be parsed.', registers: [registry] });
  const rejections = new Counter({ name: 'crossmesh_ca_rejections_total', help: 'CSRs refused, by reason.', labelNames: ['reason'], registers: [registry] });
  const counts = { requested: 0, issued: 0, rejected: {} as Partial<Record<RejectionReason, number>> };
  return {
    registry,
    requested() {
      counts.requested++;
      csr.inc();
    },
    issued() {
      counts.issued++;
      success.inc();
    },
    rejected(reason) {
      counts.rejected[reason] = (counts.rejected[reason] ?? 0) + 1;
      rejections.inc({ reason });
      if (reason === 'unauthenticated') authFail.inc();
      if (reason === 'malformed-csr') parseErr.inc();
    },
    snapshot: () => ({ requested: counts.requested, issued: counts.issued, rejected: { ...counts.rejected } }),
  };
}
