import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WRITE, call, startApi } from './helpers/api.js';
import type { TestApi } from './helpers/api.js';

let t: TestApi;
before(async () => (t = await startApi({ maxBodyBytes: 64 * 1024 })));
after(() => t.close());

const segment = fc.oneof(
  fc.constantFrom('api', 'apis', 'v1', 'namespaces', 'default', 'services', 'crossmesh.io', 'apply', 'delete', 'networking.istio.io', 'virtualservices', 'x', ''),
  fc.string({ maxLength: 8 }).map((s) => encodeURIComponent(s)),
);
const path = fc.array(segment, { maxLength: 7 }).map((segs) => '/' + segs.join('/'));
const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v));
const resourceLike = fc
  .record({
    apiVersion: fc.oneof(fc.constantFrom('v1', 'networking.istio.io/v1', ''), fc.anything()),
    kind: fc.oneof(fc.constantFrom('Service', 'List', 'Namespace', 'VirtualService'), fc.anything()),
    metadata: fc.oneof(fc.record({ name: fc.oneof(fc.string(), fc.anything()), namespace: fc.oneof(fc.string(), fc.anything()) }), fc.anything()),
    spec: fc.anything(),
    items: fc.array(fc.anything(), { maxLength: 3 }),
  }, { requiredKeys: [] })
  .map((v) => JSON.stringify(v));
const body = fc.oneof(json, resourceLike, fc.string({ maxLength: 200 }), fc.constant('a: [b\n- :'), fc.constant('---\n---\n'));

it('no request shape makes the server answer 5xx or stop serving', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH'),
      path,
      fc.constantFrom('', '?watch=true&timeoutSeconds=1', '?labelSelector=a%20in%20(', '?fieldSelector=spec.x=1', '?dryRun=All', '?resourceVersion=-1&watch=1'),
      body,
      fc.constantFrom('application/json', 'application/yaml', 'text/plain'),
      async (method, p, q, b, type) => {
        const r = await call(t.url, method, p + q, method === 'GET' || method === 'DELETE' ? undefined : b, WRITE, type);
        assert.ok(r.status < 500, `${method} ${p}${q} ${b.slice(0, 80)} → ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        if (r.status >= 400) assert.equal(r.body.kind, 'Status');
      },
    ),
    { numRuns: 250 },
  );
  assert.equal((await call(t.url, 'GET', '/healthz')).status, 200);
});
