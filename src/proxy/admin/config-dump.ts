/**
 * Envoy-style `/config_dump`: `{configs: [...]}` with one typed dump per xDS type, each resource with the
 * version it was accepted at. Private keys never appear; certificates do, as Envoy shows them.
 */
import type { SidecarCredentials } from '../runtime/sidecar-contract.js';
import type { ProxyXdsState } from '../runtime/sidecar-contract.js';
import type { NameTable } from '../dns/index.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';
export const CONFIG_DUMP_TYPES = {
  bootstrap: `${ADMIN}BootstrapConfigDump`,
  clusters: `${ADMIN}ClustersConfigDump`,
  endpoints: `${ADMIN}EndpointsConfigDump`,
  listeners: `${ADMIN}ListenersConfigDump`,
  routes: `${ADMIN}RoutesConfigDump`,
  secrets: `${ADMIN}SecretsConfigDump`,
  nameTable: 'type.googleapis.com/istio.networking.nds.v1.NameTable',
} as const;

export interface ConfigDumpInput {
  state: ProxyXdsState;
  /** Accepted version and time (ms) per xDS type URL. */
  versions: ReadonlyMap<string, { version: string; acceptedAt: number }>;
  typeUrls: { cluster: string; endpoint: string; listener: string; route: string; nameTable: string };
  node: object;
  credentials?: SidecarCredentials & { rotatedAt?: number };
  nameTable?: NameTable;
}

/** Buffers (inline_bytes) as base64, as Envoy's JSON prints bytes. */
export function dumpJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: unknown, _key, v: unknown) {
      if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
        return Buffer.from((v as { data: number[] }).data).toString('base64');
      }
      if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
      return v;
    },
    2,
  );
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

export function buildConfigDump(input: ConfigDumpInput): { configs: object[] } {
  const v = (typeUrl: string) => input.versions.get(typeUrl);
  const meta = (typeUrl: string) => ({ version_info: v(typeUrl)?.version ?? '', last_updated: iso(v(typeUrl)?.acceptedAt) });
  const byName = <T>(m: ReadonlyMap<string, T>): Array<[string, T]> => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const configs: object[] = [
    { '@type': CONFIG_DUMP_TYPES.bootstrap, bootstrap: { node: input.node } },
    {
      '@type': CONFIG_DUMP_TYPES.clusters,
      version_info: v(input.typeUrls.cluster)?.version ?? '',
      dynamic_active_clusters: byName(input.state.clusters).map(([, cluster]) => ({ ...meta(input.typeUrls.cluster), cluster: { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', ...cluster } })),
    },
    {
      '@type': CONFIG_DUMP_TYPES.endpoints,
      dynamic_endpoint_configs: byName(input.state.endpoints).map(([, cla]) => ({
        ...meta(input.typeUrls.endpoint),
        endpoint_config: { '@type': 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment', ...cla },
      })),
    },
    {
      '@type': CONFIG_DUMP_TYPES.listeners,
      version_info: v(input.typeUrls.listener)?.version ?? '',
      dynamic_listeners: byName(input.state.listeners).map(([name, listener]) => ({
        name,
        active_state: { ...meta(input.typeUrls.listener), listener: { '@type': 'type.googleapis.com/envoy.config.listener.v3.Listener', ...listener } },
      })),
    },
    {
      '@type': CONFIG_DUMP_TYPES.routes,
      dynamic_route_configs: byName(input.state.routes).map(([, rc]) => ({
        ...meta(input.typeUrls.route),
        route_config: { '@type': 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration', ...rc },
      })),
    },
    { '@type': CONFIG_DUMP_TYPES.secrets, dynamic_active_secrets: secrets(input.credentials) },
  ];
  if (input.nameTable) configs.push({ '@type': CONFIG_DUMP_TYPES.nameTable, ...meta(input.typeUrls.nameTable), table: input.nameTable.table });
  return { configs };
}

function secrets(creds: ConfigDumpInput['credentials']): object[] {
  if (!creds) return [];
  const version = creds.rotatedAt !== undefined ? String(creds.rotatedAt) : '';
  const last_updated = iso(creds.rotatedAt);
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  return [
    {
      name: 'default',
      version_info: version,
      last_updated,
      secret: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
        name: 'default',
        tls_certificate: { certificate_chain: { inline_bytes: b64(creds.certChainPem) }, private_key: { inline_string: '[redacted]' } },
      },
    },
    {
      name: 'ROOTCA',
      version_info: version,
      last_updated,
      secret: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
        name: 'ROOTCA',
        validation_context: { trusted_ca: { inline_bytes: b64(creds.rootsPem) } },
      },
    },
  ];
}
