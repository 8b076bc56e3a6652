import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocuments } from './parse.js';

test('multi-document YAML yields one document per non-empty document, numbered by position', () => {
  const text = '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n';
  const r = parseDocuments(text, 'ns.yaml');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(
    r.documents.map((d) => [d.index, (d.value as { metadata: { name: string } }).metadata.name]),
    [
      [1, 'a'],
      [3, 'b'],
    ],
  );
});

test('a v1 List (YAML or JSON) is expanded into its items', () => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ kind: 'A' }, { kind: 'B' }] });
  for (const file of ['l.json', 'l.yaml']) {
    const r = parseDocuments(json, file);
    assert.deepEqual(r.documents.map((d) => (d.value as { kind: string }).kind), ['A', 'B'], file);
  }
});

test('YAML syntax errors carry line and column, and other documents still parse', () => {
  const r = parseDocuments('kind: A\n---\nkind: B\n  bad: [\n---\nkind: C\n', 'x.yaml');
  assert.deepEqual(r.documents.map((d) => (d.value as { kind: string }).kind), ['A', 'C']);
  assert.ok(r.problems.length > 0);
  for (const p of r.problems) {
    assert.equal(p.file, 'x.yaml');
    assert.match(p.message, /^line [3-5], column \d+: /);
  }
});

test('JSON syntax errors are located by line and column', () => {
  const r = parseDocuments('{\n  "kind": "A",\n  oops\n}\n', 'x.json');
  assert.equal(r.documents.length, 0);
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0]!.message, /^line 3, column 3: /);
});

test('a byte-order mark is ignored', () => {
  const r = parseDocuments('\ufeffkind: A\n', 'bom.yaml');
  assert.deepEqual(r.problems, []);
  assert.equal(r.documents.length, 1);
});

test('hostile input is refused with a problem, never an exception', () => {
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  const aliases = 'a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n';
  for (const [text, file] of [
    [deep, 'deep.yaml'],
    [deep, 'deep.json'],
    [aliases, 'aliases.yaml'],
  ] as const) {
    const r = parseDocuments(text, file);
    assert.equal(r.documents.length, 0, file);
    assert.ok(r.problems.length > 0, file);
  }
  assert.match(parseDocuments(deep, 'deep.yaml').problems[0]!.message, /nested too deeply|nested deeper/);
});
