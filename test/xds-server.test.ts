/**
 * The ADS server's stream protocol over real gRPC on 127.0.0.1: nonces, ACK/NACK, subscriptions,
 * push ordering, group isolation. Requests are written by hand so every field is under test control.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createSnapshot, createSnapshotCache } from '../src/controlplane/cache/index.js';
import type { SnapshotCache } from '../src/controlplane/cache/index.js';
import type { ConnectedProxy, NackInfo } from '../src/controlplane/server/index.js';
import {
  TYPE_URLS,
  apiListener,
  clusterLoadAssignment,
  edsCluster,
  encodeResource,
  resourceName,
  decodeResource,
  simpleRouteConfiguration,
} from '../src/xds/index.js';
import type { Any, DiscoveryRequest, DiscoveryResponse } from '../src/xds/index.js';
import { bindServer, eventually, openRawStream, startAds } from './xds-helpers.js';
import { createAdsServer } from '../src/controlplane/server/index.js';
import type { RawAdsStream, RunningAds } from './xds-helpers.js';

const cluster = (name: string, timeoutMs = 1000): Any => encodeResource(TYPE_URLS.cluster, edsCluster(name, { connectTimeoutMs: timeoutMs }));
const cla = (name: string, port = 8080): Any =>
  encodeResource(TYPE_URLS.endpoint, clusterLoadAssignment(name, [{ locality: { region: 'r1' }, endpoints: [{ address: '10.0.0.1', port }] }]));
const listener = (name: string, route: string): Any => encodeResource(TYPE_URLS.listener, apiListener(name, route));
const route = (name: string, clusterName: string): Any =>
  encodeResource(TYPE_URLS.route, simpleRouteConfiguration(name, [{ domains: ['*'], cluster: clusterName }]));
const names = (resp: DiscoveryResponse): string[] => resp.resources.map(resourceName);

function node(id: string, group = 'g1'): DiscoveryRequest['node'] {
  return { id, metadata: { fields: { GROUP: { stringValue: group } } }, locality: { region: 'r1', zone: 'z1' } };
}

interface Fixture {
  cache: SnapshotCache;
  running: RunningAds;
  nacks: NackInfo[];
  streams: RawAdsStream[];
  open(): RawAdsStream;
  proxy(id: string): ConnectedProxy | undefined;
}

async function fixture(t: { after(fn: () => void): void }): Promise<Fixture> {
  const cache = createSnapshotCache();
  const nacks: NackInfo[] = [];
  const running = await startAds({
    cache,
    nodeGroup: (n) => String(n.metadata?.GROUP ?? 'g1'),
    hooks: { onNack: (_p, _t, nack) => nacks.push(nack) },
  });
  const streams: RawAdsStream[] = [];
  t.after(() => {
    for (const s of streams) s.close();
    running.stop();
  });
  return {
    cache,
    running,
    nacks,
    streams,
    open() {
      const s = openRawStream(running.address);
      streams.push(s);
      return s;
    },
    proxy: (id) => running.ads.connectedProxies().find((p) => p.node.id === id),
  };
}

const typeState = (f: Fixture, id: string, typeUrl: string) => f.proxy(id)?.types.find((s) => s.typeUrl === typeUrl);

test('wildcard CDS: first request answered at once, ACK recorded, nothing resent until the version moves', async (t) => {
  const f = await fixture(t);
  const v1 = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a'), cluster('b')], [TYPE_URLS.listener]: [listener('l', 'r')] });
  f.cache.setSnapshot('g1', v1);
  const s = f.open();
  s.send({ node: node('p1'), type_url: TYPE_URLS.cluster, resource_names: [] });
  const r1 = await s.next();
  assert.equal(r1.type_url, TYPE_URLS.cluster);
  assert.equal(r1.version_info, v1.version(TYPE_URLS.cluster));
  assert.deepEqual(names(r1), ['a', 'b']);
  assert.notEqual(r1.nonce, '');
  s.send({ type_url: TYPE_URLS.cluster, version_info: r1.version_info, response_nonce: r1.nonce });

  // Same content again: same content version, so no push; the next response is the LDS we now ask for.
  f.cache.setSnapshot('g1', createSnapshot({ [TYPE_URLS.cluster]: [cluster('b'), cluster('a')], [TYPE_URLS.listener]: [listener('l', 'r')] }));
  s.send({ type_url: TYPE_URLS.listener, resource_names: [] });
  const r2 = await s.next();
  assert.equal(r2.type_url, TYPE_URLS.listener);
  assert.notEqual(r2.nonce, r1.nonce);

  const st = typeState(f, 'p1', TYPE_URLS.cluster);
  assert.equal(st?.ackedVersion, v1.version(TYPE_URLS.cluster));
  assert.equal(st?.ackedNonce, r1.nonce);
  assert.equal(st?.names, undefined, 'wildcard');

  // A real change is pushed without being asked.
  f.cache.setSnapshot('g1', v1.withType(TYPE_URLS.cluster, [cluster('a'), cluster('b'), cluster('c')]));
  const r3 = await s.next();
  assert.equal(r3.type_url, TYPE_URLS.cluster);
  assert.deepEqual(names(r3), ['a', 'b', 'c']);
});

test('NACK: recorded with its error, counted, hooked; the rejected version is not resent, the next one is', async (t) => {
  const f = await fixture(t);
  const v1 = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] });
  f.cache.setSnapshot('g1', v1);
  const s = f.open();
  s.send({ node: node('p1'), type_url: TYPE_URLS.cluster });
  const r1 = await s.next();
  s.send({ type_url: TYPE_URLS.cluster, version_info: r1.version_info, response_nonce: r1.nonce });
  const v2 = v1.withType(TYPE_URLS.cluster, [cluster('a', 2000)]);
  await eventually('ACK of v1', () => typeState(f, 'p1', TYPE_URLS.cluster)?.ackedNonce);
  assert.equal(typeState(f, 'p1', TYPE_URLS.cluster)?.sync, 'SYNCED');
  f.cache.setSnapshot('g1', v2);
  const r2 = await s.next();
  assert.equal(r2.version_info, v2.version(TYPE_URLS.cluster));
  // The proxy rejects v2 and says it keeps v1.
  s.send({ type_url: TYPE_URLS.cluster, version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { code: 3, message: 'bad cluster a' } });

  s.send({ type_url: TYPE_URLS.listener });
  f.cache.setSnapshot('g1', v2.withType(TYPE_URLS.listener, [listener('l', 'r')]));
  const r3 = await s.next();
  assert.equal(r3.type_url, TYPE_URLS.listener, 'the NACKed CDS version must not come again');

  const st = typeState(f, 'p1', TYPE_URLS.cluster);
  assert.equal(st?.ackedVersion, v1.version(TYPE_URLS.cluster));
  assert.equal(st?.nacks, 1);
  assert.equal(st?.lastNack?.message, 'bad cluster a');
  assert.equal(st?.lastNack?.nonce, r2.nonce);
  assert.equal(st?.sync, 'NACKED');
  assert.equal(f.nacks.length, 1);
  assert.equal(f.running.ads.stats().nacks, 1);

  const v3 = createSnapshot({ [TYPE_URLS.cluster]: [cluster('a', 3000)], [TYPE_URLS.listener]: [listener('l', 'r')] });
  f.cache.setSnapshot('g1', v3);
  const r4 = await s.next();
  assert.equal(r4.type_url, TYPE_URLS.cluster);
  assert.equal(r4.version_info, v3.version(TYPE_URLS.cluster));
});

test('a request with a stale nonce is ignored, names and error_detail included', async (t) => {
  const f = await fixture(t);
  const v1 = createSnapshot({ [TYPE_URLS.endpoint]: [cla('a'), cla('b')] });
  f.cache.setSnapshot('g1', v1);
  const s = f.open();
  s.send({ node: node('p1'), type_url: TYPE_URLS.endpoint, resource_names: ['a'] });
  const r1 = await s.next();
  assert.deepEqual(names(r1), ['a']);
  s.send({ type_url: TYPE_URLS.endpoint, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: ['a'] });
  await eventually('ACK', () => typeState(f, 'p1', TYPE_URLS.endpoint)?.ackedNonce);
  const v2 = v1.withType(TYPE_URLS.endpoint, [cla('a', 9090), cla('b')]);
  f.cache.setSnapshot('g1', v2);
  const r2 = await s.next();

  // Written as if r2 had not arrived yet: old nonce, a NACK and a new name. All of it is stale.
  s.send({ type_url: TYPE_URLS.endpoint, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: ['a', 'b'], error_detail: { code: 3, message: 'late' } });
  s.send({ type_url: TYPE_URLS.endpoint, version_info: r2.version_info, response_nonce: r2.nonce, resource_names: ['a'] });
  await eventually('ACK of r2', () => (typeState(f, 'p1', TYPE_URLS.endpoint)?.ackedNonce === r2.nonce ? true : undefined));
  const st = typeState(f, 'p1', TYPE_URLS.endpoint);
  assert.equal(st?.nacks, 0);
  assert.deepEqual(st?.names, ['a']);
  assert.equal(st?.ackedVersion, v2.version(TYPE_URLS.endpoint));
  assert.equal(f.running.ads.stats().staleNonces, 1);
});

test('named subscriptions: only named resources, a new name is answered at once, no names means nothing', async (t) => {
  const f = await fixture(t);
  const v1 = createSnapshot({ [TYPE_URLS.endpoint]: [cla('a'), cla('b'), cla('c')], [TYPE_URLS.route]: [route('r', 'a')] });
  f.cache.setSnapshot('g1', v1);
  const s = f.open();
  // No names for a named type: subscribed to nothing, so the RDS request is the first thing answered.
  s.send({ node: node('p1'), type_url: TYPE_URLS.endpoint, resource_names: [] });
  s.send({ type_url: TYPE_URLS.route, resource_names: ['r'] });
  const r0 = await s.next();
  assert.equal(r0.type_url, TYPE_URLS.route);
  assert.equal(typeState(f, 'p1', TYPE_URLS.endpoint)?.sync, 'NOT_SENT');
  assert.equal(typeState(f, 'p1', TYPE_URLS.route)?.sync, 'STALE', 'pushed, not yet ACKed');
  s.send({ type_url: TYPE_URLS.endpoint, resource_names: ['b', 'missing'] });
  const r1 = await s.next();
  assert.equal(r1.type_url, TYPE_URLS.endpoint);
  assert.deepEqual(names(r1), ['b']);
  // Adding a name on the ACK gets an answer though the version did not change.
  s.send({ type_url: TYPE_URLS.endpoint, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: ['a', 'b'] });
  const r2 = await s.next();
  assert.equal(r2.version_info, r1.version_info);
  assert.deepEqual(names(r2), ['a', 'b']);
  // Dropping a name needs no answer.
  s.send({ type_url: TYPE_URLS.endpoint, version_info: r2.version_info, response_nonce: r2.nonce, resource_names: ['a'] });
  s.send({ type_url: TYPE_URLS.cluster, resource_names: [] });
  f.cache.setSnapshot('g1', v1.withType(TYPE_URLS.cluster, [cluster('a')]));
  assert.equal((await s.next()).type_url, TYPE_URLS.cluster);
});

test('several changed types are pushed CDS, EDS, LDS, RDS', async (t) => {
  const f = await fixture(t);
  const build = (n: number) =>
    createSnapshot({
      [TYPE_URLS.cluster]: [cluster('c', 1000 + n)],
      [TYPE_URLS.endpoint]: [cla('c', 8000 + n)],
      [TYPE_URLS.listener]: [listener('l', `r`), listener(`l${n}`, 'r')],
      [TYPE_URLS.route]: [route('r', `c${n}`)],
    });
  f.cache.setSnapshot('g1', build(1));
  const s = f.open();
  // Subscribe in the opposite order, ACK everything.
  const subs: Array<[string, string[]]> = [
    [TYPE_URLS.route, ['r']],
    [TYPE_URLS.listener, []],
    [TYPE_URLS.endpoint, ['c']],
    [TYPE_URLS.cluster, []],
  ];
  subs.forEach(([typeUrl, resource_names], i) => s.send({ ...(i === 0 ? { node: node('p1') } : {}), type_url: typeUrl, resource_names }));
  for (let i = 0; i < 4; i++) {
    const r = await s.next();
    s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: subs.find(([u]) => u === r.type_url)![1] });
  }
  await eventually('four ACKs', () => (f.proxy('p1')?.types.every((st) => st.ackedNonce) && f.proxy('p1')?.types.length === 4 ? true : undefined));
  f.cache.setSnapshot('g1', build(2));
  const order: string[] = [];
  for (let i = 0; i < 4; i++) order.push((await s.next()).type_url);
  assert.deepEqual(order, [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route]);
});

test('groups are isolated, and a stream without a node is refused', async (t) => {
  const f = await fixture(t);
  f.cache.setSnapshot('g1', createSnapshot({ [TYPE_URLS.cluster]: [cluster('one')] }));
  f.cache.setSnapshot('g2', createSnapshot({ [TYPE_URLS.cluster]: [cluster('two')] }));
  const s1 = f.open();
  const s2 = f.open();
  s1.send({ node: node('p1', 'g1'), type_url: TYPE_URLS.cluster });
  s2.send({ node: node('p2', 'g2'), type_url: TYPE_URLS.cluster });
  assert.deepEqual(names(await s1.next()), ['one']);
  assert.deepEqual(names(await s2.next()), ['two']);
  assert.deepEqual(
    f.running.ads.connectedProxies().map((p) => [p.node.id, p.types[0]?.group]).sort(),
    [
      ['p1', 'g1'],
      ['p2', 'g2'],
    ],
  );

  const bad = f.open();
  bad.send({ type_url: TYPE_URLS.cluster });
  const status = await bad.status();
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.match(status.details, /node\.id/);
});

test('a closed stream leaves no watch behind and fires onStreamClosed', async (t) => {
  const cache = createSnapshotCache();
  const closed: string[] = [];
  const running = await startAds({ cache, nodeGroup: () => 'g', hooks: { onStreamClosed: (p) => closed.push(p.node.id) } });
  t.after(() => running.stop());
  const s = openRawStream(running.address);
  s.send({ node: node('p1'), type_url: TYPE_URLS.cluster });
  await eventually('watch registered', () => (cache.watchCount() === 1 ? true : undefined));
  s.close();
  await eventually('stream closed', () => (closed.length === 1 ? true : undefined));
  assert.equal(cache.watchCount(), 0);
  assert.deepEqual(running.ads.connectedProxies(), []);
});

test('nodeGroup may differ by type (per-identity secrets beside shared clusters) and may refuse a node', async (t) => {
  const cache = createSnapshotCache();
  const running = await startAds({
    cache,
    nodeGroup: (n, typeUrl) => {
      if (n.id === 'intruder') throw new Error('unknown proxy');
      return typeUrl === TYPE_URLS.secret ? `identity:${n.id}` : 'shared';
    },
  });
  const streams: RawAdsStream[] = [];
  t.after(() => {
    for (const s of streams) s.close();
    running.stop();
  });
  const secret = (cert: string): Any => encodeResource(TYPE_URLS.secret, { name: 'default', tls_certificate: { certificate_chain: { inline_string: cert } } });
  cache.setSnapshot('shared', createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] }));
  cache.setSnapshot('identity:p1', createSnapshot({ [TYPE_URLS.secret]: [secret('cert-of-p1')] }));
  cache.setSnapshot('identity:p2', createSnapshot({ [TYPE_URLS.secret]: [secret('cert-of-p2')] }));
  const certOf = async (id: string): Promise<string> => {
    const s = openRawStream(running.address);
    streams.push(s);
    s.send({ node: node(id), type_url: TYPE_URLS.cluster });
    assert.deepEqual(names(await s.next()), ['a']);
    s.send({ type_url: TYPE_URLS.secret, resource_names: ['default'] });
    const r = await s.next();
    return String((decodeResource(r.resources[0]!).value as { tls_certificate: { certificate_chain: { inline_string: string } } }).tls_certificate.certificate_chain.inline_string);
  };
  assert.equal(await certOf('p1'), 'cert-of-p1');
  assert.equal(await certOf('p2'), 'cert-of-p2');
  const p1 = running.ads.connectedProxies().find((p) => p.node.id === 'p1');
  assert.deepEqual(p1?.types.map((s) => [s.typeUrl, s.group]), [
    [TYPE_URLS.cluster, 'shared'],
    [TYPE_URLS.secret, 'identity:p1'],
  ]);

  const bad = openRawStream(running.address);
  streams.push(bad);
  bad.send({ node: node('intruder'), type_url: TYPE_URLS.cluster });
  const status = await bad.status();
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.match(status.details, /intruder.*unknown proxy/);
});

test('a throwing hook does not break the stream; an emptied LDS subscription gets no pushes', async (t) => {
  const cache = createSnapshotCache();
  const running = await startAds({
    cache,
    nodeGroup: () => 'g',
    hooks: {
      onAck: () => {
        throw new Error('metrics bug');
      },
    },
  });
  const s = openRawStream(running.address);
  t.after(() => {
    s.close();
    running.stop();
  });
  const v1 = createSnapshot({
    [TYPE_URLS.listener]: [listener('l1', 'r'), listener('l2', 'r')],
    [TYPE_URLS.cluster]: [cluster('a')],
    [TYPE_URLS.route]: [route('r', 'a')],
  });
  cache.setSnapshot('g', v1);
  s.send({ node: node('p1'), type_url: TYPE_URLS.listener, resource_names: ['l1'] });
  const r1 = await s.next();
  assert.deepEqual(names(r1), ['l1']);
  // ACK (the hook throws) and unsubscribe from every listener at once.
  s.send({ type_url: TYPE_URLS.listener, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: [] });
  s.send({ type_url: TYPE_URLS.cluster });
  const c1 = await s.next();
  assert.equal(c1.type_url, TYPE_URLS.cluster);
  s.send({ type_url: TYPE_URLS.cluster, version_info: c1.version_info, response_nonce: c1.nonce });
  await eventually('CDS ACK', () => running.ads.connectedProxies()[0]?.types.find((x) => x.typeUrl === TYPE_URLS.cluster)?.ackedNonce);
  cache.setSnapshot('g', v1.withType(TYPE_URLS.listener, [listener('l1', 'r2')]).withType(TYPE_URLS.cluster, [cluster('a', 5)]));
  assert.equal((await s.next()).type_url, TYPE_URLS.cluster);
  // Any LDS push would have been written with the CDS one, before this RDS answer.
  s.send({ type_url: TYPE_URLS.route, resource_names: ['r'] });
  assert.equal((await s.next()).type_url, TYPE_URLS.route, 'no LDS push for an empty subscription');
  assert.equal(running.ads.connectedProxies()[0]?.types.find((x) => x.typeUrl === TYPE_URLS.listener)?.acks, 1);
});

test('one ADS server registered on two gRPC servers serves and lists the streams of both', async (t) => {
  const cache = createSnapshotCache();
  const ads = createAdsServer({ cache, nodeGroup: () => 'g' });
  const servers = [new grpc.Server(), new grpc.Server()];
  for (const s of servers) ads.register(s);
  const ports = await Promise.all(servers.map((s) => bindServer(s)));
  const streams = ports.map((p) => openRawStream(`127.0.0.1:${p}`));
  t.after(() => {
    for (const s of streams) s.close();
    ads.close();
    for (const s of servers) s.forceShutdown();
  });
  cache.setSnapshot('g', createSnapshot({ [TYPE_URLS.cluster]: [cluster('a')] }));
  streams.forEach((s, i) => s.send({ node: node(`p${i}`), type_url: TYPE_URLS.cluster }));
  for (const s of streams) assert.deepEqual(names(await s.next()), ['a']);
  assert.deepEqual(ads.connectedProxies().map((p) => p.node.id).sort(), ['p0', 'p1']);
  ads.close();
  for (const s of streams) assert.equal((await s.status()).code, grpc.status.UNAVAILABLE);
});
