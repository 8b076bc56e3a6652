/**
 * tcp_proxy and the cluster's max_connections circuit breaker (DestinationRule
 * connectionPool.tcp.maxConnections), over real sockets with the control plane's own config: a connection
 * beyond the limit is closed at once with `UO` and counted in envoy_cluster_upstream_cx_overflow; the slot
 * comes back when a connection ends, also when the client resets while the upstream connect (here an mTLS
 * handshake the upstream never answers) is still in flight (`DC`). Also: passthrough to a non-mesh
 * destination, and a captured connection whose original destination is the proxy itself is refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createSidecar } from '../src/proxy/sidecar/index.js';
import { createMeshMetrics } from '../src/proxy/telemetry/index.js';
import type { SidecarHandle } from '../src/proxy/sidecar/index.js';
import { createTestPki } from './proxy-certs.js';
import { destinationRule, pinCaptureListeners, recorder, stateFor, svc, vipOf, workload } from './sidecar-mesh.js';

const NS = 'sample';
const DB = 'outbound|3306||db.sample.svc.cluster.local';
const STALL = 'outbound|3307||stall.sample.svc.cluster.local';
const resources = [
  svc(NS, 'db', 3306, 3306, 'tcp-mysql'),
  workload(NS, 'db-1', '127.81.2.3', { app: 'db' }, { sa: 'db', plaintext: true }),
  // mTLS endpoint whose "sidecar" accepts TCP and never answers the handshake: the connect stays in flight.
  svc(NS, 'stall', 3307, 3307, 'tcp'),
  workload(NS, 'stall-1', '127.81.2.6', { app: 'stall' }, { sa: 'stall' }),
  svc(NS, 'sleep', 80, 80),
  workload(NS, 'sleep-1', '127.81.1.4', { app: 'sleep' }, { sa: 'sleep' }),
];
const oneConnection = { connectionPool: { tcp: { maxConnections: 1 } } };

/** Resolves with what the peer sent before closing (or an error code). */
function collect(s: net.Socket): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    let error: string | undefined;
    s.on('data', (c) => (data += c));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    s.on('close', () => resolve(error ? { data, error } : { data }));
  });
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('tcp_proxy max_connections', () => {
  const registry = new Registry();
  const log = recorder();
  const servers: net.Server[] = [];
  const stalled: net.Socket[] = [];
  let sidecar: SidecarHandle;
  let port = 0;
  let destination: { address: string; port: number } | undefined;

  const metric = async (name: string, cluster: string): Promise<number | undefined> => {
    const m = await registry.getSingleMetric(name)!.get();
    return m.values.find((v) => v.labels.cluster_name === cluster)?.value;
  };
  const scrape = async (): Promise<string> => registry.metrics();
  const open = (): net.Socket => net.connect({ host: '127.81.1.4', port });
  const recordsFor = (cluster: string) => log.records.filter((r) => r.upstream_cluster === cluster);

  before(async () => {
    const pki = await createTestPki();
    const leaf = await pki.issue({ spiffe: `spiffe://cluster.local/ns/${NS}/sa/sleep` });
    const echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    const stall = net.createServer((s) => {
      // Reads (and drops) the ClientHello so that it sees the proxy give up; never answers.
      stalled.push(s.resume().on('error', () => {}));
    });
    const other = net.createServer((s) => s.end('not in the mesh'));
    await Promise.all([
      new Promise<void>((r) => echo.listen(3306, '127.81.2.3', r)),
      new Promise<void>((r) => stall.listen(3307, '127.81.2.6', r)),
      new Promise<void>((r) => other.listen(4000, '127.81.3.9', r)),
    ]);
    servers.push(echo, stall, other);
    sidecar = createSidecar({
      credentials: () => ({ certChainPem: leaf.cert, keyPem: leaf.key, rootsPem: pki.rootPem, spiffeId: `spiffe://cluster.local/ns/${NS}/sa/sleep` }),
      identity: { cluster: 'c1', namespace: NS, workload: 'sleep-1', network: 'n1' },
      accessLog: log.log,
      metrics: createMeshMetrics(registry),
      originalDestination: () => destination,
    });
    const state = stateFor(resources, { ip: '127.81.1.4', pod: 'sleep-1', namespace: NS, serviceAccount: 'sleep', labels: { app: 'sleep' }, interception: 'REDIRECT' }, {
      destinationRules: [destinationRule(NS, 'db', { host: 'db', trafficPolicy: oneConnection }), destinationRule(NS, 'stall', { host: 'stall', trafficPolicy: oneConnection })],
    });
    pinCaptureListeners(state, '127.81.1.4', { outbound: 0, inbound: 15006 });
    assert.deepEqual(sidecar.apply(state).problems, []);
    port = (await sidecar.listening()).get('virtualOutbound')!.port;
  });

  after(async () => {
    await sidecar.close();
    for (const s of stalled) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  test('with maxConnections 1 a second connection is closed with UO and counted; after the first ends a new one succeeds', async () => {
    destination = { address: vipOf(resources, 'db.sample.svc.cluster.local'), port: 3306 };
    const first = open();
    const firstDone = collect(first);
    first.write('one');
    await waitFor(async () => (await metric('envoy_cluster_upstream_cx_active', DB)) === 1, 'the first connection upstream');

    const second = await collect(open());
    assert.equal(second.data, '', 'nothing was proxied for the refused connection');
    await waitFor(() => recordsFor(DB).length === 1, 'the refusal record');
    const refused = recordsFor(DB)[0]!;
    assert.equal(refused.response_flags, 'UO');
    assert.equal(refused.upstream_host, null);
    assert.equal(await metric('envoy_cluster_upstream_cx_overflow', DB), 1);
    assert.match(await scrape(), /envoy_cluster_upstream_cx_overflow\{cluster_name="outbound\|3306\|\|db\.sample\.svc\.cluster\.local"\} 1/);

    first.end();
    assert.equal((await firstDone).data, 'one', 'the first connection kept working');
    await waitFor(async () => (await metric('envoy_cluster_upstream_cx_active', DB)) === 0, 'the slot to come back');

    const third = open();
    const thirdDone = collect(third);
    third.end('three');
    assert.deepEqual(await thirdDone, { data: 'three' });
    await waitFor(() => recordsFor(DB).length === 3, 'all three records');
    assert.deepEqual(recordsFor(DB).map((r) => r.response_flags), ['UO', '-', '-']);
    assert.equal(await metric('envoy_cluster_upstream_cx_overflow', DB), 1);
  });

  test('a client that resets while the upstream connect is in flight ends with DC and gives its slot back', async () => {
    destination = { address: vipOf(resources, 'stall.sample.svc.cluster.local'), port: 3307 };
    const gone = open();
    gone.on('error', () => {});
    gone.write('hello?');
    await waitFor(async () => (await metric('envoy_cluster_upstream_cx_active', STALL)) === 1 && stalled.length === 1, 'the connect to be in flight');
    gone.resetAndDestroy();
    await waitFor(() => recordsFor(STALL).length === 1, 'the DC record');
    const rec = recordsFor(STALL)[0]!;
    assert.equal(rec.response_flags, 'DC');
    assert.equal(rec.upstream_host, '127.81.2.6:3307');
    await waitFor(async () => (await metric('envoy_cluster_upstream_cx_active', STALL)) === 0, 'the slot to come back');
    await waitFor(() => stalled[0]!.readableEnded || stalled[0]!.destroyed, 'the upstream attempt to be abandoned');

    // The slot is free: the next connection gets as far as connecting instead of UO.
    const next = open();
    next.on('error', () => {});
    await waitFor(async () => (await metric('envoy_cluster_upstream_cx_active', STALL)) === 1, 'the next connect');
    next.resetAndDestroy();
    await waitFor(() => recordsFor(STALL).length === 2, 'the second record');
    assert.equal(recordsFor(STALL)[1]!.response_flags, 'DC');
    assert.equal(await metric('envoy_cluster_upstream_cx_overflow', STALL), 0);
    await waitFor(async () => (await metric('envoy_cluster_upstream_cx_active', STALL)) === 0, 'no leaked slot');
  });

  test('a destination outside the mesh goes through PassthroughCluster to where the app was going', async () => {
    destination = { address: '127.81.3.9', port: 4000 };
    assert.deepEqual(await collect(open()), { data: 'not in the mesh' });
    await waitFor(() => recordsFor('PassthroughCluster').length === 1, 'the passthrough record');
    const rec = recordsFor('PassthroughCluster')[0]!;
    assert.equal(rec.response_flags, '-');
    assert.equal(rec.upstream_host, '127.81.3.9:4000');
  });

  test('a captured connection whose original destination is the proxy itself is refused, not looped', async () => {
    destination = { address: '127.81.1.4', port };
    const before = log.records.length;
    const r = await collect(open());
    assert.equal(r.data, '');
    await waitFor(() => log.records.length > before, 'the refusal record');
    const recs = log.records.slice(before);
    assert.equal(recs.length, 1, `one record, no loop: ${JSON.stringify(recs)}`);
    assert.equal(recs[0]!.response_flags, 'UH');
    assert.equal(recs[0]!.downstream_local_address, `127.81.1.4:${port}`);
    assert.equal(await metric('envoy_cluster_upstream_cx_active', 'PassthroughCluster'), 0);
  });
});
