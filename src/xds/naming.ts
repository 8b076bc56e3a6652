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
 * SNI for mTLS and east-west gateway routing: `outbound_.<port>_.<subset>_.<fqdn>`; with no subset the
 * field is empty, giving Istio's `outbound_.8000_._.httpbin.default.svc.cluster.local`.
 */
export function outboundSni(port: number, subset: string, fqdn: string): string {
  return `outbound_.${port}_.${subset}_.${fqdn}`;
}

/** A parsed outbound SNI and the Envoy cluster name it stands for. */
export interface OutboundSni {
  sni: string;
  port: number;
  /** Empty for the whole service. */
  subset: string;
  fqdn: string;
  /** `outbound|<port>|<subset>|<fqdn>`, the cluster name the control plane uses for the same target. */
  clusterName: string;
}

const PREFIX = 'outbound_.';
const SEP = '_.';
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SUBSET = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** Parses an SNI built by outboundSni; undefined for anything not of that exact form (a gateway has no route for it). */
export function parseOutboundSni(sni: string): OutboundSni | undefined {
  if (!sni.startsWith(PREFIX)) return undefined;
  const rest = sni.slice(PREFIX.length);
  const portEnd = rest.indexOf(SEP);
  if (portEnd <= 0) return undefined;
  const portText = rest.slice(0, portEnd);
  if (!/^[1-9][0-9]{0,4}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  const afterPort = rest.slice(portEnd + SEP.length);
  const subsetEnd = afterPort.indexOf(SEP);
  if (subsetEnd < 0) return undefined;
  const subset = afterPort.slice(0, subsetEnd);
  if (subset !== '' && !SUBSET.test(subset)) return undefined;
  const fqdn = afterPort.slice(subsetEnd + SEP.length).toLowerCase();
  if (fqdn.length === 0 || fqdn.length > 253) return undefined;
  if (!fqdn.split('.').every((label) => LABEL.test(label))) return undefined;
  return { sni, port, subset, fqdn, clusterName: outboundClusterName(port, subset, fqdn) };
}

/** ALPN offered between sidecars for mTLS. */
export const ISTIO_ALPN: readonly string[] = ['istio-peer-exchange', 'istio'];

/** SDS secret names Istio's proxies ask for: the workload certificate and the root bundle. */
export const SDS_DEFAULT_SECRET = 'default';
export const SDS_ROOT_SECRET = 'ROOTCA';
