/**
 * Istio's resource naming on the wire (ARCHITECTURE.md, wire conventions), so that what our proxy receives
 * is what an Envoy sidecar would.
 */

/** `outbound|<port>|<subset>|<fqdn>`; an empty subset leaves the field empty. */
export function outboundClusterName(port: number, subset: string, fqdn: string): string {
  return `outbound|${port}|${subset}|${fqdn}`;
}

/** `inbound|<port>||`. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export interface ParsedClusterName {
  direction: 'outbound' | 'inbound';
  port: number;
  subset: string;
  fqdn: string;
}

/** Parses an Istio cluster name; undefined when it is not one (e.g. `BlackHoleCluster`). */
export function parseClusterName(name: string): ParsedClusterName | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, fqdn] = parts as [string, string, string, string];
  if (direction !== 'outbound' && direction !== 'inbound') return undefined;
  const n = Number(port);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) return undefined;
  return { direction, port: n, subset, fqdn };
}

/**
 * SNI for mTLS and east-west gateway routing: `outbound_.<port>_.<subset>_.<fqdn>`. An empty subset
 * leaves its field empty, which is why `outbound_.8000_._.<fqdn>` has a lone underscore.
 */
export function outboundSni(port: number, subset: string, fqdn: string): string {
  return `outbound_.${port}_.${subset}_.${fqdn}`;
}

/** Parses an SNI built by outboundSni; undefined for anything else. */
export function parseOutboundSni(sni: string): { port: number; subset: string; fqdn: string } | undefined {
  const m = /^outbound_\.(\d{1,5})_\.([^.]*)_\.(.+)$/.exec(sni);
  if (!m) return undefined;
  const port = Number(m[1]);
  if (port <= 0 || port > 65535) return undefined;
  return { port, subset: m[2] ?? '', fqdn: m[3] ?? '' };
}

/** ALPN offered between sidecars for mTLS. */
export const ISTIO_ALPN: readonly string[] = ['istio-peer-exchange', 'istio'];

/** SDS secret names Istio's proxies ask for: the workload certificate and the root bundle. */
export const SDS_DEFAULT_SECRET = 'default';
export const SDS_ROOT_SECRET = 'ROOTCA';
