/**
 * Optional check that a snapshot is self-consistent, as a proxy would need it: every EDS cluster's
 * endpoints exist, every RDS name a listener uses exists, every cluster a route targets exists.
 * Returns every problem found; an empty list means consistent.
 */
import type { Problem } from '../../shared/index.js';
import { TYPE_URLS, decodeResource } from '../../xds/index.js';
import type { Snapshot } from './snapshot.js';

export function checkSnapshotConsistency(snapshot: Snapshot): Problem[] {
  const problems: Problem[] = [];
  const names = (typeUrl: string): ReadonlySet<string> => new Set(snapshot.get(typeUrl)?.resources.keys() ?? []);
  const endpoints = names(TYPE_URLS.endpoint);
  const routes = names(TYPE_URLS.route);
  const clusters = names(TYPE_URLS.cluster);

  for (const [name, any] of snapshot.get(TYPE_URLS.cluster)?.resources ?? []) {
    const c = decodeResource<{ type?: string; eds_cluster_config?: { service_name?: string } }>(any).value;
    if (c.type !== 'EDS') continue;
    const service = c.eds_cluster_config?.service_name || name;
    if (!endpoints.has(service)) {
      problems.push({ resource: `Cluster/${name}`, path: 'eds_cluster_config.service_name', message: `no ClusterLoadAssignment named ${JSON.stringify(service)}` });
    }
  }

  for (const [name, any] of snapshot.get(TYPE_URLS.listener)?.resources ?? []) {
    for (const { path, routeName } of rdsReferences(decodeResource(any).value)) {
      if (!routes.has(routeName)) {
        problems.push({ resource: `Listener/${name}`, path, message: `no RouteConfiguration named ${JSON.stringify(routeName)}` });
      }
    }
  }

  for (const [name, any] of snapshot.get(TYPE_URLS.route)?.resources ?? []) {
    for (const { path, cluster } of clusterReferences(decodeResource(any).value)) {
      if (!clusters.has(cluster)) {
        problems.push({ resource: `RouteConfiguration/${name}`, path, message: `no Cluster named ${JSON.stringify(cluster)}` });
      }
    }
  }
  return problems;
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined => (v && typeof v === 'object' ? (v as Obj) : undefined);
const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function rdsReferences(listener: Obj): Array<{ path: string; routeName: string }> {
  const out: Array<{ path: string; routeName: string }> = [];
  const fromHcm = (hcm: Obj | undefined, path: string): void => {
    const name = asObj(hcm?.rds)?.route_config_name;
    if (typeof name === 'string') out.push({ path: `${path}.rds.route_config_name`, routeName: name });
  };
  fromHcm(asObj(asObj(listener.api_listener)?.api_listener), 'api_listener.api_listener');
  const chains: Array<[string, unknown]> = asList(listener.filter_chains).map((c, i) => [`filter_chains[${i}]`, c]);
  if (listener.default_filter_chain) chains.push(['default_filter_chain', listener.default_filter_chain]);
  for (const [path, chain] of chains) {
    asList(asObj(chain)?.filters).forEach((f, j) => fromHcm(asObj(asObj(f)?.typed_config), `${path}.filters[${j}].typed_config`));
  }
  return out;
}

function clusterReferences(route: Obj): Array<{ path: string; cluster: string }> {
  const out: Array<{ path: string; cluster: string }> = [];
  asList(route.virtual_hosts).forEach((vh, i) => {
    asList(asObj(vh)?.routes).forEach((r, j) => {
      const action = asObj(asObj(r)?.route);
      const base = `virtual_hosts[${i}].routes[${j}].route`;
      if (typeof action?.cluster === 'string') out.push({ path: `${base}.cluster`, cluster: action.cluster });
      asList(asObj(action?.weighted_clusters)?.clusters).forEach((wc, k) => {
        const n = asObj(wc)?.name;
        if (typeof n === 'string') out.push({ path: `${base}.weighted_clusters.clusters[${k}].name`, cluster: n });
      });
    });
  });
  return out;
}
