import type { MeshConfig, Secret } from './kinds.js';
import type { HTTPRouteDestination, RouteDestination } from './schema/virtual-service.js';

// Small readers over validated resources that several components need; each encodes one documented rule.

/** A Secret's values as text: `data` decoded from base64, with `stringData` laid over it (Kubernetes' rule). */
export function secretData(secret: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
  return out;
}

/** Whether `host` matches a host pattern: exact, `*`, or `*.suffix` (which needs at least one more label). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern.toLowerCase() === host.toLowerCase();
}

/**
 * Whether a service FQDN is cluster-local under the mesh settings (never exported to other clusters).
 * Without a MeshConfig nothing is cluster-local.
 */
export function isClusterLocal(mesh: MeshConfig | undefined, fqdn: string): boolean {
  if (!mesh) return false;
  const patterns = [
    ...(mesh.spec.clusterLocalHosts ?? []),
    ...(mesh.spec.serviceSettings ?? []).filter((s) => s.settings.clusterLocal).flatMap((s) => s.hosts),
  ];
  return patterns.some((p) => hostMatches(p, fqdn));
}

/**
 * Effective weights of one route, as Istio applies them: a lone destination takes all traffic whatever its
 * weight; several destinations use their weights (validated to sum to 100, missing ones count 0).
 */
export function routeWeights(route: ReadonlyArray<HTTPRouteDestination | RouteDestination>): number[] {
  if (route.length === 1) return [100];
  return route.map((d) => d.weight ?? 0);
}
