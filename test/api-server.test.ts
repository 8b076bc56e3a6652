import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryStore } from '../src/controlplane/store/index.js';
import type { Store } from '../src/controlplane/store/index.js';
import { READ, WRITE, call, openWatch, startApi } from './helpers/api.js';
import type { TestApi } from './helpers/api.js';

const service = (name: string, ns: string, port: unknown = 80, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels },
  spec: { ports: [{ port }] },
});
const virtualService = (name: string, ns: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: ns },
  spec: { hosts: [name] },
});

describe('resource API: CRUD', () => {
  let t: TestApi;
  before(async () => (t = await startApi()));
  after(() => t.close());

  it('serves /healthz without credentials', async () => {
    const r = await call(t.url, 'GET', '/healthz', undefined, '');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  });

  it('PUT creates (201) then replaces (200); GET returns the stored object', async () => {
    const c = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/web', service('web', 'a'));
    assert.equal(c.status, 201);
    assert.equal(c.body.metadata.resourceVersion, String(t.store.revision()));
    const u = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/web', { spec: { ports: [{ port: 8080 }] } });
    assert.equal(u.status, 200, 'kind, apiVersion, name and namespace come from the URL');
    const g = await call(t.url, 'GET', '/api/v1/namespaces/a/services/web', undefined, READ);
    assert.equal(g.status, 200);
    assert.equal(g.body.spec.ports[0].port, 8080);
    assert.equal(g.body.metadata.uid, c.body.metadata.uid);
  });

  it('POST creates and refuses duplicates with 409 AlreadyExists', async () => {
    const c = await call(t.url, 'POST', '/apis/networking.istio.io/v1/namespaces/a/virtualservices', virtualService('vs1', 'a'));
    assert.equal(c.status, 201);
    const again = await call(t.url, 'POST', '/apis/networking.istio.io/v1/namespaces/a/virtualservices', virtualService('vs1', 'a'));
    assert.equal(again.status, 409);
    assert.equal(again.body.kind, 'Status');
    assert.equal(again.body.reason, 'AlreadyExists');
  });

  it('PUT with a stale resourceVersion is a 409 Conflict', async () => {
    const g = await call(t.url, 'GET', '/api/v1/namespaces/a/services/web');
    await call(t.url, 'PUT', '/api/v1/namespaces/a/services/web', service('web', 'a', 81));
    const stale = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/web', { ...g.body, spec: { ports: [{ port: 82 }] } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
  });

  it('lists per namespace, cluster-wide, by label, with a List kind and resourceVersion', async () => {
    await call(t.url, 'PUT', '/api/v1/namespaces/b/services/api', service('api', 'b', 80, { app: 'api', tier: 'back' }));
    await call(t.url, 'PUT', '/api/v1/namespaces/b/services/ui', service('ui', 'b', 80, { app: 'ui', tier: 'front' }));
    const ns = await call(t.url, 'GET', '/api/v1/namespaces/b/services', undefined, READ);
    assert.equal(ns.body.kind, 'ServiceList');
    assert.deepEqual(ns.body.items.map((o: { metadata: { name: string } }) => o.metadata.name), ['api', 'ui']);
    assert.equal(ns.body.metadata.resourceVersion, String(t.store.revision()));
    const all = await call(t.url, 'GET', '/api/v1/services', undefined, READ);
    assert.deepEqual(all.body.items.map((o: { metadata: { name: string } }) => o.metadata.name), ['web', 'api', 'ui']);
    const sel = await call(t.url, 'GET', `/api/v1/services?labelSelector=${encodeURIComponent('tier in (front),app')}`, undefined, READ);
    assert.deepEqual(sel.body.items.map((o: { metadata: { name: string } }) => o.metadata.name), ['ui']);
    const bad = await call(t.url, 'GET', '/api/v1/services?labelSelector=a%20in%20(', undefined, READ);
    assert.equal(bad.status, 400);
    const vs = await call(t.url, 'GET', '/apis/networking.istio.io/v1alpha3/virtualservices', undefined, READ);
    assert.equal(vs.body.items[0].apiVersion, 'networking.istio.io/v1alpha3', 'served at the requested version');
  });

  it('serves unknown kinds through the generic fallback', async () => {
    const c = await call(t.url, 'PUT', '/apis/example.com/v1/namespaces/a/widgetpolicies/w', { apiVersion: 'example.com/v1', kind: 'WidgetPolicy', spec: {} });
    assert.equal(c.status, 201);
    const l = await call(t.url, 'GET', '/apis/example.com/v1/widgetpolicies');
    assert.equal(l.body.kind, 'WidgetPolicyList');
    assert.equal(l.body.items.length, 1);
    const none = await call(t.url, 'GET', '/apis/example.com/v1/gizmos');
    assert.equal(none.status, 404);
  });

  it('PATCH merges (null deletes), validates, and server-side apply creates or replaces', async () => {
    const before = t.store.get({ group: '', kind: 'Service', namespace: 'a', name: 'web' })!;
    const p1 = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/web', { metadata: { labels: { team: 'x' } } }, WRITE, 'application/merge-patch+json');
    assert.equal(p1.status, 200);
    assert.deepEqual(p1.body.metadata.labels, { ...before.metadata.labels, team: 'x' });
    assert.deepEqual(p1.body.spec, before.spec, 'untouched fields stay');
    const p2 = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/web', { metadata: { labels: { team: null } } }, WRITE, 'application/merge-patch+json');
    assert.equal(p2.body.metadata.labels.team, undefined);
    const bad = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/web', { spec: { ports: [{ port: 0 }] } }, WRITE, 'application/merge-patch+json');
    assert.equal(bad.status, 422);
    assert.equal(t.store.get({ group: '', kind: 'Service', namespace: 'a', name: 'web' })!.metadata.resourceVersion, p2.body.metadata.resourceVersion);
    // kubectl apply (client-side) sends a strategic patch whose annotation holds the whole new manifest.
    const manifest = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'a' }, spec: { ports: [{ port: 7000 }] } };
    const kubectlPatch = {
      metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(manifest) } },
      spec: { $setElementOrder: {}, ports: [{ port: 7000 }] },
    };
    const sp = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/web', kubectlPatch, WRITE, 'application/strategic-merge-patch+json');
    assert.equal(sp.status, 200);
    assert.deepEqual(sp.body.spec, manifest.spec);
    assert.ok(sp.body.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    const ssaYaml = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\nspec:\n  ports: [{port: 9}]\n';
    const ssa = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/ssa?fieldManager=kubectl', ssaYaml, WRITE, 'application/apply-patch+yaml');
    assert.equal(ssa.status, 201);
    assert.equal(ssa.body.metadata.namespace, 'a');
  });

  it('DELETE returns a Success Status, then 404', async () => {
    const d = await call(t.url, 'DELETE', '/apis/networking.istio.io/v1/namespaces/a/virtualservices/vs1');
    assert.equal(d.status, 200);
    assert.equal(d.body.status, 'Success');
    const again = await call(t.url, 'DELETE', '/apis/networking.istio.io/v1/namespaces/a/virtualservices/vs1');
    assert.equal(again.status, 404);
    assert.equal(again.body.reason, 'NotFound');
  });

  it('deleting a Namespace deletes everything in it in one transaction', async () => {
    await call(t.url, 'PUT', '/api/v1/namespaces/doomed', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'doomed' } });
    await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', { kind: 'List', items: [service('s1', 'doomed'), virtualService('v1', 'doomed'), service('s1', 'kept')] });
    const rev = t.store.revision();
    const d = await call(t.url, 'DELETE', '/api/v1/namespaces/doomed');
    assert.equal(d.status, 200);
    assert.match(d.body.message, /with 2 object/);
    assert.equal(t.store.revision(), rev + 1, 'one transaction');
    assert.equal(t.store.list(undefined, 'doomed').items.length, 0);
    assert.equal(t.store.list('Service', 'kept').items.length, 1);
  });

  it('rejects contradictions between body and URL with 400', async () => {
    const wrongNs = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/x', service('x', 'other'));
    assert.equal(wrongNs.status, 400);
    assert.match(wrongNs.body.message, /namespace/);
    const wrongKind = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/x', { ...service('x', 'a'), kind: 'Secret' });
    assert.equal(wrongKind.status, 400);
    const wrongName = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/x', service('y', 'a'));
    assert.equal(wrongName.status, 400);
    const clusterScoped = await call(t.url, 'GET', '/api/v1/namespaces/a/namespaces/b');
    assert.equal(clusterScoped.status, 404);
  });

  it('serves discovery documents', async () => {
    const groups = await call(t.url, 'GET', '/apis', undefined, READ);
    assert.ok(groups.body.groups.some((g: { name: string }) => g.name === 'networking.istio.io'));
    const core = await call(t.url, 'GET', '/api/v1', undefined, READ);
    assert.ok(core.body.resources.some((r: { name: string; namespaced: boolean }) => r.name === 'namespaces' && !r.namespaced));
  });
});

