import type { Resource } from '../../src/api/types.js';
import type { ResourceKey, Store } from '../../src/controlplane/store/index.js';

/**
 * The deterministic transaction sequence the kill -9 test drives: txn n (1-based) either applies a pair of objects
 * that must always agree plus a new item, or deletes an earlier item. Every txn changes something, so the store's
 * revision after n txns is n and the expected state after any revision can be recomputed.
 */
export type CrashOp = { apply: Resource[] } | { delete: ResourceKey[] };

const obj = (name: string, n: number): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'crash', labels: { txn: String(n) } },
  spec: { n, hosts: [`${name}.example.com`], padding: 'x'.repeat(100 + (n % 7) * 40) },
});

export function crashOp(n: number): CrashOp {
  if (n % 4 === 0) return { delete: [{ group: 'networking.istio.io', kind: 'ServiceEntry', namespace: 'crash', name: `item-${n - 3}` }] };
  return { apply: [obj('pair-a', n), obj('pair-b', n), obj(`item-${n}`, n)] };
}

export async function runCrashOp(store: Store, n: number): Promise<number> {
  const op = crashOp(n);
  return 'apply' in op ? (await store.apply(op.apply)).revision : (await store.delete(op.delete)).revision;
}

/** name → spec.n expected after the first `revision` transactions. */
export function expectedAfter(revision: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let n = 1; n <= revision; n++) {
    const op = crashOp(n);
    if ('apply' in op) for (const r of op.apply) m.set(r.metadata.name, n);
    else for (const k of op.delete) m.delete(k.name);
  }
  return m;
}
