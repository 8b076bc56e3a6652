import { X509Certificate } from 'node:crypto';
import type { Command } from 'commander';
import { CrossmeshError, UsageError } from '../../shared/index.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData, renderTable } from '../output.js';

// Admin JSON from another process: read defensively with ?. rather than typed field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const KINDS = ['listeners', 'clusters', 'endpoints', 'routes', 'secret'] as const;
type Kind = (typeof KINDS)[number];

async function fetchJson(url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new CrossmeshError('E_UNREACHABLE', `cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw new CrossmeshError('E_HTTP', `${url}: HTTP ${res.status}: ${text.trim().slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new CrossmeshError('E_HTTP', `${url}: the answer is not JSON`);
  }
}

function baseUrl(text: string, flag: string): string {
  try {
    const u = new URL(text.includes('://') ? text : `http://${text}`);
    return u.href.replace(/\/$/, '');
  } catch {
    throw new UsageError(`${flag}: "${text}" is not a URL`);
  }
}

const dumpOf = (configs: Obj[], suffix: string): Obj => configs.find((c) => String(c['@type']).endsWith(suffix)) ?? {};

/** Certificate facts for `secret`: never the key. */
export function describeCertificate(pemBase64: string | undefined): { subject: string; san: string; notAfter: string; serial: string } | undefined {
  if (!pemBase64) return undefined;
  try {
    // A chain: describe the leaf, the first certificate.
    const pem = Buffer.from(pemBase64, 'base64').toString('utf8');
    const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
    if (!first) return undefined;
    const cert = new X509Certificate(first);
    // Workload certificates have an empty subject (identity is in the SAN); Node then reports none.
    return { subject: (cert.subject ?? '').replace(/\n/g, ','), san: cert.subjectAltName ?? '', notAfter: new Date(cert.validTo).toISOString(), serial: cert.serialNumber };
  } catch {
    return undefined;
  }
}

/** yes: always TLS; auto: TLS to endpoints that match (Istio's tlsMode transport_socket_matches); no. */
function clusterTls(cluster: Obj | undefined): string {
  const isTls = (ts: Obj | undefined): boolean => String(ts?.typed_config?.['@type'] ?? ts?.name ?? '').toLowerCase().includes('tls');
  if (isTls(cluster?.transport_socket)) return 'yes';
  if ((cluster?.transport_socket_matches ?? []).some((m: Obj) => isTls(m.transport_socket))) return 'auto';
  return 'no';
}

async function collect(kind: Kind, url: string): Promise<{ data: unknown; table: () => string }> {
  if (kind === 'endpoints') {
    const clusters = (await fetchJson(`${url}/clusters?format=json`)) as { cluster_statuses?: Obj[] };
    const rows = (clusters.cluster_statuses ?? []).flatMap((c) =>
      (c.host_statuses ?? []).map((h: Obj) => ({
        endpoint: `${h.address?.socket_address?.address}:${h.address?.socket_address?.port_value}`,
        status: h.health_status?.eds_health_status ?? 'UNKNOWN',
        outlierCheck: h.health_status?.failed_outlier_check ? 'FAILED' : 'OK',
        cluster: c.name,
      })),
    );
    return {
      data: rows,
      table: () => renderTable(rows, [
        { header: 'endpoint', value: (r) => r.endpoint },
        { header: 'status', value: (r) => r.status },
        { header: 'outlier check', value: (r) => r.outlierCheck },
        { header: 'cluster', value: (r) => r.cluster },
      ]),
    };
  }
  const dump = (await fetchJson(`${url}/config_dump`)) as { configs?: Obj[] };
  const configs = dump.configs ?? [];
  if (kind === 'listeners') {
    const items = (dumpOf(configs, 'ListenersConfigDump').dynamic_listeners ?? []) as Obj[];
    return {
      data: items.map((l) => l.active_state?.listener),
      table: () => renderTable(items, [
        { header: 'name', value: (l) => l.name },
        { header: 'address', value: (l) => l.active_state?.listener?.address?.socket_address?.address },
        { header: 'port', value: (l) => l.active_state?.listener?.address?.socket_address?.port_value },
        { header: 'chains', value: (l) => (l.active_state?.listener?.filter_chains ?? []).length },
        { header: 'version', value: (l) => l.active_state?.version_info },
      ]),
    };
  }
  if (kind === 'clusters') {
    const items = (dumpOf(configs, 'ClustersConfigDump').dynamic_active_clusters ?? []) as Obj[];
    return {
      data: items.map((c) => c.cluster),
      table: () => renderTable(items, [
        { header: 'name', value: (c) => c.cluster?.name },
        { header: 'type', value: (c) => c.cluster?.type ?? 'STATIC' },
        { header: 'tls', value: (c) => clusterTls(c.cluster) },
        { header: 'version', value: (c) => c.version_info },
      ]),
    };
  }
  if (kind === 'routes') {
    const items = (dumpOf(configs, 'RoutesConfigDump').dynamic_route_configs ?? []) as Obj[];
    const rows = items.flatMap((r) =>
      (r.route_config?.virtual_hosts ?? []).map((vh: Obj) => ({ route: r.route_config?.name, virtualHost: vh.name, domains: (vh.domains ?? []).join(','), routes: (vh.routes ?? []).length, version: r.version_info })),
    );
    return {
      data: items.map((r) => r.route_config),
      table: () => renderTable(rows, [
        { header: 'name', value: (r) => r.route },
        { header: 'virtual host', value: (r) => r.virtualHost },
        { header: 'domains', value: (r) => r.domains },
        { header: 'routes', value: (r) => r.routes },
        { header: 'version', value: (r) => r.version },
      ]),
    };
  }
  const secrets = (dumpOf(configs, 'SecretsConfigDump').dynamic_active_secrets ?? []) as Obj[];
  const rows = secrets.map((s) => {
    const pem = s.secret?.tls_certificate?.certificate_chain?.inline_bytes ?? s.secret?.validation_context?.trusted_ca?.inline_bytes;
    const cert = describeCertificate(pem);
    return { name: s.name, version: s.version_info, subject: cert?.subject ?? '', san: cert?.san ?? '', notAfter: cert?.notAfter ?? '', serial: cert?.serial ?? '' };
  });
  return {
    data: rows,
    table: () => renderTable(rows, [
      { header: 'resource name', value: (r) => r.name },
      { header: 'subject', value: (r) => r.subject },
      { header: 'san', value: (r) => r.san },
      { header: 'not after', value: (r) => r.notAfter },
      { header: 'version', value: (r) => r.version },
    ]),
  };
}

/** `crossmesh proxy-config KIND ADMIN-URL`: what a running proxy runs, read from its admin API. */
export function registerProxyConfig(program: Command, ctx: CliContext): void {
  program
    .command('proxy-config')
    .description(`show a running proxy's config: ${KINDS.join('|')} from its admin URL (e.g. http://127.0.0.1:15000)`)
    .argument('<kind>', KINDS.join(', '))
    .argument('<admin-url>', 'the proxy admin address')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action(async (kind: string, adminUrl: string, opts: { output: string }) => {
      const format = parseOutputFormat(opts.output);
      if (!(KINDS as readonly string[]).includes(kind)) throw new UsageError(`proxy-config: unknown kind "${kind}"; one of ${KINDS.join(', ')}`);
      const { data, table } = await collect(kind as Kind, baseUrl(adminUrl, '<admin-url>'));
      ctx.stdout(renderData(data, format, table));
    });
}

type TypeStatusLike = { typeUrl: string; sentVersion?: string; ackedVersion?: string; lastNack?: { version: string; message: string }; sync?: string };
const SHORT: Record<string, string> = { Cluster: 'CDS', ClusterLoadAssignment: 'EDS', Listener: 'LDS', RouteConfiguration: 'RDS', NameTable: 'NDS', Secret: 'SDS' };

/**
 * The control plane's own verdict when it gives one (it compares with the current snapshot); otherwise
 * SYNCED when the proxy ACKed what was sent, NACKED when its last answer was a NACK, STALE in between.
 */
export function syncState(t: TypeStatusLike | undefined): string {
  if (t?.sync) return t.sync;
  if (!t || t.sentVersion === undefined) return 'NOT_SENT';
  if (t.ackedVersion === t.sentVersion) return 'SYNCED';
  if (t.lastNack && t.lastNack.version !== t.sentVersion) return 'NACKED';
  return 'STALE';
}

/** `crossmesh proxy-status --server URL`: which proxies are synced to which version, per xDS type. */
export function registerProxyStatus(program: Command, ctx: CliContext): void {
  program
    .command('proxy-status')
    .description("list the proxies connected to a control plane and whether each xDS type is synced")
    .option('--server <url>', "control plane debug URL (its /debug/connections is read)")
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action(async (opts: { server?: string; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if (!opts.server) throw new UsageError('proxy-status: --server is required (the control plane debug URL, e.g. http://127.0.0.1:15014)');
      const base = baseUrl(opts.server, '--server');
      const url = base.endsWith('/debug/connections') ? base : `${base}/debug/connections`;
      const proxies = (await fetchJson(url)) as Array<{ node: { id: string; metadata?: Obj }; group: string; types: TypeStatusLike[] }>;
      if (!Array.isArray(proxies)) throw new CrossmeshError('E_HTTP', `${url}: expected a list of connected proxies`);
      const rows = proxies.map((p) => {
        const byShort = new Map(p.types.map((t) => [SHORT[t.typeUrl.slice(t.typeUrl.lastIndexOf('.') + 1)] ?? t.typeUrl, t]));
        const cell = (k: string) => {
          const t = byShort.get(k);
          const s = syncState(t);
          return s === 'NOT_SENT' ? s : `${s} (${(t!.sentVersion ?? '').slice(0, 12)})`;
        };
        return {
          name: p.node.id,
          cluster: String(p.node.metadata?.CLUSTER_ID ?? ''),
          types: Object.fromEntries(['CDS', 'LDS', 'EDS', 'RDS', 'NDS'].map((k) => [k, { state: syncState(byShort.get(k)), sent: byShort.get(k)?.sentVersion ?? null, acked: byShort.get(k)?.ackedVersion ?? null, nack: byShort.get(k)?.lastNack?.message ?? null }])),
          cells: Object.fromEntries(['CDS', 'LDS', 'EDS', 'RDS', 'NDS'].map((k) => [k, cell(k)])),
        };
      });
      ctx.stdout(
        renderData(
          rows.map(({ cells: _c, ...r }) => r),
          format,
          () => renderTable(rows, [{ header: 'name', value: (r) => r.name }, { header: 'cluster', value: (r) => r.cluster }, ...['CDS', 'LDS', 'EDS', 'RDS', 'NDS'].map((k) => ({ header: k, value: (r: (typeof rows)[number]) => r.cells[k] }))]),
        ),
      );
    });
}
