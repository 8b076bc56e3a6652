import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { DetailedPeerCertificate } from 'node:tls';
import type { ClusterInput } from '../../analyze/index.js';
import type { Resource } from '../../api/types.js';
import type { KubeTarget } from '../../registry/kube-client/index.js';
import { createKubeClient } from '../../registry/kube-client/index.js';
import { LABEL_NETWORK } from '../../registry/index.js';
import { CrossmeshError, UsageError } from '../../shared/errors.js';

/** The kinds analyze reads from a cluster. */
export const ANALYZED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'v1', kind: 'Namespace' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService' },
  { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule' },
  { apiVersion: 'networking.istio.io/v1', kind: 'Gateway' },
  { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry' },
];

/** One `--server` of `crossmesh analyze`, with the credentials that go with it. */
export interface AnalyzedServer {
  /** The cluster id (`NAME=` of `--server NAME=URL`, else the URL's host:port). */
  name: string;
  target: KubeTarget;
}

/**
 * Pairs `--server` values with `--token` and `--ca-file`: each of those is given once (it then applies to every
 * server) or once per server, in the same order. Defaults come from CROSSMESH_TOKEN / CROSSMESH_CA_FILE.
 */
export function analyzedServers(
  opts: { server: readonly string[]; token: readonly string[]; caFile: readonly string[]; insecureSkipTlsVerify: boolean },
  defaults: { token?: string | undefined; caFile?: string | undefined },
  cwd: string,
): AnalyzedServer[] {
  const n = opts.server.length;
  const perServer = (flag: string, values: readonly string[], fallback: string | undefined): Array<string | undefined> => {
    if (values.length === 0) return Array.from({ length: n }, () => fallback);
    if (values.length === 1) return Array.from({ length: n }, () => values[0]);
    if (values.length === n) return [...values];
    throw new UsageError(`${flag}: give it once (for every server) or once per --server in the same order: got ${values.length} for ${n} servers`);
  };
  const tokens = perServer('--token', opts.token, defaults.token);
  const caFiles = perServer('--ca-file', opts.caFile, defaults.caFile);
  const servers = opts.server.map((spec, i): AnalyzedServer => {
    const m = /^([^=/:]+)=(.*)$/.exec(spec);
    const url = m ? m[2]! : spec;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--server: expected NAME=URL or URL, e.g. cluster-1=https://127.0.0.1:6443 (got "${spec}")`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UsageError(`--server: "${url}" is not an http(s) URL`);
    const token = tokens[i];
    const caFile = caFiles[i];
    return {
      name: m ? m[1]! : parsed.host,
      target: {
        server: url.replace(/\/+$/, ''),
        ...(token ? { token } : {}),
        ...(caFile ? { ca: readFileSync(resolve(cwd, caFile), 'utf8') } : {}),
        ...(opts.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
      },
    };
  });
  const names = servers.map((s) => s.name);
  const dup = names.find((x, i) => names.indexOf(x) !== i);
  if (dup) throw new UsageError(`--server: cluster "${dup}" is given twice`);
  return servers;
}

/**
 * Each server's resources, network (istio-system's `topology.istio.io/network` label) and the root its
 * certificate chains to. Reads all servers; when any fails, throws one error naming every failed server.
 */
export async function serverClusters(servers: readonly AnalyzedServer[]): Promise<ClusterInput[]> {
  const results = await Promise.allSettled(servers.map((s) => readServer(s)));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${servers[i]!.name} (${servers[i]!.target.server}): ${reason(r.reason)}`] : []));
  if (failures.length) throw new CrossmeshError('E_ANALYZE_SERVER', `cannot read ${failures.length === 1 ? 'a cluster' : `${failures.length} clusters`}:\n  ${failures.join('\n  ')}`);
  return results.map((r) => (r as PromiseFulfilledResult<ClusterInput>).value);
}

/** What went wrong, in terms of the analyze flags. */
function reason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'E_KUBE_UNAUTHORIZED') return 'rejected the token (401 Unauthorized): check the --token given for this server';
  if (code === 'E_KUBE_FORBIDDEN') return `${(err as Error).message}: the --token given for this server may not list resources`;
  if (code === 'E_KUBE_TLS') return `${(err as Error).message}; check the --ca-file given for this server`;
  return (err as Error).message;
}

async function readServer(s: AnalyzedServer): Promise<ClusterInput> {
  const client = createKubeClient(s.target);
  try {
    const resources: Resource[] = [];
    for (const k of ANALYZED_KINDS) resources.push(...(await client.list(k)).items);
    const network = resources.find((r) => r.kind === 'Namespace' && r.metadata.name === 'istio-system')?.metadata.labels?.[LABEL_NETWORK];
    const rootCertPem = s.target.ca && !s.target.insecureSkipTlsVerify ? await anchorRoot(s.target) : undefined;
    return { name: s.name, resources, ...(network ? { network } : {}), ...(rootCertPem ? { rootCertPem } : {}) };
  } finally {
    client.close();
  }
}

/** The certificate of the CA bundle that the server's chain ends at: the cluster's root, as its clients trust it. */
function anchorRoot(target: KubeTarget): Promise<string | undefined> {
  const url = new URL(target.server);
  if (url.protocol !== 'https:') return Promise.resolve(undefined);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const servername = target.tlsServerName ?? (isIP(host) ? undefined : host);
  return new Promise((done, fail) => {
    const socket = tlsConnect({ host, port: Number(url.port || 443), ca: target.ca, ...(servername ? { servername } : {}), ALPNProtocols: ['http/1.1'] }, () => {
      let cert: DetailedPeerCertificate = socket.getPeerCertificate(true);
      while (cert.issuerCertificate?.raw && cert.issuerCertificate !== cert) cert = cert.issuerCertificate;
      socket.destroy();
      const top = new X509Certificate(cert.raw);
      const anchor = bundle(target.ca!).find((c) => c.fingerprint256 === top.fingerprint256 || (top.checkIssued(c) && top.verify(c.publicKey)));
      done(anchor?.toString());
    });
    socket.setTimeout(5000, () => socket.destroy(new Error(`no TLS handshake within 5 s`)));
    socket.on('error', fail);
  });
}

function bundle(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}
