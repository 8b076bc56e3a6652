import { CrossmeshError } from '../../shared/errors.js';

/** One clause of a Kubernetes label selector. */
export type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

/** A parsed selector; an empty one matches everything. */
export interface LabelSelector {
  requirements: Requirement[];
  matches(labels: Record<string, string> | undefined): boolean;
}

export class LabelSelectorError extends CrossmeshError {
  constructor(selector: string, message: string) {
    super('E_LABEL_SELECTOR', `labelSelector ${JSON.stringify(selector)}: ${message}`);
  }
}

const keyRe = /^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;
const valueRe = /^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$/;

/** Splits on commas that are not inside parentheses (set-based values contain commas). */
function clauses(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((c) => c.trim());
}

/** Parses Kubernetes selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`. */
export function parseLabelSelector(selector: string | undefined): LabelSelector {
  const requirements: Requirement[] = [];
  const src = selector ?? '';
  if (src.trim() !== '') {
    for (const clause of clauses(src)) {
      requirements.push(parseClause(src, clause));
    }
  }
  return { requirements, matches: (labels) => requirements.every((r) => matchOne(r, labels ?? {})) };
}

function checkKey(src: string, key: string): string {
  if (!keyRe.test(key)) throw new LabelSelectorError(src, `invalid label key ${JSON.stringify(key)}`);
  return key;
}

function checkValue(src: string, value: string): string {
  if (!valueRe.test(value) || value.length > 63) {
    throw new LabelSelectorError(src, `invalid label value ${JSON.stringify(value)}`);
  }
  return value;
}

function parseClause(src: string, clause: string): Requirement {
  if (clause === '') throw new LabelSelectorError(src, 'empty requirement');
  const set = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(clause);
  if (set) {
    const values = set[3]!.split(',').map((v) => checkValue(src, v.trim()));
    return { op: set[2] as 'in' | 'notin', key: checkKey(src, set[1]!), values };
  }
  const cmp = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(clause);
  if (cmp) {
    return { op: cmp[2] === '!=' ? 'neq' : 'eq', key: checkKey(src, cmp[1]!), value: checkValue(src, cmp[3]!) };
  }
  if (clause.startsWith('!')) return { op: 'notexists', key: checkKey(src, clause.slice(1).trim()) };
  return { op: 'exists', key: checkKey(src, clause) };
}

function matchOne(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case 'eq':
      return has && v === r.value;
    case 'neq':
      return !has || v !== r.value;
    case 'in':
      return has && r.values.includes(v!);
    case 'notin':
      return !has || !r.values.includes(v!);
    case 'exists':
      return has;
    case 'notexists':
      return !has;
  }
}
