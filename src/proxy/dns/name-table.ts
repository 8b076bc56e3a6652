/**
 * The mesh's names, as Istio ships them to its DNS proxy (NDS NameTable): fqdn → {ips, shortname,
 * namespace}. Turning a table into a lookup function and expanding a query name the way a stub resolver's
 * search list did are kept apart from the server, so both are plain functions with table tests.
 */

/** One host of the name table (Istio's NameTable.NameInfo). */
export interface NameInfo {
  /** Addresses to answer with; v4 and v6 mixed. Empty means the name exists but has no address. */
  ips: readonly string[];
  /** `Kubernetes` for services, otherwise the registry that defined the host. */
  registry?: string;
  /** The service's short name, for Kubernetes hosts (`httpbin`). */
  shortname?: string;
  /** The service's namespace, for Kubernetes hosts (`default`). */
  namespace?: string;
  /** More names answering with the same addresses. */
  altHosts?: readonly string[];
}

/** The whole table, keyed by fully qualified host name (no trailing dot). */
export interface NameTable {
  table: Readonly<Record<string, NameInfo>>;
}

/** What a lookup returns for a mesh name; undefined means "not a mesh name". */
export interface MeshAddresses {
  ips: readonly string[];
}

/** Looks up one exact, fully expanded name (lower-case, no trailing dot). */
export type MeshLookup = (name: string, type: number) => MeshAddresses | undefined;

/**
 * A lookup over a name table: by FQDN, by alt host, and by `shortname.namespace` (what `name.ns` looks like
 * once the resolver gave up on its search list). Bare short names are not indexed: they are ambiguous
 * across namespaces, and the search list already turns them into FQDNs in the client's namespace.
 */
export function createNameTableLookup(nameTable: NameTable): MeshLookup {
  const index = new Map<string, NameInfo>();
  const add = (name: string, info: NameInfo, override: boolean): void => {
    const key = name.toLowerCase().replace(/\.$/, '');
    if (override || !index.has(key)) index.set(key, info);
  };
  for (const [fqdn, info] of Object.entries(nameTable.table)) {
    add(fqdn, info, true);
    for (const alt of info.altHosts ?? []) add(alt, info, false);
  }
  for (const info of Object.values(nameTable.table)) {
    if (info.shortname && info.namespace) add(`${info.shortname}.${info.namespace}`, info, false);
  }
  return (name) => {
    const info = index.get(name);
    return info === undefined ? undefined : { ips: info.ips };
  };
}

/**
 * The names to try for a query, best first: the name as asked; then, when the resolver appended one of
 * its search domains, the name it started from and that name under each search domain (so
 * `httpbin.other.ns.svc.cluster.local` finds `httpbin.other.svc.cluster.local` in one round trip, as Istio's
 * proxy does); then the name as asked under each search domain, for clients that do not expand.
 */
export function candidateNames(qname: string, searchDomains: readonly string[]): string[] {
  const name = qname.toLowerCase().replace(/\.$/, '');
  const domains = searchDomains.map((d) => d.toLowerCase().replace(/^\.|\.$/g, '')).filter((d) => d !== '');
  const out = [name];
  for (const sd of domains) {
    if (!name.endsWith(`.${sd}`)) continue;
    const base = name.slice(0, -(sd.length + 1));
    out.push(base, ...domains.map((d) => `${base}.${d}`));
  }
  out.push(...domains.map((d) => `${name}.${d}`));
  return [...new Set(out)];
}
