import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/types.js';
import type { Store, WatchEvent } from '../../src/controlplane/store/index.js';
import { AlreadyExistsError, ConflictError, NotFoundError, RevisionGoneError } from '../../src/controlplane/store/index.js';
import { ValidationError } from '../../src/shared/errors.js';

export function svc(name: string, ns = 'default', labels: Record<string, string> = {}, port = 80): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns, labels }, spec: { ports: [{ port }] } };
}

export function vs(name: string, ns = 'default', host = name): Resource {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: ns }, spec: { hosts: [host] } };
}

export const nsObj = (name: string): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

/** The behaviour every Store must have; run against each implementation with a factory for a fresh, empty store. */
export function storeContract(name: string, open: (opts: { historyLimit?: number }) => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open({});
    });
    after(() => store.close());

    it('starts empty at revision 0 and applies with one revision per transaction', async () => {
      assert.equal(store.revision(), 0);
      const r = await store.apply([svc('a'), svc('b'), vs('a')]);
      assert.equal(r.revision, 1);
      assert.deepEqual(r.outcomes.map((o) => o.action), ['created', 'created', 'created']);
      for (const o of r.outcomes) assert.equal(o.resource.metadata.resourceVersion, '1');
      assert.equal(store.revision(), 1);
      const got = store.get({ group: '', kind: 'Service', namespace: 'default', name: 'a' });
      assert.ok(got);
      assert.equal(got.metadata.generation, 1);
      assert.ok(got.metadata.uid);
      assert.ok(Object.isFrozen(got) && Object.isFrozen(got.metadata));
      assert.equal(store.get({ group: 'networking.istio.io', kind: 'VirtualService', namespace: 'default', name: 'a' })?.kind, 'VirtualService');
      assert.equal(store.get({ group: '', kind: 'Service', namespace: 'other', name: 'a' }), undefined);
    });

    it('replaces, keeps uid and creationTimestamp, bumps generation only on spec change, skips no-ops', async () => {
      const before = store.get({ group: '', kind: 'Service', namespace: 'default', name: 'a' })!;
      const r1 = await store.apply([svc('a', 'default', {}, 80)]);
      assert.equal(r1.outcomes[0]!.action, 'unchanged');
      assert.equal(r1.revision, store.revision());
      const r2 = await store.apply([svc('a', 'default', { app: 'a' }, 80)]);
      assert.equal(r2.outcomes[0]!.action, 'configured');
      const mid = r2.outcomes[0]!.resource;
      assert.equal(mid.metadata.uid, before.metadata.uid);
      assert.equal(mid.metadata.creationTimestamp, before.metadata.creationTimestamp);
      assert.equal(mid.metadata.generation, 1, 'labels are not spec');
      const r3 = await store.apply([svc('a', 'default', { app: 'a' }, 81)]);
      assert.equal(r3.outcomes[0]!.resource.metadata.generation, 2);
      assert.equal(r3.revision, r2.revision + 1);
    });

    it('lists by kind, group, namespace and label selector, sorted', async () => {
      await store.apply([svc('c', 'prod', { app: 'c', tier: 'web' }), svc('d', 'prod', { app: 'd', tier: 'db' }), nsObj('prod')]);
      assert.deepEqual(store.list('Service', 'prod').items.map((o) => o.metadata.name), ['c', 'd']);
      assert.deepEqual(store.list('Service', undefined, 'tier=web').items.map((o) => o.metadata.name), ['c']);
      assert.deepEqual(store.list('Service', undefined, 'tier in (web,db),app!=c').items.map((o) => o.metadata.name), ['d']);
      assert.deepEqual(store.list('Service', 'prod', '!tier').items, []);
      assert.equal(store.list('VirtualService.networking.istio.io').items.length, 1);
      assert.equal(store.list('VirtualService.').items.length, 0);
      assert.deepEqual(store.list('Namespace', '').items.map((o) => o.metadata.name), ['prod']);
      assert.equal(store.list().revision, store.revision());
      assert.throws(() => store.list('Service', undefined, 'a in (b'), /labelSelector/);
    });

    it('is all-or-nothing: a bad object or a failed precondition stores nothing', async () => {
      const rev = store.revision();
      const bad = { apiVersion: 'v1', kind: 'Service', metadata: { name: '' } } as Resource;
      await assert.rejects(store.apply([svc('x1'), bad, svc('x1')]), (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.problems.length, 2, 'every problem, not only the first');
        return true;
      });
      await assert.rejects(store.apply([svc('x2'), svc('a')], { mode: 'create' }), AlreadyExistsError);
      await assert.rejects(store.apply([svc('x3')], { mode: 'update' }), NotFoundError);
      const stale = { ...svc('a'), metadata: { ...svc('a').metadata, resourceVersion: '1' } };
      await assert.rejects(store.apply([svc('x4'), stale]), ConflictError);
      assert.equal(store.revision(), rev);
      for (const n of ['x1', 'x2', 'x3', 'x4']) assert.equal(store.get({ group: '', kind: 'Service', namespace: 'default', name: n }), undefined);
      const current = store.get({ group: '', kind: 'Service', namespace: 'default', name: 'a' })!;
      const ok = await store.apply([{ ...current, spec: { ports: [{ port: 99 }] } }]);
      assert.equal(ok.outcomes[0]!.action, 'configured');
    });

    it('watches in order from a revision, with history, live events and previous state', async () => {
      const start = store.revision();
      const seen: WatchEvent[] = [];
      const w = store.watch(start, (e) => seen.push(e));
      await store.apply([svc('w1'), svc('w2')]);
      await store.apply([svc('w1', 'default', { v: '2' })]);
      await store.delete([{ group: '', kind: 'Service', namespace: 'default', name: 'w2' }]);
      w.cancel();
      await store.apply([svc('w3')]);
      assert.deepEqual(
        seen.map((e) => `${e.type} ${e.object.metadata.name} ${e.revision} ${e.object.metadata.resourceVersion}`),
        [
          `ADDED w1 ${start + 1} ${start + 1}`,
          `ADDED w2 ${start + 1} ${start + 1}`,
          `MODIFIED w1 ${start + 2} ${start + 2}`,
          `DELETED w2 ${start + 3} ${start + 3}`,
        ],
      );
      assert.deepEqual(seen[2]!.previous?.metadata.labels, {});
      // Resuming replays history after the given revision only.
      const replay: WatchEvent[] = [];
      store.watch(start + 1, (e) => replay.push(e)).cancel();
      assert.deepEqual(replay.map((e) => e.revision), [start + 2, start + 3, start + 4]);
    });

    it('deletes namespaces with their contents in one transaction; missing keys are ignored', async () => {
      await store.apply([nsObj('doomed'), svc('s1', 'doomed'), vs('v1', 'doomed'), svc('s1', 'kept')]);
      const seen: WatchEvent[] = [];
      const w = store.watch(store.revision(), (e) => seen.push(e));
      const r = await store.delete([
        { group: '', kind: 'Namespace', namespace: '', name: 'doomed' },
        { group: '', kind: 'Service', namespace: 'nowhere', name: 'nothing' },
      ]);
      w.cancel();
      assert.equal(r.deleted.length, 3);
      assert.ok(seen.every((e) => e.type === 'DELETED' && e.revision === r.revision));
      assert.equal(seen.at(-1)!.object.kind, 'Namespace', 'contents before the namespace');
      assert.equal(store.list(undefined, 'doomed').items.length, 0);
      assert.equal(store.list('Service', 'kept').items.length, 1);
      const none = await store.delete([{ group: '', kind: 'Service', namespace: 'nowhere', name: 'nothing' }]);
      assert.deepEqual(none.deleted, []);
      assert.equal(none.revision, store.revision());
    });

    it('serialises concurrent transactions with strictly increasing revisions', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.apply([svc(`c${i}`, 'conc')])));
      const revs = results.map((r) => r.revision);
      assert.deepEqual(revs, [...revs].sort((a, b) => a - b));
      assert.equal(new Set(revs).size, 20);
    });

    it('reports RevisionGone when history no longer covers the revision', async () => {
      const small = await open({ historyLimit: 4 });
      try {
        for (let i = 0; i < 10; i++) await small.apply([svc(`h${i}`)]);
        assert.ok(small.oldestWatchableRevision() > 0);
        assert.throws(() => small.watch(0, () => {}), RevisionGoneError);
        const seen: number[] = [];
        small.watch(small.oldestWatchableRevision(), (e) => seen.push(e.revision)).cancel();
        assert.equal(seen.at(-1), 10);
      } finally {
        await small.close();
      }
    });
  });
}

