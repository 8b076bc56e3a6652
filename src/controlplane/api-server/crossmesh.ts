import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resource } from '../../api/types.js';
import type { Problem } from '../../shared/errors.js';
import { formatKey, keyOf, keyString } from '../store/index.js';
import type { HandlerContext } from './context.js';
import { infoForKind } from './kinds.js';
import { HttpError, invalid, parseBody, readBody, sendJson } from './status.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Flattens a body into resources: one object, a `List` (or any `…List` with items), a JSON array, or several YAML
 * documents. Namespaced kinds without a namespace get `defaultNamespace`; cluster-scoped kinds lose theirs.
 */
export function itemsOf(docs: unknown[], defaultNamespace: string): { items: Resource[]; problems: Problem[] } {
  const flat: unknown[] = [];
  const walk = (d: unknown): void => {
    if (Array.isArray(d)) d.forEach(walk);
    else if (isRecord(d) && typeof d.kind === 'string' && d.kind.endsWith('List') && Array.isArray(d.items)) d.items.forEach(walk);
    else flat.push(d);
  };
  docs.forEach(walk);
  const items: Resource[] = [];
  const problems: Problem[] = [];
  flat.forEach((d, i) => {
    if (!isRecord(d) || !isRecord(d.metadata)) {
      problems.push({ resource: `items[${i}]`, message: 'must be an object with apiVersion, kind and metadata' });
      return;
    }
    const meta = { ...d.metadata } as unknown as Resource['metadata'];
    delete meta.resourceVersion; // apply is last-writer-wins, as kubectl apply
    const info = typeof d.kind === 'string' ? infoForKind(d.kind, typeof d.apiVersion === 'string' ? d.apiVersion : '') : undefined;
    if (info && !info.namespaced) delete meta.namespace;
    else if (!meta.namespace) meta.namespace = defaultNamespace;
    items.push({ ...(d as unknown as Resource), metadata: meta });
  });
  return { items, problems };
}

/** POST /apis/crossmesh.io/v1/apply and …/delete: many objects, one transaction, every problem reported at once. */
export async function handleCrossmesh(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  action: 'apply' | 'delete',
  query: URLSearchParams,
): Promise<void> {
  if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', `use POST for /apis/crossmesh.io/v1/${action}`);
  const docs = parseBody(await readBody(req, ctx.maxBodyBytes), req.headers['content-type']);
  const { items, problems } = itemsOf(docs, query.get('namespace') || 'default');
  if (problems.length > 0) throw invalid(problems);
  if (items.length === 0) throw new HttpError(400, 'BadRequest', 'the request holds no resources');
  if (action === 'apply') {
    const found = ctx.validate(items);
    if (found.length > 0) throw invalid(found);
    const result = await ctx.store.apply(items, { dryRun: query.get('dryRun') === 'All' });
    ctx.logger.info('api: applied', { revision: result.revision, resources: items.length });
    return sendJson(res, 200, {
      apiVersion: 'crossmesh.io/v1',
      kind: 'ApplyResult',
      metadata: { resourceVersion: String(result.revision) },
      results: result.outcomes.map((o) => ({ action: o.action, object: o.resource })),
    });
  }
  const keys = items.map((i) => keyOf(i));
  const result = await ctx.store.delete(keys);
  const gone = new Set(result.deleted.map((o) => keyString(keyOf(o))));
  // A Namespace whose contents went counts as deleted even if no Namespace object existed.
  for (const o of result.deleted) {
    if (o.metadata.namespace) gone.add(keyString({ group: '', kind: 'Namespace', namespace: '', name: o.metadata.namespace }));
  }
  ctx.logger.info('api: deleted', { revision: result.revision, resources: result.deleted.length });
  return sendJson(res, 200, {
    apiVersion: 'crossmesh.io/v1',
    kind: 'DeleteResult',
    metadata: { resourceVersion: String(result.revision) },
    deleted: result.deleted,
    notFound: keys.filter((k) => !gone.has(keyString(k))).map(formatKey),
  });
}
