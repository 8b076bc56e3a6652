import type { Resource } from '../../api/types.js';
import type { ResourceKey } from './types.js';

/** `networking.istio.io/v1` → `networking.istio.io`; `v1` → `''`. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export function keyOf(r: Pick<Resource, 'apiVersion' | 'kind' | 'metadata'>): ResourceKey {
  return {
    group: groupOf(r.apiVersion),
    kind: r.kind,
    namespace: r.metadata.namespace ?? '',
    name: r.metadata.name,
  };
}

/** A string that orders like (group, kind, namespace, name); NUL cannot occur in any part. */
export function keyString(k: ResourceKey): string {
  return `${k.group}\u0000${k.kind}\u0000${k.namespace}\u0000${k.name}`;
}

/** How logs and errors name a key: `Kind/ns/name` or `Kind/name`, with `.group` when not core. */
export function formatKey(k: ResourceKey): string {
  const kind = k.group ? `${k.kind}.${k.group}` : k.kind;
  return k.namespace ? `${kind}/${k.namespace}/${k.name}` : `${kind}/${k.name}`;
}

/** Parses the `kind` filter of Store.list: `Kind` (any group) or `Kind.group` (`Service.` = core). */
export function parseKindFilter(kind: string | undefined): { kind?: string; group?: string } {
  if (kind === undefined || kind === '') return {};
  const dot = kind.indexOf('.');
  if (dot < 0) return { kind };
  return { kind: kind.slice(0, dot), group: kind.slice(dot + 1) };
}

export function isCoreNamespace(k: ResourceKey): boolean {
  return k.group === '' && k.kind === 'Namespace';
}
