/**
 * ProxyXdsState → one immutable compiled config. Each resource compiles on its own; a resource with
 * problems is reported (the caller NACKs it) and its last good version stays in service.
 */
import { TYPE_URLS } from '../../xds/index.js';
import type { ClusterSettings, LocalityGroup } from '../upstream/index.js';
import { Problems } from './config-util.js';
import { compileCluster, compileLoadAssignment } from './compile-clusters.js';
import { compileListener } from './compile-listeners.js';
import type { CompiledListener } from './compile-listeners.js';
import { compileRouteTable } from './compile-routes.js';
import type { RouteTable } from './compile-routes.js';
import type { ProxyXdsState, ResourceProblem } from './types.js';

export interface CompiledConfig {
  readonly listeners: ReadonlyMap<string, CompiledListener>;
  readonly routes: ReadonlyMap<string, RouteTable>;
  readonly clusters: ReadonlyMap<string, ClusterSettings>;
  /** By cluster name (EDS service name resolved), for EDS and STATIC clusters. */
  readonly endpoints: ReadonlyMap<string, LocalityGroup[]>;
}

export const EMPTY_CONFIG: CompiledConfig = { listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map() };

function compileAll<In, Out>(
  typeUrl: string,
  input: ReadonlyMap<string, In>,
  previous: ReadonlyMap<string, Out>,
  compile: (value: In, problems: Problems) => Out,
  problems: ResourceProblem[],
): Map<string, Out> {
  const out = new Map<string, Out>();
  for (const [name, value] of input) {
    const p = new Problems();
    let compiled: Out | undefined;
    try {
      compiled = compile(value, p);
    } catch (err) {
      p.add('', `cannot compile: ${(err as Error).message}`);
    }
    if (p.list.length === 0 && compiled !== undefined) {
      out.set(name, compiled);
      continue;
    }
    problems.push({ typeUrl, name, message: p.list.map((x) => (x.path ? `${x.path}: ${x.message}` : x.message)).join('; ') });
    const last = previous.get(name);
    if (last !== undefined) out.set(name, last);
  }
  return out;
}

/** Compiles a full state; rejected resources keep their previous compiled version when there is one. */
export function compileState(state: ProxyXdsState, previous: CompiledConfig): { config: CompiledConfig; problems: ResourceProblem[] } {
  const problems: ResourceProblem[] = [];
  type Obj = Record<string, unknown>;
  const listeners = compileAll(TYPE_URLS.listener, state.listeners, previous.listeners, (l, p) => compileListener(l as unknown as Obj, p), problems);
  const routes = compileAll(TYPE_URLS.route, state.routes, previous.routes, (r, p) => compileRouteTable(r as unknown as Obj, p), problems);
  const clusters = compileAll(TYPE_URLS.cluster, state.clusters, previous.clusters, (c, p) => compileCluster(c as unknown as Obj, p), problems);
  const assignments = compileAll(TYPE_URLS.endpoint, state.endpoints, new Map(), (e, p) => compileLoadAssignment(e as unknown as Obj, p), problems);

  const endpoints = new Map<string, LocalityGroup[]>();
  for (const [name, raw] of state.clusters) {
    const c = raw as unknown as { type?: string; load_assignment?: Obj; eds_cluster_config?: { service_name?: string } };
    if (c.type === 'EDS') {
      const service = c.eds_cluster_config?.service_name || name;
      const groups = assignments.get(service) ?? previous.endpoints.get(name);
      if (groups) endpoints.set(name, groups);
    } else if (c.load_assignment) {
      const p = new Problems();
      endpoints.set(name, compileLoadAssignment(c.load_assignment, p, 'load_assignment.'));
    }
  }
  return { config: { listeners, routes, clusters, endpoints }, problems };
}
