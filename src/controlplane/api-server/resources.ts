import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resource } from '../../api/types.js';
import { CrossmeshError, ValidationError } from '../../shared/errors.js';
import {
  AlreadyExistsError,
  ConflictError,
  LabelSelectorError,
  NotFoundError,
  StoreClosedError,
  StoreWriteError,
  groupOf,
} from '../store/index.js';
import type { ResourceKey } from '../store/index.js';
import type { HandlerContext, ResourcePath } from './context.js';
import { infoForKind, kindForPlural, pluralize } from './kinds.js';
import type { KindInfo } from './kinds.js';
import { HttpError, invalid, parseBody, readBody, sendJson, statusOf } from './status.js';
import { serveWatch } from './watch.js';
import { handlePatch } from './patch.js';

/** A resource URL bound to a kind. `namespace` undefined on a list means all namespaces. */
export interface Resolved {
  info: KindInfo;
  group: string;
  apiVersion: string;
  namespace: string | undefined;
  name?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Finds the kind behind a plural: the table, then kinds already stored in that group, then the body's kind. */
export function resolve(ctx: HandlerContext, p: ResourcePath, bodyKind?: unknown): Resolved {
  let info = kindForPlural(p.plural);
  const known = info !== undefined;
  if (!info) {
    const stored = ctx.store.list().items.find((o) => groupOf(o.apiVersion) === p.group && pluralize(o.kind) === p.plural);
    const kind = stored?.kind ?? (typeof bodyKind === 'string' && pluralize(bodyKind) === p.plural ? bodyKind : undefined);
    if (!kind) {
      throw new HttpError(404, 'NotFound', `the server could not find the requested resource: no kind is served as "${p.plural}" in group "${p.group || 'core'}"`);
    }
    // Unknown kinds take their scope from the URL; listing them without a namespace spans all namespaces.
    info = { ...infoForKind(kind, p.group), namespaced: p.namespace !== undefined };
  }
  if (!info.namespaced && p.namespace !== undefined) {
    throw new HttpError(404, 'NotFound', `${info.plural} are cluster-scoped; use the URL without /namespaces/${p.namespace}`);
  }
  if (info.namespaced && p.name !== undefined && p.namespace === undefined) {
    throw new HttpError(404, 'NotFound', `${info.plural} are namespaced; use /namespaces/{namespace}/${info.plural}/${p.name}`);
  }
  return {
    info,
    group: p.group,
    apiVersion: p.group ? `${p.group}/${p.version}` : p.version,
    namespace: known ? (info.namespaced ? p.namespace : '') : (p.namespace ?? (p.name === undefined ? undefined : '')),
    ...(p.name !== undefined ? { name: p.name } : {}),
  };
}

export function keyFor(r: Resolved, name: string): ResourceKey {
  return { group: r.group, kind: r.info.kind, namespace: r.namespace ?? '', name };
}

/** Objects are served at the version the client asked for (all versions share one schema here). */
export function present(o: Resource, apiVersion: string): Resource {
  return o.apiVersion === apiVersion ? o : { ...o, apiVersion };
}

/** Maps store failures to Kubernetes status codes and reasons. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ValidationError) return invalid(err.problems);
  if (err instanceof AlreadyExistsError) return new HttpError(409, 'AlreadyExists', err.message);
  if (err instanceof ConflictError) return new HttpError(409, 'Conflict', err.message);
  if (err instanceof NotFoundError) return new HttpError(404, 'NotFound', err.message);
  if (err instanceof LabelSelectorError) return new HttpError(400, 'BadRequest', err.message);
  if (err instanceof StoreClosedError || err instanceof StoreWriteError) return new HttpError(503, 'ServiceUnavailable', err.message);
  const code = err instanceof CrossmeshError ? ` (${err.code})` : '';
  return new HttpError(500, 'InternalError', `internal error${code}: ${err instanceof Error ? err.message : String(err)}`);
}

/** `metadata.name=x,metadata.namespace!=y`: the field selectors clients commonly send. */
export function parseFieldSelector(sel: string | null): (o: Resource) => boolean {
  if (!sel) return () => true;
  const tests = sel.split(',').map((clause) => {
    const m = /^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(\S*)\s*$/.exec(clause);
    if (!m) throw new HttpError(400, 'BadRequest', `fieldSelector ${JSON.stringify(sel)}: only metadata.name and metadata.namespace with =, ==, != are supported`);
    const [, field, op, value] = m;
    return (o: Resource) => {
      const actual = field === 'metadata.name' ? o.metadata.name : (o.metadata.namespace ?? '');
      return op === '!=' ? actual !== value : actual === value;
    };
  });
  return (o) => tests.every((t) => t(o));
}

export async function handleResource(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: ResourcePath,
  query: URLSearchParams,
): Promise<void> {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') {
    const r = resolve(ctx, p);
    if (r.name === undefined) {
      if (query.get('watch') === 'true' || query.get('watch') === '1') return serveWatch(ctx, req, res, r, query);
      return list(ctx, res, r, query);
    }
    const o = ctx.store.get(keyFor(r, r.name));
    if (!o) throw new HttpError(404, 'NotFound', `${r.info.plural} "${r.name}" not found`, { name: r.name, kind: r.info.plural });
    return sendJson(res, 200, present(o, r.apiVersion));
  }
  if (method === 'PUT' || method === 'POST') {
    const docs = parseBody(await readBody(req, ctx.maxBodyBytes), req.headers['content-type']);
    if (docs.length !== 1 || !isRecord(docs[0])) throw new HttpError(400, 'BadRequest', 'request body must be one object');
    const body = docs[0];
    const r = resolve(ctx, p, body.kind);
    if (method === 'PUT' && r.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'PUT needs an object URL (…/{plural}/{name})');
    if (method === 'POST' && r.name !== undefined) throw new HttpError(405, 'MethodNotAllowed', 'POST goes to the collection URL (…/{plural})');
    if (r.info.namespaced && r.namespace === undefined) throw new HttpError(404, 'NotFound', `${r.info.plural} are namespaced; POST to /namespaces/{namespace}/${r.info.plural}`);
    const obj = bindToUrl(r, body);
    const problems = ctx.validate([obj]);
    if (problems.length > 0) throw invalid(problems, obj.metadata.name, r.info.kind);
    const result = await ctx.store.apply([obj], { mode: method === 'POST' ? 'create' : 'apply', dryRun: query.get('dryRun') === 'All' });
    const out = result.outcomes[0]!;
    return sendJson(res, out.action === 'created' ? 201 : 200, present(out.resource, r.apiVersion));
  }
  if (method === 'PATCH') return handlePatch(ctx, req, res, p, query);
  if (method === 'DELETE') {
    const r = resolve(ctx, p);
    if (r.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'deleting a whole collection is not supported; use POST /apis/crossmesh.io/v1/delete');
    const result = await ctx.store.delete([keyFor(r, r.name)]);
    const self = result.deleted.find((o) => o.kind === r.info.kind && o.metadata.name === r.name);
    if (result.deleted.length === 0) throw new HttpError(404, 'NotFound', `${r.info.plural} "${r.name}" not found`, { name: r.name, kind: r.info.plural });
    const extra = result.deleted.length - (self ? 1 : 0);
    const message = extra > 0 ? `${r.info.plural} "${r.name}" deleted with ${extra} object(s) in it` : `${r.info.plural} "${r.name}" deleted`;
    return sendJson(
      res,
      200,
      statusOf(200, '', message, { name: r.name, group: r.group, kind: r.info.plural, ...(self?.metadata.uid ? { uid: self.metadata.uid } : {}) }),
    );
  }
  throw new HttpError(405, 'MethodNotAllowed', `method ${method} is not supported`);
}

