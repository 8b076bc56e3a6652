/**
 * The SNI Istio's sidecars send to each other and to east-west gateways names the Envoy cluster they want:
 * `outbound_.<port>_.<subset>_.<fqdn>`, the subset empty for the whole service
 * (`outbound_.8000_._.httpbin.default.svc.cluster.local`).
 */

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

/** Parses an outbound SNI; undefined for anything not of that exact form (then a gateway has no route). */
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
  return { sni, port, subset, fqdn, clusterName: `outbound|${port}|${subset}|${fqdn}` };
}

/** Builds the SNI for a cluster target, the inverse of parseOutboundSni. */
export function formatOutboundSni(target: { port: number; subset?: string; fqdn: string }): string {
  return `${PREFIX}${target.port}${SEP}${target.subset ?? ''}${SEP}${target.fqdn}`;
}
