/**
 * The proxy's xDS subscriptions and the full state it runs. CDS and LDS are wildcards; EDS follows the
 * EDS clusters CDS names, RDS the route configurations LDS names (as Envoy does). Every proposed update
 * goes through `validate` (the sidecar's apply): a rejected update is NACKed with the sidecar's message
 * and the last good state stays in force.
 */
import type { Logger } from '../../shared/index.js';
import { TYPE_URLS } from '../../xds/index.js';
import type { AdsClient, Cluster, HttpConnectionManager, Listener, ResourceUpdate } from '../../xds/index.js';
import type { NameTable } from '../dns/index.js';
import type { ProxyXdsState, SidecarProblem } from './sidecar-contract.js';

/** A version and the time it was accepted, for config_dump. */
export interface TypeVersion {
  version: string;
  acceptedAt: number;
}

export interface XdsStateOptions {
  ads: AdsClient;
  /** Subscribe to RDS (sidecars; a passthrough gateway has no HTTP routes). */
  routes: boolean;
  /** Subscribe to Istio's NDS name table. */
  nameTable: boolean;
  /** Tries a candidate state; problems of the updated type reject the update. */
  validate: (state: ProxyXdsState, changedType: string) => SidecarProblem[];
  /** After a rejected update, puts the last good state back in force. */
  restore: (state: ProxyXdsState) => void;
  /** Called after every accepted update. */
  onChange: (changedType: string) => void;
  logger: Logger;
  now: () => number;
}

export interface XdsState {
  current(): ProxyXdsState;
  nameTable(): NameTable | undefined;
  versions(): ReadonlyMap<string, TypeVersion>;
  /** True once CDS and LDS arrived and EDS/RDS answered for the names they asked for. */
  initialPushApplied(): boolean;
  rejections(): ReadonlyMap<string, { version: string; message: string }>;
  /** Moves the subscriptions to a new client (the old one closed); the state in force stays meanwhile. */
  rebind(client: AdsClient): void;
}

const EMPTY: ProxyXdsState = { listeners: new Map(), clusters: new Map(), routes: new Map(), endpoints: new Map() };

/** EDS names a set of clusters needs: the service_name of each EDS cluster, else its name. */
export function edsNamesOf(clusters: ReadonlyMap<string, Cluster>): string[] {
  const names = new Set<string>();
  for (const c of clusters.values()) if (c.type === 'EDS') names.add(c.eds_cluster_config?.service_name || c.name);
  return [...names].sort();
}

/** RDS names a set of listeners needs: every HttpConnectionManager's rds.route_config_name. */
export function rdsNamesOf(listeners: ReadonlyMap<string, Listener>): string[] {
  const names = new Set<string>();
  for (const l of listeners.values()) {
    for (const chain of [...(l.filter_chains ?? []), ...(l.default_filter_chain ? [l.default_filter_chain] : [])]) {
      for (const f of chain.filters ?? []) {
        const hcm = f.typed_config as (HttpConnectionManager & { '@type': string }) | undefined;
        const name = hcm?.rds?.route_config_name;
        if (name) names.add(name);
      }
    }
  }
  return [...names].sort();
}

function sameNames(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((n, i) => n === b[i]);
}

export function createXdsState(options: XdsStateOptions): XdsState {
  const { logger } = options;
  let ads = options.ads;
  let state: ProxyXdsState = EMPTY;
  let table: NameTable | undefined;
  const versions = new Map<string, TypeVersion>();
  const rejected = new Map<string, { version: string; message: string }>();
  // Names requested per named type, and whether an answer to exactly those names is still due.
  const requested = new Map<string, string[]>();
  const pending = new Set<string>();

  const requestNames = (typeUrl: string, names: string[]): void => {
    if (sameNames(requested.get(typeUrl), names)) return;
    requested.set(typeUrl, names);
    pending.add(typeUrl);
    // After the ACK of the update that named them, so the server sees the ACK first.
    queueMicrotask(() => ads.setNames(typeUrl, names));
  };

  const handler =
    <K extends keyof ProxyXdsState>(typeUrl: string, key: K) =>
    (update: ResourceUpdate): void | { reject: string } => {
      const next = { ...state, [key]: update.resources as unknown as ProxyXdsState[K] };
      let problems: SidecarProblem[];
      try {
        problems = options.validate(next, typeUrl).filter((p) => p.typeUrl === typeUrl);
      } catch (err) {
        // A data path that throws has not said what it kept: put the last good state back and NACK.
        problems = [{ typeUrl, name: '*', message: `data path failed to apply the update: ${(err as Error).message}` }];
      }
      if (problems.length > 0) {
        const message = problems.map((p) => `${p.name}: ${p.message}`).join('; ');
        rejected.set(typeUrl, { version: update.version, message });
        options.restore(state);
        return { reject: message };
      }
      state = next;
      versions.set(typeUrl, { version: update.version, acceptedAt: options.now() });
      rejected.delete(typeUrl);
      // An answer to names asked before the latest request (an empty one) does not settle that request.
      if (update.resources.size > 0 || (requested.get(typeUrl)?.length ?? 0) === 0) pending.delete(typeUrl);
      if (key === 'clusters') requestNames(TYPE_URLS.endpoint, edsNamesOf(state.clusters));
      if (key === 'listeners' && options.routes) requestNames(TYPE_URLS.route, rdsNamesOf(state.listeners));
      logger.debug('xds update applied', { typeUrl, version: update.version, resources: update.resources.size });
      options.onChange(typeUrl);
    };

  const bind = (client: AdsClient): void => {
    // A new client asks for the names the current state needs; its first answers replace the state whole.
    client.subscribe(TYPE_URLS.cluster, handler(TYPE_URLS.cluster, 'clusters'));
    client.subscribe(TYPE_URLS.endpoint, handler(TYPE_URLS.endpoint, 'endpoints'), requested.get(TYPE_URLS.endpoint) ?? []);
    client.subscribe(TYPE_URLS.listener, handler(TYPE_URLS.listener, 'listeners'));
    if (options.routes) client.subscribe(TYPE_URLS.route, handler(TYPE_URLS.route, 'routes'), requested.get(TYPE_URLS.route) ?? []);
    if (options.nameTable) client.subscribe(TYPE_URLS.nameTable, onNameTable);
  };
  const onNameTable = (update: ResourceUpdate): void => {
    // One unnamed resource; a missing table means no mesh names, not an error.
    const first = [...update.resources.values()][0] as { table?: NameTable['table'] } | undefined;
    const entries = Object.entries(first?.table ?? {}).map(([fqdn, info]) => [fqdn, { ...info, ips: [...((info as { ips?: string[] }).ips ?? [])] }]);
    table = { table: Object.fromEntries(entries) as NameTable['table'] };
    versions.set(TYPE_URLS.nameTable, { version: update.version, acceptedAt: options.now() });
    options.onChange(TYPE_URLS.nameTable);
  };
  requested.set(TYPE_URLS.endpoint, []);
  if (options.routes) requested.set(TYPE_URLS.route, []);
  bind(ads);

  return {
    current: () => state,
    nameTable: () => table,
    versions: () => versions,
    initialPushApplied() {
      if (!versions.has(TYPE_URLS.cluster) || !versions.has(TYPE_URLS.listener)) return false;
      for (const t of [TYPE_URLS.endpoint, ...(options.routes ? [TYPE_URLS.route] : [])]) {
        if (pending.has(t) && (requested.get(t)?.length ?? 0) > 0) return false;
      }
      return true;
    },
    rejections: () => rejected,
    rebind(client) {
      ads = client;
      bind(client);
    },
  };
}
