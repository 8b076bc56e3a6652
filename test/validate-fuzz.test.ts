import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parseAllDocuments, stringify } from 'yaml';
import { parseDocuments, validateResources } from '../src/api/index.js';
import { runCli } from './helpers/cli.js';

// Random mutations of the valid fixtures must only ever produce success or clean problems:
// exit code 0 or 1, every stderr line in the documented shape, no exception, no stack trace.

const validDir = fileURLToPath(new URL('../../test/fixtures/valid/', import.meta.url));
const fixtures = readdirSync(validDir)
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .sort()
  .map((f) => readFileSync(join(validDir, f), 'utf8'));
const parsedFixtures = fixtures.map((text) => parseAllDocuments(text).map((d) => d.toJS() as unknown));

type Path = Array<string | number>;

/** Every path to a value inside `root`, parents before children. */
function paths(root: unknown): Path[] {
  const out: Path[] = [[]];
  const stack: Array<[unknown, Path]> = [[root, []]];
  while (stack.length > 0) {
    const [v, p] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    for (const [k, child] of Object.entries(v)) {
      const cp = [...p, Array.isArray(v) ? Number(k) : k];
      out.push(cp);
      stack.push([child, cp]);
    }
  }
  return out;
}

function parentOf(root: unknown, path: Path): Record<string | number, unknown> | undefined {
  let v: unknown = root;
  for (const seg of path.slice(0, -1)) v = (v as Record<string | number, unknown>)[seg];
  return typeof v === 'object' && v !== null ? (v as Record<string | number, unknown>) : undefined;
}

const replacement = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
);

const structural = fc.record({
  op: fc.constantFrom('delete', 'rename', 'retype', 'nest'),
  pick: fc.nat(),
  value: replacement,
  name: fc.string({ minLength: 1, maxLength: 10 }),
  depth: fc.integer({ min: 1, max: 200 }),
});

type Structural = typeof structural extends fc.Arbitrary<infer T> ? T : never;

function mutate(doc: unknown, m: Structural): unknown {
  const all = paths(doc).filter((p) => p.length > 0);
  if (all.length === 0) return m.value;
  const path = all[m.pick % all.length]!;
  const parent = parentOf(doc, path);
  if (!parent) return doc;
  const key = path[path.length - 1]!;
  switch (m.op) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      break;
    case 'rename':
      if (!Array.isArray(parent)) {
        parent[m.name] = parent[key];
        delete parent[key];
      }
      break;
    case 'retype':
      parent[key] = m.value;
      break;
    case 'nest': {
      let v = parent[key];
      for (let i = 0; i < m.depth; i++) v = i % 2 === 0 ? [v] : { x: v };
      parent[key] = v;
      break;
    }
  }
  return doc;
}

const textual = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('bytes' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('char' as const), at: fc.nat(), ch: fc.constantFrom(':', '-', ' ', '\t', '\n', '[', '{', '"', "'", '&', '*', '!', '|', '>', '#', '%', '@', '`') }),
);

function mutateText(text: string, m: typeof textual extends fc.Arbitrary<infer T> ? T : never): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  if (m.op === 'truncate') return text.slice(0, at);
  if (m.op === 'bytes') return text.slice(0, at) + Buffer.from(m.bytes).toString('latin1') + text.slice(at);
  return text.slice(0, at) + m.ch + text.slice(at + 1);
}

async function assertCleanCli(stdin: string): Promise<void> {
  const r = await runCli(['validate', '-f', '-'], { stdin, cwd: validDir });
  assert.ok(r.code === 0 || r.code === 1, `exit code ${r.code}`);
  if (r.code === 0) {
    assert.match(r.stdout, /^\d+ resources? in 1 file (is|are) valid\n$/);
    assert.equal(r.stderr, '');
    return;
  }
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.ok(lines.length > 0, 'exit 1 without a problem');
  for (const line of lines) {
    assert.ok(line.startsWith('<stdin>: ') || line === 'no resources found in the input', line);
    assert.doesNotMatch(line, /internal error|^\s+at /);
  }
}

test('structural mutations of valid fixtures never crash validate', async () => {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: fixtures.length - 1 }), fc.array(structural, { minLength: 1, maxLength: 4 }), fc.nat(), async (fi, muts, di) => {
      const docs = structuredClone(parsedFixtures[fi]!);
      const target = di % docs.length;
      for (const m of muts) docs[target] = mutate(docs[target], m);
      const text = docs.map((d) => stringify(d)).join('---\n');
      // In-process API: never throws.
      validateResources(parseDocuments(text, 'm.yaml').documents);
      await assertCleanCli(text);
    }),
    { numRuns: 200 },
  );
});

test('text mutations (truncation, random bytes, syntax characters) never crash validate', async () => {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: fixtures.length - 1 }), fc.array(textual, { minLength: 1, maxLength: 5 }), async (fi, muts) => {
      let text = fixtures[fi]!;
      for (const m of muts) text = mutateText(text, m);
      await assertCleanCli(text);
    }),
    { numRuns: 200 },
  );
});

test('arbitrary JSON values as documents never crash validate', () => {
  fc.assert(
    fc.property(fc.array(fc.jsonValue({ maxDepth: 6 }), { maxLength: 4 }), (values) => {
      const r = validateResources(values.map((value, i) => ({ file: 'j.json', index: i + 1, value })));
      for (const p of r.problems) assert.equal(typeof p.message, 'string');
    }),
    { numRuns: 200 },
  );
});
