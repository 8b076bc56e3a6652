/**
 * Interop with the real @grpc/grpc-js-xds client: our ADS server drives a proxyless gRPC channel to
 * `xds:///helloworld.sample.svc.cluster.local:5000` through ApiListener → RDS → CDS → EDS, and the
 * channel balances across backends in two clusters' localities, then follows an endpoint withdrawal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { createSnapshot, createSnapshotCache } from '../src/controlplane/cache/index.js';
import {
  EXTENSION_TYPE_URLS,
  TYPE_URLS,
  apiListener,
  clusterLoadAssignment,
  edsCluster,
  encodeResource,
  outboundClusterName,
  routerFilter,
  simpleRouteConfiguration,
  typed,
} from '../src/xds/index.js';
import type { LocalityInput } from '../src/xds/index.js';
import type { ConnectedProxy } from '../src/controlplane/server/index.js';
import { EchoClient, echo, eventually, startAds, startEchoBackend } from './xds-helpers.js';
import type { EchoBackend } from './xds-helpers.js';

const require = createRequire(import.meta.url);
(require('@grpc/grpc-js-xds') as { register(): void }).register();

const HOST = 'helloworld.sample.svc.cluster.local';
const LISTENER = `${HOST}:5000`;
const CLUSTER = outboundClusterName(5000, '', HOST);

function endpoints(backends: Array<{ backend: EchoBackend; cluster: string; region: string; zone: string }>): LocalityInput[] {
  const byLocality = new Map<string, LocalityInput>();
  for (const b of backends) {
    const key = `${b.region}/${b.zone}`;
    let l = byLocality.get(key);
    if (!l) byLocality.set(key, (l = { locality: { region: b.region, zone: b.zone }, endpoints: [] }));
    l.endpoints.push({ address: '127.0.0.1', port: b.backend.port, istioMetadata: { cluster: b.cluster } });
  }
  return [...byLocality.values()];
}

test('grpc-js-xds balances across two clusters and follows the withdrawal of one', async (t) => {
  const a1 = await startEchoBackend('cluster-1/a1');
  const a2 = await startEchoBackend('cluster-1/a2');
  const b1 = await startEchoBackend('cluster-2/b1');
  const backends = [a1, a2, b1];
  const cache = createSnapshotCache();
  const acks: Array<{ typeUrl: string; version: string }> = [];
  const nacks: Array<{ typeUrl: string; message: string }> = [];
  const running = await startAds({
    cache,
    nodeGroup: (node) => String(node.metadata?.CLUSTER_ID ?? 'default'),
    hooks: {
      onAck: (_p, typeUrl, version) => acks.push({ typeUrl, version }),
      onNack: (_p, typeUrl, nack) => nacks.push({ typeUrl, message: nack.message }),
    },
  });
  const clients: grpc.Client[] = [];
  t.after(() => {
    for (const c of clients) c.close();
    running.stop();
    for (const b of backends) b.server.forceShutdown();
  });

  const all = [
    { backend: a1, cluster: 'cluster-1', region: 'region-1', zone: 'zone-a' },
    { backend: a2, cluster: 'cluster-1', region: 'region-1', zone: 'zone-a' },
    { backend: b1, cluster: 'cluster-2', region: 'region-2', zone: 'zone-b' },
  ];
  const base = createSnapshot({
    [TYPE_URLS.listener]: [encodeResource(TYPE_URLS.listener, apiListener(LISTENER, LISTENER))],
    [TYPE_URLS.route]: [encodeResource(TYPE_URLS.route, simpleRouteConfiguration(LISTENER, [{ domains: [HOST, LISTENER], cluster: CLUSTER }]))],
    [TYPE_URLS.cluster]: [encodeResource(TYPE_URLS.cluster, edsCluster(CLUSTER))],
    [TYPE_URLS.endpoint]: [encodeResource(TYPE_URLS.endpoint, clusterLoadAssignment(CLUSTER, endpoints(all)))],
  });
  cache.setSnapshot('cluster-1', base);

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: running.address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: 'sidecar~127.0.0.10~grpc-client.sample~sample.svc.cluster.local',
      locality: { region: 'region-1', zone: 'zone-a' },
      metadata: { CLUSTER_ID: 'cluster-1', NETWORK: 'network-1', NAMESPACE: 'sample' },
    },
  });
  const client = new EchoClient(`xds:///${LISTENER}`, grpc.credentials.createInsecure());
  clients.push(client);

  const counts = new Map<string, number>();
  const calls = 300;
  for (let i = 0; i < calls; i++) {
    const who = await echo(client);
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  // Localities are weighted by endpoint count (2 and 1), round robin inside: about a third each.
  for (const b of backends) {
    const n = counts.get(b.name) ?? 0;
    assert.ok(n >= calls * 0.15, `${b.name} got ${n} of ${calls} calls: ${JSON.stringify([...counts])}`);
  }

  // The proxyless client shows up as a proxy that ACKed all four types, locality and metadata intact.
  const proxies: ConnectedProxy[] = running.ads.connectedProxies();
  assert.equal(proxies.length, 1);
  const proxy = proxies[0]!;
  assert.deepEqual(proxy.node.locality, { region: 'region-1', zone: 'zone-a' });
  assert.equal(proxy.node.metadata?.NETWORK, 'network-1');
  for (const typeUrl of [TYPE_URLS.listener, TYPE_URLS.route, TYPE_URLS.cluster, TYPE_URLS.endpoint]) {
    const st = proxy.types.find((s) => s.typeUrl === typeUrl);
    assert.equal(st?.ackedVersion, base.version(typeUrl), typeUrl);
    assert.equal(st?.nacks, 0);
    assert.equal(st?.group, 'cluster-1');
    assert.equal(st?.sync, 'SYNCED');
  }

  // Withdraw cluster-2 through the endpoint fast path: only EDS moves.
  const withdrawn = cache.setEndpoints('cluster-1', [encodeResource(TYPE_URLS.endpoint, clusterLoadAssignment(CLUSTER, endpoints(all.slice(0, 2))))]);
  assert.notEqual(withdrawn.version(TYPE_URLS.endpoint), base.version(TYPE_URLS.endpoint));
  assert.equal(withdrawn.version(TYPE_URLS.cluster), base.version(TYPE_URLS.cluster));
  await eventually('the EDS withdrawal to be ACKed', () =>
    acks.find((a) => a.typeUrl === TYPE_URLS.endpoint && a.version === withdrawn.version(TYPE_URLS.endpoint)),
  );
  // The ACK precedes the new picker by a tick or so; then no call may reach cluster-2 again.
  let streak = 0;
  for (let i = 0; i < 2000 && streak < 20; i++) streak = (await echo(client)).startsWith('cluster-1/') ? streak + 1 : 0;
  assert.equal(streak, 20, 'calls never settled on cluster-1');
  const after = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const who = await echo(client);
    after.set(who, (after.get(who) ?? 0) + 1);
  }
  assert.equal(after.get(b1.name), undefined, `cluster-2 still got calls: ${JSON.stringify([...after])}`);
  assert.ok((after.get(a1.name) ?? 0) >= 25 && (after.get(a2.name) ?? 0) >= 25, JSON.stringify([...after]));
  // Only endpoints were pushed for the withdrawal: no second version of any other type was acked.
  const versionsSeen = (typeUrl: string): number => new Set(acks.filter((a) => a.typeUrl === typeUrl).map((a) => a.version)).size;
  assert.equal(versionsSeen(TYPE_URLS.cluster), 1);
  assert.equal(versionsSeen(TYPE_URLS.listener), 1);
  assert.equal(nacks.length, 0);
  assert.equal(versionsSeen(TYPE_URLS.endpoint), 2);

  // A listener the client must reject (no route specifier): it NACKs, and keeps serving calls on the last
  // good config; the good listener pushed next is ACKed again.
  const badListener = encodeResource(TYPE_URLS.listener, {
    name: LISTENER,
    api_listener: { api_listener: typed(EXTENSION_TYPE_URLS.httpConnectionManager, { http_filters: [routerFilter()] }) },
  });
  cache.setSnapshot('cluster-1', withdrawn.withType(TYPE_URLS.listener, [badListener]));
  const nack = await eventually('the bad listener to be NACKed', () => nacks.find((n) => n.typeUrl === TYPE_URLS.listener));
  assert.match(nack.message, /route_specifier/);
  for (let i = 0; i < 20; i++) assert.match(await echo(client), /^cluster-1\//);
  const st = running.ads.connectedProxies()[0]?.types.find((s) => s.typeUrl === TYPE_URLS.listener);
  assert.equal(st?.ackedVersion, base.version(TYPE_URLS.listener));
  assert.equal(st?.lastNack?.message, nack.message);
  cache.setSnapshot('cluster-1', withdrawn);
  await eventually('the good listener to be ACKed again', () =>
    acks.filter((a) => a.typeUrl === TYPE_URLS.listener && a.version === base.version(TYPE_URLS.listener)).length === 2 ? true : undefined,
  );
  assert.equal(await echo(client).then((w) => w.startsWith('cluster-1/')), true);
});
