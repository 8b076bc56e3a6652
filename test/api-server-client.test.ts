import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../src/api/types.js';
import { createFileStore, createMemoryStore } from '../src/controlplane/store/index.js';
import {
  KubeClientError,
  KubeconfigError,
  buildKubeconfig,
  createInformer,
  createKubeClient,
  parseKubeconfig,
  watchCluster,
} from '../src/registry/kube-client/index.js';
import type { InformerEvent, KubeClient, SyncState } from '../src/registry/kube-client/index.js';
import { READ, WRITE, startApi } from './helpers/api.js';
import type { TestApi } from './helpers/api.js';
import { selfSignedCert } from './helpers/tls.js';
import type { TestCert } from './helpers/tls.js';

const svc = (name: string, ns = 'default', port: unknown = 80): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { ports: [{ port }] },
});
const SERVICES = { apiVersion: 'v1', kind: 'Service' };

const root = mkdtempSync(join(tmpdir(), 'crossmesh-kube-client-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<KubeClientError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return err instanceof KubeClientError && err.code === code && (!message || message.test(err.message));
  });
  return caught as KubeClientError;
}

/** Records an informer's events and states, and resolves waits when a condition becomes true. */
function recorder() {
  const events: InformerEvent[] = [];
  const states: SyncState[] = [];
  const waits: Array<{ check: () => boolean; resolve: () => void }> = [];
  const poke = (): void => {
    for (const w of waits.splice(0)) (w.check() ? w.resolve : () => waits.push(w))();
  };
  return {
    events,
    states,
    onEvent: (e: InformerEvent) => {
      events.push(e);
      poke();
    },
    onState: (s: SyncState) => {
      states.push(s);
      poke();
    },
    until: (check: () => boolean): Promise<void> => (check() ? Promise.resolve() : new Promise((resolve) => waits.push({ check, resolve }))),
  };
}

