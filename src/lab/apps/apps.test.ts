import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { appForImage, createAppServer } from './apps.js';

async function withApp(image: string, pod: string, fn: (base: string) => Promise<void>): Promise<void> {
  const app = appForImage(image);
  assert.ok(app, `no app for ${image}`);
  const server = createAppServer({ app, podName: pod });
  assert.ok(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('image names select app and version', () => {
  const cases: Array<[string, string]> = [
    ['docker.io/istio/examples-helloworld-v1', 'helloworld v1'],
    ['docker.io/istio/examples-helloworld-v2:1.0', 'helloworld v2'],
    ['crossmesh/helloworld:v3', 'helloworld v3'],
    ['docker.io/kong/httpbin', 'httpbin latest'],
    ['curlimages/curl', 'sleep latest'],
    ['gcr.io/proj/nodeapp1:2.0', 'nodeapp 2.0 #1'],
    ['nodeapp3', 'nodeapp 1.0 #3'],
  ];
  for (const [image, want] of cases) {
    const a = appForImage(image)!;
    assert.equal([a.kind, a.version, a.serviceNumber ? `#${a.serviceNumber}` : ''].join(' ').trim(), want, image);
  }
  assert.equal(appForImage('nginx:1.25'), undefined);
});

test('helloworld answers /hello with its version and instance', async () => {
  await withApp('istio/examples-helloworld-v2', 'helloworld-v2-7f9c-abcde', async (base) => {
    const res = await fetch(`${base}/hello`);
    assert.equal(await res.text(), 'Hello version: v2, instance: helloworld-v2-7f9c-abcde\n');
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });
});

test('httpbin: 418 with the teapot, /headers echoes, /get describes, /delay waits', async () => {
  await withApp('kong/httpbin', 'httpbin-1', async (base) => {
    const teapot = await fetch(`${base}/status/418`);
    assert.equal(teapot.status, 418);
    assert.match(await teapot.text(), /-=\[ teapot \]=-/);
    assert.equal((await fetch(`${base}/status/503`)).status, 503);
    const headers = (await (await fetch(`${base}/headers`, { headers: { 'x-b3-traceid': 'abc' } })).json()) as { headers: Record<string, string> };
    assert.equal(headers.headers['X-B3-Traceid'], 'abc');
    const get = (await (await fetch(`${base}/get?a=1`)).json()) as { args: Record<string, string> };
    assert.deepEqual(get.args, { a: '1' });
    const t0 = Date.now();
    assert.equal((await fetch(`${base}/delay/0.2`)).status, 200);
    assert.ok(Date.now() - t0 >= 190);
  });
});

test('nodeapp prints its service number and version', async () => {
  await withApp('nodeapp2:2.0', 'nodeapp2-x', async (base) => {
    assert.equal(await (await fetch(`${base}/`)).text(), 'Service 2: version 2.0\n\n');
  });
});

test('FAIL_EVERY=2: every other request answers 500, health checks do not count', async () => {
  const app = appForImage('docker.io/istio/examples-helloworld-v1', { FAIL_EVERY: '2' });
  assert.equal(app?.failEvery, 2);
  const server = createAppServer({ app: app!, podName: 'flaky-1' })!;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await fetch(`${base}/hello`)).status);
      assert.equal((await fetch(`${base}/health`)).status, 200);
    }
    assert.deepEqual(statuses, [200, 500, 200, 500, 200, 500]);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  assert.throws(() => appForImage('helloworld', { FAIL_EVERY: 'often' }), /FAIL_EVERY: must be a whole number/);
});