/** Extra contract cases (kept apart so the main suite reads as a story). */
export function storeContractExtras(name: string, open: () => Promise<Store>): void {
  describe(`Store contract extras: ${name}`, () => {
    it('deleting a Namespace key removes its contents even without a Namespace object', async () => {
      const store = await open();
      try {
        await store.apply([svc('a', 'loose'), vs('b', 'loose'), svc('c', 'other')]);
        const r = await store.delete([{ group: '', kind: 'Namespace', namespace: '', name: 'loose' }]);
        assert.deepEqual(r.deleted.map((o) => o.metadata.name).sort(), ['a', 'b']);
        assert.equal(store.list(undefined, 'loose').items.length, 0);
        assert.equal(store.list().items.length, 1);
      } finally {
        await store.close();
      }
    });

    it('dryRun reports outcomes and commits nothing', async () => {
      const store = await open();
      try {
        await store.apply([svc('a')]);
        const seen: WatchEvent[] = [];
        const w = store.watch(store.revision(), (e) => seen.push(e));
        const r = await store.apply([svc('a', 'default', { x: 'y' }), svc('b')], { dryRun: true });
        w.cancel();
        assert.deepEqual(r.outcomes.map((o) => o.action), ['configured', 'created']);
        assert.equal(store.revision(), 1);
        assert.equal(store.get({ group: '', kind: 'Service', namespace: 'default', name: 'b' }), undefined);
        assert.deepEqual(seen, []);
        await assert.rejects(store.apply([svc('a')], { mode: 'create', dryRun: true }), AlreadyExistsError);
      } finally {
        await store.close();
      }
    });

    it('a watcher that throws does not break the transaction or other watchers', async () => {
      const store = await open();
      try {
        const seen: string[] = [];
        store.watch(0, () => {
          throw new Error('boom');
        });
        store.watch(0, (e) => seen.push(e.object.metadata.name));
        await store.apply([svc('a')]);
        assert.deepEqual(seen, ['a']);
        assert.ok(store.get({ group: '', kind: 'Service', namespace: 'default', name: 'a' }));
      } finally {
        await store.close();
      }
    });

    it('concurrent transactions each see the ones before them (group commit keeps this)', async () => {
      const store = await open();
      try {
        const [first, second] = await Promise.allSettled([
          store.apply([svc('once')], { mode: 'create' }),
          store.apply([svc('once')], { mode: 'create' }),
        ]);
        assert.equal(first.status, 'fulfilled');
        assert.ok(second.status === 'rejected' && second.reason instanceof AlreadyExistsError);
        const results = await Promise.allSettled([
          store.apply([svc('n1', 'gone')]),
          store.apply([{ apiVersion: 'v1', kind: 'Service', metadata: { name: '' } } as Resource]),
          store.apply([svc('n2', 'gone')]),
          store.delete([{ group: '', kind: 'Namespace', namespace: '', name: 'gone' }]),
          store.apply([svc('after', 'gone')]),
        ]);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
        const del = results[3]!;
        assert.ok(del.status === 'fulfilled' && 'deleted' in del.value);
        assert.deepEqual(del.value.deleted.map((o) => o.metadata.name).sort(), ['n1', 'n2']);
        assert.deepEqual(store.list(undefined, 'gone').items.map((o) => o.metadata.name), ['after']);
        const revs = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.revision] : []));
        assert.deepEqual(revs, [2, 3, 4, 5]);
      } finally {
        await store.close();
      }
    });

    it('rejects writes after close', async () => {
      const store = await open();
      await store.close();
      await assert.rejects(store.apply([svc('late')]), /closed/);
    });
  });
}
