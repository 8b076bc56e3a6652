import type { z } from 'zod';
import { typeName } from './schema/common.js';

// Turns zod issues into the short, human messages validate prints, and zod paths into
// `spec.http[0].route[1].weight`.

type RawIssue = z.core.$ZodRawIssue;
type Issue = z.core.$ZodIssue;

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Formats a path as `a.b[0]["odd key"]`. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      out += IDENT.test(key) ? (out === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** The per-parse error map: used wherever a schema did not set its own message. */
export const errorMap: z.core.$ZodErrorMap = (iss: RawIssue) => {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'required';
      const expected = iss.expected === 'int' ? 'integer' : iss.expected;
      return `expected ${expected}, got ${typeName(iss.input)}`;
    }
    case 'invalid_value': {
      const values = (iss.values as unknown[]).map(show).join(', ');
      if (iss.input === undefined) return `required: one of ${values}`;
      return iss.values.length === 1 ? `must be ${values} (got ${show(iss.input)})` : `must be one of ${values} (got ${show(iss.input)})`;
    }
    case 'too_small': {
      const min = Number(iss.minimum);
      if (iss.origin === 'array') return `must have at least ${min} item${min === 1 ? '' : 's'}`;
      if (iss.origin === 'string') return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return `must be ${iss.inclusive === false ? '>' : '>='} ${min}`;
    }
    case 'too_big': {
      const max = Number(iss.maximum);
      if (iss.origin === 'array') return `must have at most ${max} items`;
      if (iss.origin === 'string') return `must be at most ${max} characters`;
      return `must be ${iss.inclusive === false ? '<' : '<='} ${max}`;
    }
    case 'invalid_format':
      return `invalid ${iss.format}`;
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'invalid_key':
      return 'invalid key';
    default:
      return undefined;
  }
};

/** A field problem found by a schema, before file and resource are attached. */
export interface FieldProblem {
  path: string;
  message: string;
}

/**
 * Flattens zod issues into field problems: one per unknown key (with a suggestion when a known key is
 * close), record-key problems reported at the key itself.
 */
export function issuesToProblems(issues: readonly Issue[], root: z.ZodType, pathPrefix = ''): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const iss of issues) {
    const path = iss.path as PropertyKey[];
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeys(root, path);
      for (const key of iss.keys) {
        const hint = suggest(key, known);
        out.push({
          path: formatPath([...path, key], pathPrefix),
          message: `unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
        });
      }
    } else if (iss.code === 'invalid_key') {
      const inner = iss.issues[0]?.message ?? 'invalid key';
      out.push({ path: formatPath(path, pathPrefix), message: `invalid key: ${inner}` });
    } else {
      out.push({ path: formatPath(path, pathPrefix), message: iss.message });
    }
  }
  return out;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  getter?: () => z.ZodType;
}

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object keys a schema accepts at a path, for "did you mean" hints. */
function knownKeys(root: z.ZodType, path: readonly PropertyKey[]): string[] {
  let candidates: z.ZodType[] = [root];
  for (const seg of [...path, undefined]) {
    const next: z.ZodType[] = [];
    for (const c of candidates.flatMap(unwrap)) {
      const def = defOf(c);
      if (seg === undefined) {
        if (def.type === 'object' && def.shape) return Object.keys(def.shape);
        continue;
      }
      if (def.type === 'object' && def.shape && typeof seg === 'string' && def.shape[seg]) next.push(def.shape[seg]);
      else if (def.type === 'array' && def.element && typeof seg === 'number') next.push(def.element);
      else if (def.type === 'record' && def.valueType) next.push(def.valueType);
    }
    candidates = next;
    if (candidates.length === 0) return [];
  }
  return [];
}

function unwrap(s: z.ZodType): z.ZodType[] {
  const out: z.ZodType[] = [];
  const stack = [s];
  for (let guard = 0; stack.length > 0 && guard < 64; guard++) {
    const cur = stack.pop()!;
    const def = defOf(cur);
    if (def.innerType) stack.push(def.innerType);
    else if (def.type === 'pipe' && def.in) stack.push(def.in);
    else if (def.type === 'lazy' && def.getter) stack.push(def.getter());
    else if (def.type === 'union' && def.options) stack.push(...def.options);
    else out.push(cur);
  }
  return out;
}

/** The closest known key within edit distance 2 (or differing only in case), if any. */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prevPrev: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      // Adjacent transposition ("weigth" for "weight") counts as one edit.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prevPrev[j - 2]! + 1);
      cur.push(d);
    }
    prevPrev = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
