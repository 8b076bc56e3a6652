import type { Problem } from '../shared/errors.js';
import { resourceRef } from './types.js';
import { ValidationError } from '../shared/errors.js';
import type { AnyResource, KindInfo } from './kinds.js';
import { KINDS, kindInfo } from './kinds.js';
import { errorMap, formatPath, issuesToProblems, suggest } from './issues.js';
import type { SourceDocument } from './parse.js';
import { parseDocuments } from './parse.js';
import { crossCheck } from './checks.js';
import { typeName } from './schema/common.js';

/** A valid resource and where it came from. */
export interface ValidatedResource {
  readonly resource: AnyResource;
  readonly file: string;
  /** 1-based document position in its file. */
  readonly index: number;
}

/**
 * The outcome of validating one input (one `apply`): every problem found, and the resources that passed
 * on their own. Callers that must not act on partial input check `problems.length === 0` first.
 */
export interface ValidationResult {
  readonly resources: readonly AnyResource[];
  readonly items: readonly ValidatedResource[];
  readonly problems: readonly Problem[];
}

export interface ValidateOptions {
  /** DNS suffix short host names resolve under; default `cluster.local`. */
  readonly domainSuffix?: string;
}

/**
 * Validates documents as one input: each against its kind's schema, then across resources (duplicates,
 * subset and port references). Never throws for any document content.
 */
export function validateResources(documents: readonly SourceDocument[], options: ValidateOptions = {}): ValidationResult {
  const problems: Problem[] = [];
  const items: ValidatedResource[] = [];
  for (const doc of documents) {
    const r = validateDocument(doc.value, doc.file, doc.index, '', options);
    problems.push(...r.problems);
    if (r.resource) items.push({ resource: r.resource, file: doc.file, index: doc.index });
  }
  for (const f of crossCheck(items, options)) {
    problems.push({ file: f.item.file, resource: resourceRef(f.item.resource), path: f.path, message: f.message });
  }
  return { resources: items.map((i) => i.resource), items, problems };
}

/** Parses and validates one text; throws ValidationError with every problem, else returns frozen resources. */
export function parseResources(text: string, file: string, options: ValidateOptions = {}): readonly AnyResource[] {
  const parsed = parseDocuments(text, file);
  const result = validateResources(parsed.documents, options);
  const problems = [...parsed.problems, ...result.problems];
  if (problems.length > 0) throw new ValidationError(problems);
  return result.resources;
}

interface DocumentResult {
  resource?: AnyResource;
  problems: Problem[];
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function refOf(value: unknown, info: KindInfo | undefined, index: number): string {
  if (!isObject(value) || typeof value.kind !== 'string' || value.kind === '') return `<document ${index}>`;
  const meta = isObject(value.metadata) ? value.metadata : {};
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : '<unnamed>';
  let ns = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
  if (info) ns = info.namespaced ? (ns ?? 'default') : undefined;
  return ns ? `${value.kind}/${ns}/${name}` : `${value.kind}/${name}`;
}

function validateDocument(value: unknown, file: string, index: number, prefix: string, options: ValidateOptions): DocumentResult {
  const at = (path: string) => (prefix === '' ? path : path === '' ? prefix : `${prefix}.${path}`);
  if (!isObject(value)) {
    const message = `expected a resource (an object with apiVersion, kind and metadata), got ${typeName(value)}`;
    return { problems: [{ file, resource: `<document ${index}>`, path: prefix || undefined, message }] };
  }
  const problems: Problem[] = [];
  const kind = value.kind;
  const apiVersion = value.apiVersion;
  const info = typeof kind === 'string' ? kindInfo(kind) : undefined;
  const resource = refOf(value, info, index);
  const problem = (path: string, message: string) => problems.push({ file, resource, path: at(path), message });

  if (apiVersion === undefined) problem('apiVersion', 'required');
  else if (typeof apiVersion !== 'string') problem('apiVersion', `expected string, got ${typeName(apiVersion)}`);
  if (kind === undefined) problem('kind', 'required');
  else if (typeof kind !== 'string') problem('kind', `expected string, got ${typeName(kind)}`);
  else if (!info) {
    const hint = suggest(kind, KINDS.map((k) => k.kind));
    problem('kind', `unknown kind "${kind}"${hint ? ` (did you mean "${hint}"?)` : ''}; accepted kinds: ${KINDS.map((k) => k.kind).join(', ')}`);
  }
  if (!info || typeof apiVersion !== 'string') return { problems };
  if (!info.apiVersions.includes(apiVersion)) {
    problem('apiVersion', `${info.kind} is not served at "${apiVersion}"; accepted: ${info.apiVersions.join(', ')}`);
    return { problems };
  }

  const parsed = info.schema.safeParse(value, { error: errorMap });
  if (!parsed.success) {
    for (const p of issuesToProblems(parsed.error.issues, info.schema)) problem(p.path, p.message);
    return { problems };
  }
  const out = parsed.data as Obj & { metadata: Obj };
  delete out.status;
  if (info.namespaced) out.metadata.namespace ??= 'default';
  else delete out.metadata.namespace;

  if (info.kind === 'Topology') {
    const clusters = (out.spec as { clusters: Array<{ manifests: unknown[] }> }).clusters;
    clusters.forEach((cluster, ci) => {
      const inline: ValidatedResource[] = [];
      const positions = new Map<ValidatedResource, number>();
      cluster.manifests = cluster.manifests.map((m, mi) => {
        if (typeof m === 'string') return m;
        const r = validateDocument(m, file, index, at(formatPath(['spec', 'clusters', ci, 'manifests', mi])), options);
        // Problems inside inline manifests name the Topology, with the full path into it.
        problems.push(...r.problems.map((p) => ({ ...p, resource })));
        if (r.resource) {
          const item = { resource: r.resource, file, index };
          inline.push(item);
          positions.set(item, mi);
        }
        return r.resource ?? m;
      });
      // Each cluster's manifests are one apply: the same cross-resource rules hold within it.
      for (const f of crossCheck(inline, options)) {
        problem(`${formatPath(['spec', 'clusters', ci, 'manifests', positions.get(f.item)!])}.${f.path}`, f.message);
      }
    });
    if (problems.length > 0) return { problems };
  }
  return { resource: deepFreeze(out) as AnyResource, problems };
}

/** Iterative deep freeze: validated resources are shared between components and must not change. */
export function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || Object.isFrozen(v)) continue;
    Object.freeze(v);
    for (const child of Object.values(v)) stack.push(child);
  }
  return root;
}
