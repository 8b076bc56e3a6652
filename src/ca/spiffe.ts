/** A parsed workload SPIFFE ID of the Istio shape `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  uri: string;
}

const label = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const trustDomainRe = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

/** True for a valid trust domain name (lower case DNS-like, as SPIFFE requires). */
export function isTrustDomain(td: string): boolean {
  return td.length <= 255 && trustDomainRe.test(td);
}

/** Builds the URI for namespace/service account in a trust domain; throws on invalid parts. */
export function formatSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const uri = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  const parsed = parseSpiffeId(uri);
  if (!parsed.ok) throw new TypeError(parsed.message);
  return uri;
}

/** Parses a workload SPIFFE ID; problems come back as a value naming what is wrong. */
export function parseSpiffeId(uri: string): { ok: true; id: SpiffeId } | { ok: false; message: string } {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return { ok: false, message: `"${uri}" is not a workload SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` };
  const [, td, ns, sa] = m as unknown as [string, string, string, string];
  if (!isTrustDomain(td)) return { ok: false, message: `"${uri}": trust domain "${td}" is not a valid name` };
  if (!label.test(ns) || ns.length > 253) return { ok: false, message: `"${uri}": namespace "${ns}" is not a valid name` };
  if (!label.test(sa) || sa.length > 253) return { ok: false, message: `"${uri}": service account "${sa}" is not a valid name` };
  return { ok: true, id: { trustDomain: td, namespace: ns, serviceAccount: sa, uri } };
}
