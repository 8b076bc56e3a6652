import type { AnyResource, DestinationRule, Service, ServiceEntry, VirtualService } from './kinds.js';
import { ofKind } from './kinds.js';
import type { ValidateOptions, ValidatedResource } from './validate.js';
import type { Destination } from './schema/virtual-service.js';

// Rules that span resources of one input (one apply): duplicates, and references between VirtualServices,
// DestinationRules and Services. A reference is only checked when its target kind for that host is part
// of the same input: other targets may already live in the cluster.

/** One cross-resource finding, located in the resource it is reported on. */
export interface CheckFinding {
  readonly item: ValidatedResource;
  readonly path: string;
  readonly message: string;
}

/**
 * Resolves a host as Istio does for a resource in `namespace`: a short name ("reviews") becomes
 * `reviews.<namespace>.svc.<domainSuffix>`; anything with a dot is taken as written.
 */
export function resolveHost(host: string, namespace: string, domainSuffix = 'cluster.local'): string {
  return host.includes('.') || host.startsWith('*') ? host.toLowerCase() : `${host.toLowerCase()}.${namespace}.svc.${domainSuffix}`;
}

function group(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function ns(r: AnyResource): string {
  return r.metadata.namespace ?? '';
}

export function crossCheck(items: readonly ValidatedResource[], options: ValidateOptions): CheckFinding[] {
  const out: CheckFinding[] = [];
  const suffix = options.domainSuffix ?? 'cluster.local';

  const seen = new Map<string, ValidatedResource>();
  for (const item of items) {
    const r = item.resource;
    const key = `${group(r.apiVersion)}/${r.kind}/${ns(r)}/${r.metadata.name}`;
    const first = seen.get(key);
    if (first) {
      out.push({ item, path: 'metadata.name', message: `duplicate resource: also defined in ${first.file} (document ${first.index})` });
    } else seen.set(key, item);
  }

  const byItem = new Map(items.map((i) => [i.resource, i]));
  const resources = items.map((i) => i.resource);

  // host → subsets defined for it, and which DestinationRules define them
  const subsets = new Map<string, { names: Set<string>; rules: string[] }>();
  for (const dr of ofKind(resources, 'DestinationRule') as DestinationRule[]) {
    const host = resolveHost(dr.spec.host, ns(dr), suffix);
    const entry = subsets.get(host) ?? { names: new Set<string>(), rules: [] };
    for (const s of dr.spec.subsets ?? []) entry.names.add(s.name);
    entry.rules.push(`${ns(dr)}/${dr.metadata.name}`);
    subsets.set(host, entry);
  }

  // host → ports served, from Services and ServiceEntries of this input
  const ports = new Map<string, { ports: Set<number>; owner: string }>();
  for (const svc of ofKind(resources, 'Service') as Service[]) {
    ports.set(`${svc.metadata.name}.${ns(svc)}.svc.${suffix}`, {
      ports: new Set((svc.spec.ports ?? []).map((p) => p.port)),
      owner: `Service ${ns(svc)}/${svc.metadata.name}`,
    });
  }
  for (const se of ofKind(resources, 'ServiceEntry') as ServiceEntry[]) {
    if (!se.spec.ports) continue;
    for (const h of se.spec.hosts) {
      ports.set(resolveHost(h, ns(se), suffix), {
        ports: new Set(se.spec.ports.map((p) => p.number)),
        owner: `ServiceEntry ${ns(se)}/${se.metadata.name}`,
      });
    }
  }

  for (const vs of ofKind(resources, 'VirtualService') as VirtualService[]) {
    const item = byItem.get(vs)!;
    for (const { path, destination } of destinations(vs)) {
      const host = resolveHost(destination.host, ns(vs), suffix);
      const known = subsets.get(host);
      if (destination.subset !== undefined && known && !known.names.has(destination.subset)) {
        const defined = known.names.size > 0 ? [...known.names].join(', ') : 'none';
        out.push({
          item,
          path: `${path}.subset`,
          message: `unknown subset "${destination.subset}": DestinationRule ${known.rules.join(', ')} defines ${defined}`,
        });
      }
      const served = ports.get(host);
      const number = destination.port?.number;
      if (number !== undefined && served && served.ports.size > 0 && !served.ports.has(number)) {
        out.push({
          item,
          path: `${path}.port.number`,
          message: `port ${number} is not a port of ${served.owner} (ports: ${[...served.ports].join(', ')})`,
        });
      }
    }
  }

  for (const secret of ofKind(resources, 'Secret')) {
    // A remote secret carries one kubeconfig per cluster id; without one it silently does nothing.
    if (secret.metadata.labels?.['istio/multiCluster'] === 'true') {
      const keys = Object.keys({ ...secret.data, ...secret.stringData });
      if (keys.length === 0) {
        out.push({ item: byItem.get(secret)!, path: 'data', message: 'a remote secret (istio/multiCluster: "true") needs one kubeconfig per cluster id' });
      }
    }
  }
  return out;
}

/** Every destination a VirtualService sends (or mirrors) traffic to, with its field path. */
function destinations(vs: VirtualService): Array<{ path: string; destination: Destination }> {
  const out: Array<{ path: string; destination: Destination }> = [];
  vs.spec.http?.forEach((r, i) => {
    r.route?.forEach((d, j) => out.push({ path: `spec.http[${i}].route[${j}].destination`, destination: d.destination }));
    if (r.mirror) out.push({ path: `spec.http[${i}].mirror`, destination: r.mirror });
    r.mirrors?.forEach((m, j) => out.push({ path: `spec.http[${i}].mirrors[${j}].destination`, destination: m.destination }));
  });
  vs.spec.tcp?.forEach((r, i) => r.route.forEach((d, j) => out.push({ path: `spec.tcp[${i}].route[${j}].destination`, destination: d.destination })));
  vs.spec.tls?.forEach((r, i) => r.route.forEach((d, j) => out.push({ path: `spec.tls[${i}].route[${j}].destination`, destination: d.destination })));
  return out;
}
