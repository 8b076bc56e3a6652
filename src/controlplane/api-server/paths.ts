import { HttpError } from './status.js';
import type { ResourcePath } from './context.js';

/** Every URL the API serves, classified. */
export type Route =
  | { type: 'healthz' }
  | { type: 'version' }
  | { type: 'apiVersions' }
  | { type: 'apiGroups' }
  | { type: 'apiResources'; group: string; version: string }
  | { type: 'crossmesh'; action: 'apply' | 'delete' }
  | { type: 'resource'; path: ResourcePath };

const notFound = (p: string): HttpError =>
  new HttpError(404, 'NotFound', `the server could not find the requested resource (${p})`);

function decode(seg: string, whole: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new HttpError(400, 'BadRequest', `malformed URL path ${JSON.stringify(whole)}`);
  }
}

/**
 * `/api/v1/…` is the core group; `/apis/{group}/{version}/…` the others. After the version:
 * `namespaces/{ns}/{plural}[/{name}]` or `{plural}[/{name}]`; `/apis/crossmesh.io/v1/{apply,delete}` are ours.
 */
export function parsePath(pathname: string): Route {
  const segs = pathname.split('/').filter((s) => s !== '').map((s) => decode(s, pathname));
  if (segs.length === 1 && (segs[0] === 'healthz' || segs[0] === 'livez' || segs[0] === 'readyz')) return { type: 'healthz' };
  if (segs.length === 1 && segs[0] === 'version') return { type: 'version' };
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api') {
    if (segs.length === 1) return { type: 'apiVersions' };
    if (segs[1] !== 'v1') throw notFound(pathname);
    group = '';
    version = 'v1';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    if (segs.length === 1) return { type: 'apiGroups' };
    if (segs.length === 2) throw notFound(pathname);
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else {
    throw notFound(pathname);
  }
  if (rest.length === 0) return { type: 'apiResources', group, version };
  if (group === 'crossmesh.io' && rest.length === 1 && (rest[0] === 'apply' || rest[0] === 'delete')) {
    return { type: 'crossmesh', action: rest[0] };
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    if (rest.length > 4) throw notFound(pathname); // subresources (status, scale, …) are not served
    return { type: 'resource', path: { group, version, namespace: rest[1]!, plural: rest[2]!, ...(rest[3] !== undefined ? { name: rest[3] } : {}) } };
  }
  if (rest.length > 2) throw notFound(pathname);
  return { type: 'resource', path: { group, version, plural: rest[0]!, ...(rest[1] !== undefined ? { name: rest[1] } : {}) } };
}