describe('kubeconfig', () => {
  const kc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c2', cluster: { server: 'https://10.0.0.2:6443/', 'certificate-authority-data': Buffer.from('PEM').toString('base64') } }],
    users: [{ name: 'u', user: { token: 'tok' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c2', user: 'u', namespace: 'ns1' } }],
    'current-context': 'ctx',
  };

  it('reads server, CA data, token and namespace of the current context, with a server override', () => {
    const t = parseKubeconfig(JSON.stringify(kc));
    assert.deepEqual(t, { server: 'https://10.0.0.2:6443', ca: 'PEM', token: 'tok', namespace: 'ns1' });
    assert.equal(parseKubeconfig(kc, { server: 'https://127.0.0.1:1234' }).server, 'https://127.0.0.1:1234');
    assert.deepEqual(parseKubeconfig(buildKubeconfig({ server: 'https://x:1', ca: 'CA', token: 'T' }, 'cluster-1')), { server: 'https://x:1', ca: 'CA', token: 'T' });
  });

  it('names the field that is wrong', () => {
    assert.throws(() => parseKubeconfig({ ...kc, 'current-context': 'nope' }), (e: unknown) => e instanceof KubeconfigError && /contexts: no entry named "nope"/.test(e.message));
    assert.throws(() => parseKubeconfig({ ...kc, clusters: [{ name: 'c2', cluster: { server: 'ftp://x' } }] }), /clusters\["c2"\]\.cluster\.server: must be an http\(s\) URL/);
    assert.throws(() => parseKubeconfig('a: [b'), /not valid YAML/);
  });
});

describe('kube-client over TLS', () => {
  let t: TestApi;
  let cert: TestCert;
  let client: KubeClient;
  before(async () => {
    cert = selfSignedCert();
    t = await startApi({ tls: { cert: cert.cert, key: cert.key } });
    client = createKubeClient({ server: t.url, ca: cert.cert, token: WRITE });
  });
  after(async () => {
    client.close();
    await t.close();
  });

  it('speaks https with the CA from the kubeconfig', () => {
    assert.match(t.url, /^https:/);
  });

  it('applies, gets, lists, puts and deletes', async () => {
    const a = await client.apply([svc('a'), svc('b', 'other')]);
    assert.deepEqual(a.results.map((r) => r.action), ['created', 'created']);
    assert.equal((await client.get({ ...SERVICES, namespace: 'default', name: 'a' }))?.metadata.name, 'a');
    assert.equal(await client.get({ ...SERVICES, namespace: 'default', name: 'zzz' }), undefined);
    assert.equal((await client.list(SERVICES)).items.length, 2);
    assert.equal((await client.list(SERVICES, { namespace: 'other' })).items.length, 1);
    const put = await client.put(svc('a', 'default', 443));
    assert.deepEqual(put.spec, { ports: [{ port: 443 }] });
    const d = await client.delete([{ ...SERVICES, namespace: 'default', name: 'a' }, { ...SERVICES, namespace: 'default', name: 'gone' }]);
    assert.equal(d.deleted.length, 1);
    assert.deepEqual(d.notFound, ['Service/default/gone']);
  });

  it('returns every validation problem of a rejected apply, and nothing is stored', async () => {
    const rev = t.store.revision();
    const err = await rejectsWith(client.apply([svc('ok'), svc('bad', 'default', 70000), svc('worse', 'default', -1)]), 'E_KUBE_INVALID');
    assert.deepEqual(err.problems.map((p) => `${p.resource} ${p.path}`), ['Service/default/bad spec.ports[0].port', 'Service/default/worse spec.ports[0].port']);
    assert.equal(t.store.revision(), rev);
  });

  it('explains a wrong CA, a rejected token, a read-only token and an unreachable server', async () => {
    const other = selfSignedCert('someone-else');
    await rejectsWith(createKubeClient({ server: t.url, ca: other.cert, token: WRITE }).list(SERVICES), 'E_KUBE_TLS', /CA data/);
    await rejectsWith(createKubeClient({ server: t.url, ca: cert.cert, token: 'wrong' }).list(SERVICES), 'E_KUBE_UNAUTHORIZED', /401/);
    await rejectsWith(createKubeClient({ server: t.url, ca: cert.cert, token: READ }).apply([svc('x')]), 'E_KUBE_FORBIDDEN', /read-only/);
    const dead = await startApi();
    await dead.close();
    await rejectsWith(createKubeClient({ server: dead.url, token: WRITE }).list(SERVICES), 'E_KUBE_UNREACHABLE', /ECONNREFUSED/);
  });
});

describe('client certificates', () => {
  it('a certificate that verifies against clientCa gets the configured role; none gets 401', async () => {
    const server = selfSignedCert('api');
    const user = selfSignedCert('remote-cluster-2');
    const t = await startApi({ tls: { ...server, clientCa: user.cert }, auth: { clientCertRole: 'read' } });
    const withCert = createKubeClient({ server: t.url, ca: server.cert, clientCert: user.cert, clientKey: user.key });
    const without = createKubeClient({ server: t.url, ca: server.cert });
    const stranger = selfSignedCert('stranger');
    const wrongCert = createKubeClient({ server: t.url, ca: server.cert, clientCert: stranger.cert, clientKey: stranger.key });
    try {
      assert.deepEqual((await withCert.list(SERVICES)).items, []);
      await rejectsWith(withCert.apply([svc('x')]), 'E_KUBE_FORBIDDEN', /cert:remote-cluster-2 is read-only/);
      await rejectsWith(without.list(SERVICES), 'E_KUBE_UNAUTHORIZED');
      await rejectsWith(wrongCert.list(SERVICES), 'E_KUBE_UNAUTHORIZED');
    } finally {
      for (const c of [withCert, without, wrongCert]) c.close();
      await t.close();
    }
  });
});

describe('informer', () => {
  it('lists, then follows changes through a server restart, resuming from its last version', async () => {
    const dir = join(root, 'restart');
    let store = await createFileStore({ dir });
    let t = await startApi({ store });
    const port = t.port;
    const client = createKubeClient({ server: t.url, token: READ });
    const writer = createKubeClient({ server: t.url, token: WRITE });
    const rec = recorder();
    await writer.apply([svc('first')]);
    const inf = createInformer({ client, type: SERVICES, backoff: { initialMs: 20, maxMs: 100 }, onEvent: rec.onEvent, onState: rec.onState });
    inf.start();
    try {
      await rec.until(() => rec.events.length >= 1);
      assert.deepEqual(rec.events[0], { type: 'reset', items: store.list('Service').items });
      assert.equal(inf.state().status, 'synced', 'synced by the time the reset arrives');
      await writer.apply([svc('second')]);
      await rec.until(() => rec.events.length >= 2);
      assert.equal(rec.events[1]!.type, 'ADDED');

      await t.close();
      await store.close();
      await rec.until(() => inf.state().status === 'error');
      const err = inf.state();
      assert.ok(err.status === 'error' && err.code === 'E_KUBE_UNREACHABLE', JSON.stringify(err));

      store = await createFileStore({ dir });
      await store.apply([svc('while-away')]);
      t = await startApi({ store, port });
      await rec.until(() => inf.items().length === 3);
      assert.equal(inf.state().status, 'synced');
      const after = rec.events.slice(2);
      assert.deepEqual(after.map((e) => e.type), ['ADDED'], 'resumed, not relisted: the log since the last snapshot covers the gap');
      // Consecutive errors with different reasons (reset, then refused) are separate reports of one outage.
      const statuses = rec.states.map((s) => s.status).filter((s, i, all) => s !== all[i - 1]);
      assert.deepEqual(statuses, ['synced', 'error', 'synced']);
    } finally {
      inf.stop();
      client.close();
      writer.close();
      await t.close();
      await store.close();
    }
  });

  it('relists on 410 Gone and hands the consumer a reset', async () => {
    const store = createMemoryStore({ historyLimit: 4 });
    let t = await startApi({ store, bookmarkIntervalMs: 1_000_000 });
    const port = t.port;
    const client = createKubeClient({ server: t.url, token: READ });
    const rec = recorder();
    await store.apply([svc('keep')]);
    const inf = createInformer({ client, type: SERVICES, backoff: { initialMs: 20, maxMs: 50 }, onEvent: rec.onEvent, onState: rec.onState });
    inf.start();
    try {
      await rec.until(() => inf.state().status === 'synced');
      await t.close();
      await rec.until(() => inf.state().status === 'error');
      for (let i = 0; i < 10; i++) await store.apply([svc(`churn${i}`)]);
      await store.delete([{ group: '', kind: 'Service', namespace: 'default', name: 'keep' }]);
      t = await startApi({ store, port });
      await rec.until(() => rec.events.filter((e) => e.type === 'reset').length === 2);
      const reset = rec.events.filter((e) => e.type === 'reset')[1]!;
      assert.ok(reset.type === 'reset');
      assert.deepEqual(reset.items.map((o) => o.metadata.name).sort(), store.list('Service').items.map((o) => o.metadata.name).sort());
      assert.ok(!inf.items().some((o) => o.metadata.name === 'keep'), 'the deletion made while away is seen');
      await rec.until(() => inf.state().status === 'synced');
      assert.ok(!rec.states.some((s) => s.status === 'syncing'), 'a relist does not report the cluster unsynced');
    } finally {
      inf.stop();
      client.close();
      await t.close();
    }
  });

  it('stays synced through a relist when a live server answers 410', async () => {
    let lists = 0;
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      res.setHeader('content-type', 'application/json');
      if (url.searchParams.get('watch') !== 'true') {
        lists++;
        res.end(JSON.stringify({ kind: 'ServiceList', metadata: { resourceVersion: String(lists * 10) }, items: [svc(`v${lists}`)] }));
      } else if (url.searchParams.get('resourceVersion') === '10') {
        res.statusCode = 410;
        res.end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'too old' }));
      } else {
        res.flushHeaders(); // a healthy, quiet watch
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = createKubeClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: READ });
    const rec = recorder();
    const inf = createInformer({ client, type: SERVICES, onEvent: rec.onEvent, onState: rec.onState });
    inf.start();
    try {
      await rec.until(() => rec.events.length === 2);
      assert.deepEqual(rec.events.map((e) => (e.type === 'reset' ? e.items.map((o) => o.metadata.name) : e.type)), [['v1'], ['v2']]);
      assert.deepEqual(rec.states.map((s) => s.status), ['synced']);
      assert.deepEqual(inf.state(), { status: 'synced', resourceVersion: '20' });
    } finally {
      inf.stop();
      client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('reports bad credentials and an untrusted server as error states with clear reasons', async () => {
    const cert = selfSignedCert();
    const t = await startApi({ tls: cert });
    const other = selfSignedCert('other');
    const cases = [
      { target: { server: t.url, ca: cert.cert, token: 'bad' }, code: 'E_KUBE_UNAUTHORIZED', reason: /rejected the credentials/ },
      { target: { server: t.url, ca: other.cert, token: READ }, code: 'E_KUBE_TLS', reason: /TLS failure/ },
    ];
    try {
      for (const c of cases) {
        const client = createKubeClient(c.target);
        const rec = recorder();
        const inf = createInformer({ client, type: SERVICES, backoff: { initialMs: 10_000 }, onEvent: rec.onEvent, onState: rec.onState });
        inf.start();
        await rec.until(() => inf.state().status === 'error');
        inf.stop();
        client.close();
        const s = inf.state();
        assert.ok(s.status === 'error' && s.code === c.code && c.reason.test(s.reason), JSON.stringify(s));
        assert.equal(rec.events.length, 0);
      }
    } finally {
      await t.close();
    }
  });

  it('treats a silent watch as dead: times out, reports it, and watches again from the same version', async () => {
    const watches: string[] = [];
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.searchParams.get('watch') !== 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'ServiceList', metadata: { resourceVersion: '7' }, items: [] }));
        return;
      }
      watches.push(url.searchParams.get('resourceVersion') ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders(); // then silence, as a peer behind a dead NAT entry
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = createKubeClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: READ });
    const rec = recorder();
    const inf = createInformer({ client, type: SERVICES, idleTimeoutMs: 100, backoff: { initialMs: 10, maxMs: 20 }, onEvent: rec.onEvent, onState: rec.onState });
    inf.start();
    try {
      await rec.until(() => watches.length >= 3);
      assert.deepEqual(watches.slice(0, 3), ['7', '7', '7']);
      assert.ok(rec.states.some((s) => s.status === 'error' && s.code === 'E_KUBE_TIMEOUT'), JSON.stringify(rec.states));
      assert.equal(rec.events.filter((e) => e.type === 'reset').length, 1, 'no relist needed');
    } finally {
      inf.stop();
      client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('watchCluster', () => {
  it('follows several kinds with one combined state, through an outage', async () => {
    const VS = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService' };
    const NS = { apiVersion: 'v1', kind: 'Namespace' };
    const store = createMemoryStore();
    await store.apply([svc('a', 'sample'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }]);
    let t = await startApi({ store });
    const port = t.port;
    const client = createKubeClient({ server: t.url, token: READ });
    const states: string[] = [];
    const seen: string[] = [];
    let waiter: (() => void) | undefined;
    let want: () => boolean = () => false;
    const until = (check: () => boolean): Promise<void> => {
      if (check()) return Promise.resolve();
      want = check;
      return new Promise((r) => (waiter = r));
    };
    const poke = (): void => {
      if (waiter && want()) {
        const w = waiter;
        waiter = undefined;
        w();
      }
    };
    const cw = watchCluster({
      client,
      types: [SERVICES, VS, NS],
      backoff: { initialMs: 20, maxMs: 50 },
      onEvent: (type, e) => {
        seen.push(`${type.kind} ${e.type}`);
        poke();
      },
      onState: (s) => {
        states.push(s.status === 'error' ? `error ${s.code}` : s.status);
        poke();
      },
    });
    cw.start();
    try {
      await until(() => cw.state().status === 'synced');
      assert.deepEqual(seen.sort(), ['Namespace reset', 'Service reset', 'VirtualService reset']);
      assert.equal(cw.items(SERVICES).length, 1);
      assert.equal(cw.items(NS).length, 1);
      await store.delete([{ group: '', kind: 'Namespace', namespace: '', name: 'sample' }]);
      await until(() => cw.items(SERVICES).length === 0 && cw.items(NS).length === 0);
      await t.close();
      await until(() => cw.state().status === 'error');
      t = await startApi({ store, port });
      await until(() => cw.state().status === 'synced');
      assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ['synced', 'error E_KUBE_UNREACHABLE', 'synced']);
    } finally {
      cw.stop();
      client.close();
      await t.close();
    }
  });
});
