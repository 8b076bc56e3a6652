/**
 * The ADS client against our ADS server and against a recording fake: ACK/NACK, isolation of a NACKing
 * proxy, keeping the last good config while the server is gone, reconnecting and resyncing, backoff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createSnapshot, createSnapshotCache } from '../src/controlplane/cache/index.js';
import { TYPE_URLS, adsServiceDefinition, createAdsClient, createBackoff, diffUpdate, edsCluster, encodeResource } from '../src/xds/index.js';
import type { AdsClient, Any, DiscoveryRequest, DiscoveryResponse, ResourceUpdate } from '../src/xds/index.js';
import { createAdsServer } from '../src/controlplane/server/index.js';
import { bindServer, createFakeClock, eventually, selfSignedCert, startAds } from './xds-helpers.js';

const cluster = (name: string, timeoutMs = 1000): Any => encodeResource(TYPE_URLS.cluster, edsCluster(name, { connectTimeoutMs: timeoutMs }));
const fastBackoff = { initialMs: 20, maxMs: 100 };

function collect(client: AdsClient, typeUrl: string, verdict: (u: ResourceUpdate) => void | { reject: string } = () => {}): ResourceUpdate[] {
  const seen: ResourceUpdate[] = [];
  client.subscribe(typeUrl, (u) => {
    seen.push(u);
    return verdict(u);
  });
  return seen;
}

test('client ACKs what it accepts and NACKs what it rejects; a NACKing proxy does not hold back another', async (t) => {
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: () => 'all' });
  const good = createAdsClient({ address: running.address, node: { id: 'good', locality: { region: 'r' } }, backoff: fastBackoff });
  const picky = createAdsClient({ address: running.address, node: { id: 'picky', locality: { region: 'r' } }, backoff: fastBackoff });
  t.after(() => {
    good.close();
    picky.close();
    running.stop();
  });
  const v1 = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] });
  cache.setSnapshot('all', v1);
  const goodSeen = collect(good, TYPE_URLS.cluster);
  // picky accepts only snapshots without cluster "bad".
  const pickySeen = collect(picky, TYPE_URLS.cluster, (u) => (u.resources.has('bad') ? { reject: 'cluster bad: not allowed' } : undefined));
  const acked = (id: string) => running.ads.connectedProxies().find((p) => p.node.id === id)?.types[0]?.ackedVersion;
  await eventually('both ACK v1', () => (acked('good') === v1.version(TYPE_URLS.cluster) && acked('picky') === acked('good') ? true : undefined));
  assert.equal(goodSeen[0]?.resources.get('a')?.name, 'a');
  assert.equal((goodSeen[0]?.resources.get('a') as { type?: string }).type, 'EDS');

  const v2 = v1.withType(TYPE_URLS.cluster, [cluster('a'), cluster('bad')]);
  cache.setSnapshot('all', v2);
  await eventually('good ACKs v2', () => (acked('good') === v2.version(TYPE_URLS.cluster) ? true : undefined));
  const pickyState = () => running.ads.connectedProxies().find((p) => p.node.id === 'picky')?.types[0];
  await eventually('picky NACKs v2', () => pickyState()?.lastNack);
  assert.equal(pickyState()?.lastNack?.message, 'cluster bad: not allowed');
  assert.equal(pickyState()?.ackedVersion, v1.version(TYPE_URLS.cluster));
  assert.equal(picky.current(TYPE_URLS.cluster)?.version, v1.version(TYPE_URLS.cluster), 'picky keeps its last good config');
  assert.deepEqual(picky.status().nacks, { [TYPE_URLS.cluster]: 1 });

  // Both move on to v3; the rejection of v2 blocked nobody.
  const v3 = v1.withType(TYPE_URLS.cluster, [cluster('a'), cluster('b')]);
  cache.setSnapshot('all', v3);
  await eventually('both ACK v3', () => (acked('good') === v3.version(TYPE_URLS.cluster) && acked('picky') === acked('good') ? true : undefined));
  assert.deepEqual([...picky.current(TYPE_URLS.cluster)!.resources.keys()], ['a', 'b']);
  assert.equal(pickySeen.length, 3);
  assert.equal(goodSeen.length, 3);
  // Unchanged bytes, same object: consumers can skip unchanged resources by identity.
  assert.equal(goodSeen[2]!.resources.get('a'), goodSeen[0]!.resources.get('a'));
  assert.equal(pickySeen[2]!.resources.get('a'), pickySeen[0]!.resources.get('a'));
  assert.notEqual(goodSeen[2]!.resources.get('b'), undefined);
  const d1 = diffUpdate(goodSeen[0], goodSeen[1]!);
  assert.deepEqual([d1.added.map(([n]) => n), d1.changed, d1.removed, d1.unchanged], [['bad'], [], [], 1]);
  const d2 = diffUpdate(goodSeen[1], goodSeen[2]!);
  assert.deepEqual([d2.added.map(([n]) => n), d2.changed, d2.removed, d2.unchanged], [['b'], [], ['bad'], 1]);
  assert.deepEqual(diffUpdate(undefined, goodSeen[0]!).added.map(([n]) => n), ['a']);
});

test('client keeps the last good config while the server is down and resyncs after it restarts', async (t) => {
  const cache1 = createSnapshotCache();
  const first = await startAds({ cache: cache1, nodeGroup: () => 'all' });
  const port = first.port;
  const client = createAdsClient({ address: first.address, node: { id: 'p' }, backoff: fastBackoff });
  const later: Array<{ stop(): void }> = [];
  t.after(() => {
    client.close();
    first.stop();
    for (const r of later) r.stop();
  });
  const statuses: boolean[] = [];
  client.onStatusChange((s) => statuses.push(s.connected));
  const v1 = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] });
  cache1.setSnapshot('all', v1);
  collect(client, TYPE_URLS.cluster);
  await eventually('v1', () => client.current(TYPE_URLS.cluster));

  first.stop();
  await eventually('disconnected', () => (client.status().connected ? undefined : true));
  assert.equal(client.current(TYPE_URLS.cluster)?.version, v1.version(TYPE_URLS.cluster));

  const cache2 = createSnapshotCache();
  const v2 = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a'), cluster('b')] });
  cache2.setSnapshot('all', v2);
  const second = await startAds({ cache: cache2, nodeGroup: () => 'all' }, port);
  later.push(second);
  await eventually('v2 after reconnect', () => (client.current(TYPE_URLS.cluster)?.version === v2.version(TYPE_URLS.cluster) ? true : undefined), 10_000);
  await eventually('v2 ACKed on the new server', () => (second.ads.connectedProxies()[0]?.types[0]?.ackedVersion === v2.version(TYPE_URLS.cluster) ? true : undefined));
  assert.deepEqual(statuses, [true, false, true]);
  assert.ok(client.status().streams >= 2);
});

test('on a new stream the client resubscribes with its last accepted version, names and node', async (t) => {
  const requests: Array<{ stream: number; req: DiscoveryRequest }> = [];
  const calls: Array<grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>> = [];
  const server = new grpc.Server();
  server.addService(adsServiceDefinition() as unknown as grpc.ServiceDefinition, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => {
      const stream = calls.push(call);
      call.on('data', (req: DiscoveryRequest) => {
        requests.push({ stream, req });
        if (stream === 1 && !req.response_nonce) {
          call.write({ version_info: 'v7', nonce: 'n1', type_url: req.type_url, resources: [encodeResource(TYPE_URLS.endpoint, { cluster_name: 'x' })] });
        }
      });
      call.on('error', () => {});
    },
  });
  const port = await bindServer(server);
  const client = createAdsClient({ address: `127.0.0.1:${port}`, node: { id: 'p', metadata: { NETWORK: 'n1' } }, backoff: fastBackoff });
  t.after(() => {
    client.close();
    server.forceShutdown();
  });
  client.subscribe(TYPE_URLS.endpoint, () => {}, ['x']);
  await eventually('ACK on stream 1', () => requests.find((r) => r.req.response_nonce === 'n1'));
  // The server ends the stream; the client must come back on a new one.
  calls[0]!.emit('error', { code: grpc.status.UNAVAILABLE, details: 'go away' });
  const resub = await eventually('resubscription', () => requests.find((r) => r.stream === 2));
  assert.equal(resub.req.version_info, 'v7');
  assert.equal(resub.req.response_nonce, '');
  assert.deepEqual(resub.req.resource_names, ['x']);
  assert.equal(resub.req.node?.id, 'p');
  assert.equal(resub.req.node?.metadata?.fields?.NETWORK?.stringValue, 'n1');
  assert.equal(requests.filter((r) => r.stream === 1 && r.req.node).length, 1, 'node only on the first request of a stream');
});

test('reconnect attempts follow the backoff on the injected clock', async (t) => {
  // Nothing listens on this port: every stream fails at once with UNAVAILABLE.
  const probe = new grpc.Server();
  const port = await bindServer(probe);
  probe.forceShutdown();
  const clock = createFakeClock();
  const client = createAdsClient({
    address: `127.0.0.1:${port}`,
    node: { id: 'p' },
    clock,
    backoff: { initialMs: 1000, maxMs: 4000, jitter: 0.5, random: () => 0.5 },
  });
  t.after(() => client.close());
  client.subscribe(TYPE_URLS.cluster, () => {});
  const failures = async (n: number) => eventually(`${n} failed streams`, () => (clock.pending() === 1 && client.status().streams === n ? true : undefined));
  await failures(1);
  assert.match(client.status().lastError ?? '', /UNAVAILABLE/);
  clock.advance(999);
  assert.equal(client.status().streams, 1);
  clock.advance(1);
  await failures(2);
  clock.advance(1999);
  assert.equal(client.status().streams, 2);
  clock.advance(1);
  await failures(3);
  clock.advance(4000);
  await failures(4);
  clock.advance(4000);
  await failures(5);
  client.close();
  assert.equal(clock.pending(), 0, 'close cancels the pending retry');
});

test('backoff grows, caps, jitters within bounds and resets', () => {
  const rolls = [0, 0.999, 0.5, 0.5, 0.5];
  const b = createBackoff({ initialMs: 100, maxMs: 400, multiplier: 2, jitter: 0.2, random: () => rolls.shift() ?? 0.5 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [80, 240, 400, 400, 400]);
  b.reset();
  assert.equal(b.next(), 100);
  assert.throws(() => createBackoff({ initialMs: 10, maxMs: 5 }), RangeError);
});

test('client and server over TLS: the right root syncs, a wrong root never gets config', async (t) => {
  const serverCert = selfSignedCert('xds.crossmesh.test');
  const otherRoot = selfSignedCert('someone-else');
  const cache = createSnapshotCache();
  const ads = createAdsServer({ cache, nodeGroup: () => 'all' });
  const server = new grpc.Server();
  ads.register(server);
  const creds = grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(serverCert.keyPem), cert_chain: Buffer.from(serverCert.certPem) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  const good = createAdsClient({ address: `127.0.0.1:${port}`, credentials: grpc.credentials.createSsl(Buffer.from(serverCert.certPem)), node: { id: 'tls-good' }, backoff: fastBackoff });
  const wrong = createAdsClient({ address: `127.0.0.1:${port}`, credentials: grpc.credentials.createSsl(Buffer.from(otherRoot.certPem)), node: { id: 'tls-wrong' }, backoff: fastBackoff });
  t.after(() => {
    good.close();
    wrong.close();
    ads.close();
    server.forceShutdown();
  });
  cache.setSnapshot('all', createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] }));
  collect(good, TYPE_URLS.cluster);
  collect(wrong, TYPE_URLS.cluster);
  await eventually('config over TLS', () => good.current(TYPE_URLS.cluster));
  await eventually('the wrong root to fail', () => (wrong.status().streams >= 2 ? true : undefined));
  assert.equal(wrong.current(TYPE_URLS.cluster), undefined);
  assert.match(wrong.status().lastError ?? '', /UNAVAILABLE/);
  assert.deepEqual(ads.connectedProxies().map((p) => p.node.id), ['tls-good']);
});
