import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resource } from '../../api/types.js';
import { ConflictError } from '../store/index.js';
import type { HandlerContext, ResourcePath } from './context.js';
import { keyFor, present, resolve } from './resources.js';
import { HttpError, invalid, parseBody, readBody, sendJson } from './status.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else (arrays too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * PATCH on an object URL. `application/merge-patch+json` (and plain JSON) is a JSON merge patch of the stored object;
 * `application/apply-patch+yaml` (kubectl apply --server-side) replaces the object with the one sent, creating it if
 * needed (there is no field ownership here). A strategic merge patch from `kubectl apply` is recognised by the
 * last-applied annotation and stores that manifest; other strategic patches work when they hold no lists (else 415).
 * JSON patch is refused with 415.
 */
export async function handlePatch(
  ctx: HandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: ResourcePath,
  query: URLSearchParams,
): Promise<void> {
  const type = (req.headers['content-type'] ?? 'application/merge-patch+json').split(';')[0]!.trim().toLowerCase();
  let serverSideApply = type === 'application/apply-patch+yaml' || type === 'application/apply-patch+json';
  const strategic = type === 'application/strategic-merge-patch+json';
  if (!serverSideApply && !strategic && type !== 'application/merge-patch+json' && type !== 'application/json') {
    throw new HttpError(
      415,
      'UnsupportedMediaType',
      `PATCH with ${type} is not supported; use application/merge-patch+json, or application/apply-patch+yaml (kubectl apply --server-side)`,
    );
  }
  const docs = parseBody(await readBody(req, ctx.maxBodyBytes), serverSideApply ? 'application/yaml' : 'application/json');
  if (docs.length !== 1 || !isRecord(docs[0])) throw new HttpError(400, 'BadRequest', 'a patch must be one object');
  let patch = docs[0];
  if (strategic) {
    const lastApplied = fromLastApplied(patch);
    if (lastApplied) {
      // kubectl apply: the annotation it sets holds the whole new manifest, which is what we store (as crossmesh apply).
      patch = lastApplied;
      serverSideApply = true;
    } else if (hasListsOrDirectives(patch)) {
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        'strategic merge patches that touch lists are not supported; use kubectl apply (client- or server-side), a merge patch, or crossmesh apply',
      );
    }
    // Without lists or directives, a strategic merge patch means the same as a JSON merge patch.
  }
  const r = resolve(ctx, p, patch.kind);
  if (r.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'PATCH needs an object URL (…/{plural}/{name})');
  const dryRun = query.get('dryRun') === 'All';
  // Merge patches race with other writers: retry on a conflicting concurrent write, as Kubernetes does.
  for (let attempt = 0; ; attempt++) {
    const current = ctx.store.get(keyFor(r, r.name));
    if (!current && !serverSideApply) {
      throw new HttpError(404, 'NotFound', `${r.info.plural} "${r.name}" not found`, { name: r.name, kind: r.info.plural });
    }
    const merged = (serverSideApply ? { ...patch } : mergePatch(current, patch)) as Resource;
    if (!isRecord(merged.metadata)) merged.metadata = {} as Resource['metadata'];
    merged.metadata = { ...merged.metadata, name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) };
    if (merged.kind === undefined) merged.kind = r.info.kind;
    if (merged.apiVersion === undefined) merged.apiVersion = r.apiVersion;
    if (merged.kind !== r.info.kind) throw new HttpError(400, 'BadRequest', `kind ${JSON.stringify(merged.kind)} does not match the URL (${r.info.plural} hold ${r.info.kind})`);
    if (current && !serverSideApply) merged.metadata.resourceVersion = current.metadata.resourceVersion;
    else delete merged.metadata.resourceVersion;
    const problems = ctx.validate([merged]);
    if (problems.length > 0) throw invalid(problems, r.name, r.info.kind);
    try {
      const result = await ctx.store.apply([merged], { dryRun });
      const out = result.outcomes[0]!;
      return sendJson(res, out.action === 'created' ? 201 : 200, present(out.resource, r.apiVersion));
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 4) throw err;
    }
  }
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** The full manifest kubectl apply records in its annotation, with the annotation kept on it. */
function fromLastApplied(patch: Record<string, unknown>): Record<string, unknown> | undefined {
  const meta = patch.metadata;
  const annotations = isRecord(meta) ? meta.annotations : undefined;
  const text = isRecord(annotations) ? annotations[LAST_APPLIED] : undefined;
  if (typeof text !== 'string') return undefined;
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(manifest)) return undefined;
  const m = isRecord(manifest.metadata) ? manifest.metadata : {};
  const a = isRecord(m.annotations) ? m.annotations : {};
  return { ...manifest, metadata: { ...m, annotations: { ...a, [LAST_APPLIED]: text } } };
}

function hasListsOrDirectives(v: unknown): boolean {
  if (Array.isArray(v)) return true;
  if (!isRecord(v)) return false;
  return Object.entries(v).some(([k, x]) => k.startsWith('$') || hasListsOrDirectives(x));
}
