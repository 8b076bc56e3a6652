import { LineCounter, parseAllDocuments } from 'yaml';
import type { Problem } from '../shared/errors.js';
import { errorMessage } from '../shared/errors.js';

/** One document from an input file, before validation. `index` is its 1-based position in the file. */
export interface SourceDocument {
  readonly file: string;
  readonly index: number;
  readonly value: unknown;
}

/** Documents and the syntax problems found while reading them; a broken document yields a problem, not a value. */
export interface ParsedText {
  documents: SourceDocument[];
  problems: Problem[];
}

/** Documents nested deeper than this are refused before validation: no real manifest comes close. */
export const MAX_DEPTH = 64;

/**
 * Splits text into documents as `kubectl apply -f` does: multi-document YAML (`---`), JSON, and `kind: List`
 * whose `items` become separate documents. Never throws for any input.
 */
export function parseDocuments(text: string, file: string): ParsedText {
  const out: ParsedText = { documents: [], problems: [] };
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const values: Array<{ index: number; value: unknown }> = [];
  if (/\.json$/i.test(file)) {
    const parsed = parseJson(text, file, out.problems);
    if (parsed !== undefined) values.push({ index: 1, value: parsed });
  } else {
    parseYaml(text, file, values, out.problems);
  }
  for (const { index, value } of values) {
    if (value === null || value === undefined) continue; // empty document, e.g. a trailing `---`
    if (depthExceeds(value, MAX_DEPTH)) {
      out.problems.push({ file, message: `document ${index}: nested deeper than ${MAX_DEPTH} levels` });
      continue;
    }
    if (isList(value)) {
      if (!Array.isArray(value.items)) {
        out.problems.push({ file, resource: `List (document ${index})`, path: 'items', message: 'expected array' });
        continue;
      }
      for (const item of value.items) out.documents.push({ file, index, value: item });
      continue;
    }
    out.documents.push({ file, index, value });
  }
  return out;
}

function parseYaml(text: string, file: string, values: Array<{ index: number; value: unknown }>, problems: Problem[]): void {
  // The YAML parser recurses per level, and near stack exhaustion V8 can abort the whole process:
  // refuse absurd nesting before parsing.
  const tooDeep = flowNestingExceeds(text, MAX_DEPTH) ?? blockNestingExceeds(text, MAX_DEPTH);
  if (tooDeep !== undefined) {
    const before = text.slice(0, tooDeep);
    problems.push({ file, message: `line ${before.split('\n').length}, column ${tooDeep - before.lastIndexOf('\n')}: nested deeper than ${MAX_DEPTH} levels` });
    return;
  }
  const lineCounter = new LineCounter();
  let docs;
  try {
    docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    // The parser recurses; absurdly nested flow collections can exhaust the stack.
    problems.push({ file, message: `cannot parse YAML: ${err instanceof RangeError ? 'nested too deeply' : errorMessage(err)}` });
    return;
  }
  if (!Array.isArray(docs)) return; // an empty stream
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        const reason = /call stack/i.test(e.message) ? 'nested too deeply' : firstLine(e.message);
        problems.push({ file, message: `line ${line}, column ${col}: ${reason}` });
      }
      return;
    }
    try {
      values.push({ index: i + 1, value: doc.toJS({ maxAliasCount: 100 }) });
    } catch (err) {
      problems.push({ file, message: `document ${i + 1}: ${firstLine(errorMessage(err))}` });
    }
  });
}

function parseJson(text: string, file: string, problems: Problem[]): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = errorMessage(err);
    const at = /at position (\d+)/.exec(message);
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '');
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      const col = before.length - before.lastIndexOf('\n');
      problems.push({ file, message: `line ${line}, column ${col}: ${firstLine(reason)}` });
    } else {
      problems.push({ file, message: `invalid JSON: ${firstLine(reason)}` });
    }
    return undefined;
  }
}

function firstLine(s: string): string {
  const line = s.split('\n')[0]!.trim();
  return line.replace(/ at line \d+, column \d+:?$/, '');
}

function isList(v: unknown): v is { items: unknown } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.kind === 'string' && o.kind.endsWith('List') && o.apiVersion === 'v1' && 'items' in o;
}

/**
 * The offset where `[`/`{` nesting first exceeds `max`, outside quoted scalars and comments; a cheap
 * over-approximation that never needs the parser.
 */
function flowNestingExceeds(text: string, max: number): number | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'") {
      for (i++; i < text.length && text[i] !== c; i++) if (c === '"' && text[i] === '\\') i++;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '[' || c === '{') {
      if (++depth > max) return i;
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return undefined;
}

/** The offset of the first line whose indentation (counting `- ` entries) nests deeper than `max`. */
function blockNestingExceeds(text: string, max: number): number | undefined {
  const indents: number[] = [];
  let offset = 0;
  for (const line of text.split('\n')) {
    const start = offset;
    offset += line.length + 1;
    const m = /^( *)((?:- +)*)(.*)$/.exec(line);
    if (!m || m[3] === '' || m[3]!.startsWith('#')) continue;
    const indent = m[1]!.length;
    while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
    indents.push(indent);
    const dashes = m[2]!.split('-').length - 1;
    if (indents.length + dashes > max) return start;
  }
  return undefined;
}

/** Iterative, so that hostile input cannot overflow the stack here. */
function depthExceeds(root: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > max) return true;
    if (seen.has(v)) continue; // YAML aliases share objects
    seen.add(v);
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}