describe('resource API: all-or-nothing apply and delete', () => {
  let t: TestApi;
  before(async () => (t = await startApi()));
  after(() => t.close());

  it('applies a List in one transaction, defaulting namespaces', async () => {
    const r = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', {
      apiVersion: 'v1',
      kind: 'List',
      items: [{ ...service('a', 'x'), metadata: { name: 'a' } }, virtualService('b', 'x'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', namespace: 'junk' } }],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.kind, 'ApplyResult');
    assert.deepEqual(r.body.results.map((x: { action: string }) => x.action), ['created', 'created', 'created']);
    assert.equal(r.body.results[0].object.metadata.namespace, 'default');
    assert.equal(r.body.results[2].object.metadata.namespace, undefined);
    assert.ok(r.body.results.every((x: { object: { metadata: { resourceVersion: string } } }) => x.object.metadata.resourceVersion === r.body.metadata.resourceVersion));
    const again = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', { kind: 'List', items: [virtualService('b', 'x')] });
    assert.equal(again.body.results[0].action, 'unchanged');
  });

  it('accepts multi-document YAML', async () => {
    const yaml = 'apiVersion: v1\nkind: Service\nmetadata: {name: y1, namespace: yml}\nspec: {ports: [{port: 1}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: y2, namespace: yml}\nspec: {ports: [{port: 2}]}\n';
    const r = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', yaml, WRITE, 'application/yaml');
    assert.equal(r.status, 200);
    assert.equal(t.store.list('Service', 'yml').items.length, 2);
  });

  it('a validation failure stores nothing and reports every problem as a 422 Status', async () => {
    const rev = t.store.revision();
    const r = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', {
      kind: 'List',
      items: [service('good', 'v'), service('bad1', 'v', 0), service('bad2', 'v', 'http'), virtualService('alsogood', 'v')],
    });
    assert.equal(r.status, 422);
    assert.equal(r.body.kind, 'Status');
    assert.equal(r.body.status, 'Failure');
    assert.equal(r.body.reason, 'Invalid');
    assert.deepEqual(
      r.body.details.causes.map((c: { resource: string; field: string }) => `${c.resource} ${c.field}`),
      ['Service/v/bad1 spec.ports[0].port', 'Service/v/bad2 spec.ports[0].port'],
    );
    assert.match(r.body.message, /Service\/v\/bad1: spec\.ports\[0\]\.port: must be 1\.\.65535/);
    assert.equal(t.store.revision(), rev);
    assert.equal(t.store.list(undefined, 'v').items.length, 0);
  });

  it('dryRun=All validates and reports without storing', async () => {
    const rev = t.store.revision();
    const r = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply?dryRun=All', { kind: 'List', items: [service('dry', 'd')] });
    assert.equal(r.status, 200);
    assert.equal(r.body.results[0].action, 'created');
    assert.equal(t.store.revision(), rev);
  });

  it('deletes many objects in one transaction and names the missing ones', async () => {
    const rev = t.store.revision();
    const r = await call(t.url, 'POST', '/apis/crossmesh.io/v1/delete', {
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'y1', namespace: 'yml' } },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'y2', namespace: 'yml' } },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ghost', namespace: 'yml' } },
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.deleted.length, 2);
    assert.deepEqual(r.body.notFound, ['Service/yml/ghost']);
    assert.equal(t.store.revision(), rev + 1);
  });
});