function list(ctx: HandlerContext, res: ServerResponse, r: Resolved, query: URLSearchParams): void {
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const result = ctx.store.list(`${r.info.kind}.${r.group}`, r.namespace, query.get('labelSelector') ?? undefined);
  sendJson(res, 200, {
    apiVersion: r.group ? r.apiVersion : 'v1',
    kind: `${r.info.kind}List`,
    metadata: { resourceVersion: String(result.revision) },
    items: result.items.filter(fields).map((o) => present(o, r.apiVersion)),
  });
}

/** Makes the body agree with its URL, filling what is missing and refusing contradictions (400). */
function bindToUrl(r: Resolved, body: Record<string, unknown>): Resource {
  const obj = { ...body } as unknown as Resource;
  if (obj.kind === undefined) obj.kind = r.info.kind;
  if (obj.kind !== r.info.kind) throw new HttpError(400, 'BadRequest', `body kind ${JSON.stringify(obj.kind)} does not match the URL (${r.info.plural} hold ${r.info.kind})`);
  if (obj.apiVersion === undefined) obj.apiVersion = r.apiVersion;
  if (typeof obj.apiVersion !== 'string' || groupOf(obj.apiVersion) !== r.group) {
    throw new HttpError(400, 'BadRequest', `body apiVersion ${JSON.stringify(obj.apiVersion)} does not match the URL's group "${r.group || 'core'}"`);
  }
  if (obj.metadata === undefined) obj.metadata = {} as Resource['metadata'];
  if (!isRecord(obj.metadata)) throw new HttpError(400, 'BadRequest', 'metadata must be an object');
  const meta = { ...obj.metadata };
  obj.metadata = meta;
  if (r.name !== undefined) {
    if (meta.name === undefined) meta.name = r.name;
    if (meta.name !== r.name) throw new HttpError(400, 'BadRequest', `metadata.name ${JSON.stringify(meta.name)} does not match the name in the URL (${JSON.stringify(r.name)})`);
  }
  if (r.namespace) {
    if (meta.namespace !== undefined && meta.namespace !== r.namespace) {
      throw new HttpError(400, 'BadRequest', `metadata.namespace ${JSON.stringify(meta.namespace)} does not match the namespace in the URL (${JSON.stringify(r.namespace)})`);
    }
    meta.namespace = r.namespace;
  } else {
    delete meta.namespace;
  }
  return obj;
}