describe('resource API: auth', () => {
  let t: TestApi;
  before(async () => (t = await startApi()));
  after(() => t.close());

  it('401 without or with a wrong token; 403 for writes with a read-only token', async () => {
    const none = await call(t.url, 'GET', '/api/v1/services', undefined, '');
    assert.equal(none.status, 401);
    assert.equal(none.body.reason, 'Unauthorized');
    const wrong = await call(t.url, 'GET', '/api/v1/services', undefined, 'nope');
    assert.equal(wrong.status, 401);
    const ro = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/x', service('x', 'a'), READ);
    assert.equal(ro.status, 403);
    assert.equal(ro.body.reason, 'Forbidden');
    const roApply = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', { kind: 'List', items: [service('x', 'a')] }, READ);
    assert.equal(roApply.status, 403);
    assert.equal(t.store.revision(), 0);
    const read = await call(t.url, 'GET', '/api/v1/services', undefined, READ);
    assert.equal(read.status, 200);
  });

  it('takes tokens from a function so they can change at runtime', async () => {
    let tokens = [{ token: 'first', role: 'read' as const }];
    const s = await startApi({ auth: { tokens: () => tokens } });
    try {
      assert.equal((await call(s.url, 'GET', '/api/v1/services', undefined, 'first')).status, 200);
      tokens = [{ token: 'second', role: 'read' as const }];
      assert.equal((await call(s.url, 'GET', '/api/v1/services', undefined, 'first')).status, 401);
      assert.equal((await call(s.url, 'GET', '/api/v1/services', undefined, 'second')).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe('resource API: garbage input', () => {
  let t: TestApi;
  before(async () => (t = await startApi({ maxBodyBytes: 4096 })));
  after(() => t.close());

  it('answers bad bodies and paths with clear 4xx Status objects and keeps serving', async () => {
    const badJson = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/x', '{"kind": "Service", ', WRITE, 'application/json');
    assert.equal(badJson.status, 400);
    assert.match(badJson.body.message, /not valid JSON/);
    const badYaml = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', 'kind: [unclosed\n  - x: :', WRITE, 'application/yaml');
    assert.equal(badYaml.status, 400);
    assert.match(badYaml.body.message, /not valid YAML.*line/);
    const scalar = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/x', '42', WRITE, 'application/json');
    assert.equal(scalar.status, 400);
    const notObjects = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', { kind: 'List', items: [1, null, 'x'] });
    assert.equal(notObjects.status, 422);
    assert.equal(notObjects.body.details.causes.length, 3);
    const empty = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', '');
    assert.equal(empty.status, 400);
    const huge = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', JSON.stringify({ kind: 'List', items: [], pad: 'x'.repeat(10_000) }));
    assert.equal(huge.status, 413);
    const badPath = await call(t.url, 'GET', '/api/v1/namespaces/%zz/services');
    assert.equal(badPath.status, 400);
    const sub = await call(t.url, 'GET', '/api/v1/namespaces/a/services/x/status');
    assert.equal(sub.status, 404);
    const badRv = await call(t.url, 'GET', '/api/v1/services?watch=true&resourceVersion=abc');
    assert.equal(badRv.status, 400);
    const noName = await call(t.url, 'POST', '/apis/crossmesh.io/v1/apply', { kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: {} }] });
    assert.equal(noName.status, 422);
    assert.equal(noName.body.details.causes[0].field, 'metadata.name');
    const deep = await call(t.url, 'PUT', '/api/v1/namespaces/a/services/deep', `{"spec":${'['.repeat(1000)}${']'.repeat(1000)}}`);
    assert.equal(deep.status, 400);
    assert.match(deep.body.message, /deeper than 100 levels/);
    const patch = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/x', '{}', WRITE, 'application/merge-patch+json');
    assert.equal(patch.status, 404);
    const strategic = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/x', '{"spec":{"ports":[{"port":1}]}}', WRITE, 'application/strategic-merge-patch+json');
    assert.equal(strategic.status, 415);
    assert.match(strategic.body.message, /strategic merge patches that touch lists/);
    const jsonPatch = await call(t.url, 'PATCH', '/api/v1/namespaces/a/services/x', '[]', WRITE, 'application/json-patch+json');
    assert.equal(jsonPatch.status, 415);
    assert.match(jsonPatch.body.message, /merge-patch\+json/);
  });

  it('survives raw protocol garbage on the socket', async () => {
    await new Promise<void>((resolve) => {
      const s = connect(t.port, '127.0.0.1', () => s.end('\x16\x03\x01 this is not HTTP\r\n\r\n'));
      s.on('data', () => {});
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    assert.equal((await call(t.url, 'GET', '/healthz')).status, 200);
  });
});

describe('resource API: watch', () => {
  let t: TestApi;
  before(async () => (t = await startApi({ store: createMemoryStore({ historyLimit: 8 }), bookmarkIntervalMs: 50 })));
  after(() => t.close());

  it('streams current objects then changes, filtered by namespace and labels', async () => {
    await call(t.url, 'PUT', '/api/v1/namespaces/w/services/one', service('one', 'w', 80, { app: 'x' }));
    const w = await openWatch(t.url, '/api/v1/namespaces/w/services?watch=true&labelSelector=app%3Dx');
    try {
      assert.equal(w.status, 200);
      await w.waitFor(1);
      await call(t.url, 'PUT', '/api/v1/namespaces/w/services/two', service('two', 'w', 80, { app: 'x' }));
      await call(t.url, 'PUT', '/api/v1/namespaces/other/services/three', service('three', 'other', 80, { app: 'x' }));
      await call(t.url, 'PUT', '/api/v1/namespaces/w/services/one', service('one', 'w', 80, { app: 'y' }));
      await call(t.url, 'DELETE', '/api/v1/namespaces/w/services/two');
      await w.waitFor(4);
      assert.deepEqual(
        w.events.map((e) => `${e.type} ${e.object.metadata.name}`),
        ['ADDED one', 'ADDED two', 'DELETED one', 'DELETED two'],
        'leaving the selector looks like a deletion',
      );
    } finally {
      w.close();
    }
  });

  it('resumes after a resourceVersion without gaps, sends bookmarks, and 410s when too old', async () => {
    const list = await call(t.url, 'GET', '/api/v1/services');
    const rv = Number(list.body.metadata.resourceVersion);
    await call(t.url, 'PUT', '/api/v1/namespaces/r/services/r1', service('r1', 'r'));
    await call(t.url, 'PUT', '/api/v1/namespaces/r/services/r2', service('r2', 'r'));
    const w = await openWatch(t.url, `/api/v1/services?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
    try {
      await w.waitFor(3);
      assert.deepEqual(w.events.slice(0, 2).map((e) => `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`), [`ADDED r1 ${rv + 1}`, `ADDED r2 ${rv + 2}`]);
      const bookmark = w.events.find((e) => e.type === 'BOOKMARK');
      assert.ok(bookmark, 'a bookmark arrives while idle');
      assert.equal(bookmark.object.metadata.resourceVersion, String(rv + 2));
    } finally {
      w.close();
    }
    for (let i = 0; i < 12; i++) await call(t.url, 'PUT', '/api/v1/namespaces/r/services/churn', service('churn', 'r', 100 + i));
    const gone = await call(t.url, 'GET', `/api/v1/services?watch=true&resourceVersion=${rv}`);
    assert.equal(gone.status, 410);
    assert.equal(gone.body.reason, 'Expired');
    const future = await call(t.url, 'GET', `/api/v1/services?watch=true&resourceVersion=${t.store.revision() + 5}`);
    assert.equal(future.status, 410, 'a version from another history forces a relist');
  });

  it('releases the store watch when the client goes away', async () => {
    const inner = createMemoryStore();
    let active = 0;
    let onCancel: (() => void) | undefined;
    const store: Store = {
      ...inner,
      watch(from, cb) {
        const w = inner.watch(from, cb);
        active++;
        return {
          cancel() {
            w.cancel();
            active--;
            onCancel?.();
          },
        };
      },
    };
    const s = await startApi({ store });
    try {
      const w = await openWatch(s.url, '/api/v1/services?watch=true');
      assert.equal(active, 1);
      const cancelled = new Promise<void>((r) => (onCancel = r));
      w.close();
      await cancelled;
      assert.equal(active, 0);
    } finally {
      await s.close();
    }
  });

  it('ends watch streams on timeoutSeconds and when the server closes', async () => {
    const w = await openWatch(t.url, '/api/v1/services?watch=true&timeoutSeconds=1');
    await w.ended;
    const s = await startApi();
    const w2 = await openWatch(s.url, '/api/v1/services?watch=true');
    await s.close();
    await w2.ended;
  });
});
