/**
 * The proxy runtime against a real ADS server fed with generateForProxy output: it receives the full state,
 * ACKs it, NACKs what the sidecar rejects while keeping the last good state, survives a control plane
 * restart, answers DNS from NDS and serves its admin endpoints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { createSnapshotCache } from '../src/controlplane/cache/index.js';
import { proxyInfoFromNode, proxyGroupKey } from '../src/controlplane/translate/index.js';
import { TYPE_URLS, edsCluster, encodeResource } from '../src/xds/index.js';
import { createProxy } from '../src/proxy/runtime/index.js';
import { createDnsProxy } from '../src/proxy/dns/index.js';
import type { ProxyOptions } from '../src/proxy/runtime/index.js';
import { eventually, startAds } from './xds-helpers.js';
import { buildMesh, fakeSidecarFactory, httpRequest, snapshotFor } from './proxy-runtime-helpers.js';

const base = (discoveryAddress: string): ProxyOptions => ({
  role: 'sidecar',
  discoveryAddress,
  ip: '127.0.0.1',
  podName: 'sleep-1',
  namespace: 'default',
  serviceAccount: 'sleep',
  cluster: 'ack-1',
  network: 'network1',
  labels: { app: 'sleep' },
  locality: { region: 'region-1', zone: 'zone-a' },
  admin: { port: 0, statusPort: 0, host: '127.0.0.1', statusHost: '127.0.0.1' },
  dns: { port: 0, upstreams: [] },
  backoff: { initialMs: 20, maxMs: 100 },
});

test('sidecar runtime: full state from the control plane, NACK keeps the last good config, reconnect, DNS, admin', async (t) => {
  const m = buildMesh(18080);
  const cache = createSnapshotCache();
  let running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  const { factory, sidecar } = fakeSidecarFactory();
  // The resolver from resolv.conf, standing in: it knows one outside name.
  const upstream = createDnsProxy({ port: 0, lookup: (name) => (name === 'api.example.org' ? { ips: ['192.0.2.10'] } : undefined), upstreams: [] });
  const upstreamPort = (await upstream.listen()).port;
  const proxy = createProxy({ ...base(running.address), createSidecar: factory, dns: { port: 0, upstreams: [{ address: '127.0.0.1', port: upstreamPort }] } });
  t.after(async () => {
    await proxy.close();
    running.stop();
    await upstream.close();
  });

  // What the control plane makes for exactly the node this proxy sends.
  const first = snapshotFor(proxy.node, m);
  cache.setSnapshot(first.group, first.snapshot);
  const addresses = await proxy.start();
  await proxy.whenReady();

  const state = proxy.state();
  assert.deepEqual([...state.clusters.keys()].sort(), [...first.resources.clusters.keys()].sort());
  assert.deepEqual([...state.endpoints.keys()].sort(), [...first.resources.endpoints.keys()].sort());
  assert.deepEqual([...state.listeners.keys()].sort(), [...first.resources.listeners.keys()].sort());
  assert.deepEqual([...state.routes.keys()].sort(), [...first.resources.routes.keys()].sort());
  assert.ok(state.clusters.has('outbound|8000||httpbin.default.svc.cluster.local'), 'remote-only service has a cluster');
  for (const t of [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route]) {
    assert.equal(proxy.versions().get(t)?.version, first.snapshot.version(t), t);
  }
  assert.equal(sidecar.applied.at(-1), state, 'the sidecar runs exactly the accepted state');
  // The server sees the node's metadata as Istio's would, and ACKs for every type.
  const seen = await eventually('acks', () => {
    const p = running.ads.connectedProxies()[0];
    return p && p.types.filter((ty) => ty.ackedVersion).length >= 5 ? p : undefined;
  });
  const info = proxyInfoFromNode(seen.node);
  assert.deepEqual([info.cluster, info.network, info.namespace, info.serviceAccount, info.labels.app, info.locality.zone], ['ack-1', 'network1', 'default', 'sleep', 'sleep', 'zone-a']);
  assert.equal(seen.node.metadata?.INTERCEPTION_MODE, 'REDIRECT');

  // DNS: a remote-only name from NDS, by FQDN and name.ns; an unknown name is not answered locally.
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${addresses.dns!.port}`]);
  const vip = m.vips.get('httpbin.default.svc.cluster.local')!;
  assert.deepEqual(await resolver.resolve4('httpbin.default.svc.cluster.local'), [vip]);
  assert.deepEqual(await resolver.resolve4('httpbin.default'), [vip]);
  assert.deepEqual(await resolver.resolve4('api.example.org'), ['192.0.2.10'], 'other names go to the upstream resolver');
  await assert.rejects(resolver.resolve4('nothing.example.invalid'));

  // Admin.
  const admin = `http://127.0.0.1:${addresses.admin!.port}`;
  const ready = await httpRequest(`${admin}/ready`);
  assert.deepEqual([ready.status, ready.body.trim()], [200, 'LIVE']);
  assert.equal((await httpRequest(`http://127.0.0.1:${addresses.status!.port}/healthz/ready`)).status, 200);
  const dump = JSON.parse((await httpRequest(`${admin}/config_dump`)).body) as { configs: Array<Record<string, any>> };
  const clustersDump = dump.configs.find((c) => String(c['@type']).endsWith('ClustersConfigDump'))!;
  assert.equal(clustersDump.version_info, first.snapshot.version(TYPE_URLS.cluster));
  assert.equal(clustersDump.dynamic_active_clusters.length, first.resources.clusters.size);
  const listenersDump = dump.configs.find((c) => String(c['@type']).endsWith('ListenersConfigDump'))!;
  assert.deepEqual(listenersDump.dynamic_listeners.map((l: any) => l.name).sort(), [...first.resources.listeners.keys()].sort());
  const text = (await httpRequest(`${admin}/clusters`)).body;
  assert.match(text, /^outbound\|80\|\|sleep\.default\.svc\.cluster\.local::[^\n]+::health_flags::healthy$/m);
  const json = JSON.parse((await httpRequest(`${admin}/clusters?format=json`)).body) as { cluster_statuses: Array<{ name: string }> };
  assert.ok(json.cluster_statuses.some((c) => c.name === 'outbound|80||sleep.default.svc.cluster.local'));
  const prom = (await httpRequest(`${admin}/stats/prometheus`)).body;
  assert.match(prom, /^crossmesh_proxy_ready 1$/m);
  assert.match(prom, /^crossmesh_proxy_xds_connected 1$/m);
  assert.match(prom, /# TYPE istio_requests_total counter/);
  assert.equal((await httpRequest(`${admin}/logging?level=loud`, 'POST')).status, 400);
  assert.match((await httpRequest(`${admin}/logging?level=debug`, 'POST')).body, /crossmesh: debug/);

  // A cluster the sidecar rejects: NACKed with its message, the last good clusters stay.
  const goodClusters = proxy.state().clusters;
  const goodVersion = proxy.versions().get(TYPE_URLS.cluster)!.version;
  const bad = first.snapshot.withType(TYPE_URLS.cluster, [
    ...first.snapshot.get(TYPE_URLS.cluster)!.resources.values(),
    encodeResource(TYPE_URLS.cluster, edsCluster('outbound|9|reject|x.default.svc.cluster.local')),
  ]);
  cache.setSnapshot(first.group, bad);
  const nack = await eventually('nack', () => running.ads.connectedProxies()[0]?.types.find((ty) => ty.typeUrl === TYPE_URLS.cluster)?.lastNack);
  assert.match(nack.message, /outbound\|9\|reject\|x\.default\.svc\.cluster\.local: unsupported lb_policy MAGLEV/);
  assert.equal(nack.version, goodVersion, 'the NACK names the version still in force');
  assert.equal(proxy.state().clusters, goodClusters);
  assert.equal(sidecar.applied.at(-1)!.clusters, goodClusters, 'the sidecar is back on the last good state');
  assert.match((await httpRequest(`${admin}/stats/prometheus`)).body, /crossmesh_proxy_xds_rejections_total\{type_url="type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster"\} 1/);

  // A data path that throws is NACKed the same way, and the last good state is put back.
  cache.setSnapshot(first.group, first.snapshot.withType(TYPE_URLS.cluster, [
    ...first.snapshot.get(TYPE_URLS.cluster)!.resources.values(),
    encodeResource(TYPE_URLS.cluster, edsCluster('outbound|9|explode|x.default.svc.cluster.local')),
  ]));
  const nack2 = await eventually('second nack', () => {
    const n = running.ads.connectedProxies()[0]?.types.find((ty) => ty.typeUrl === TYPE_URLS.cluster)?.lastNack;
    return n && n.message.includes('boom') ? n : undefined;
  });
  assert.match(nack2.message, /data path failed to apply the update: boom/);
  assert.equal(sidecar.applied.at(-1)!.clusters, goodClusters);

  // The control plane goes away: the config stays; it comes back on the same port: the proxy resubscribes.
  const port = running.port;
  running.stop();
  cache.setSnapshot(first.group, first.snapshot);
  await eventually('disconnected', () => (proxy.xdsStatus()?.connected === false ? true : undefined));
  assert.equal(proxy.state().clusters, goodClusters);
  assert.equal((await httpRequest(`${admin}/ready`)).status, 200, 'still serving the last config');
  running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) }, port);
  await eventually('reconnected', () => (proxy.xdsStatus()?.connected && running.ads.connectedProxies().length === 1 ? true : undefined));
  // A change made after the restart arrives on the new stream.
  const next = snapshotFor(proxy.node, buildMesh(18080, { ack1: [] }));
  const withExtra = next.snapshot.withType(TYPE_URLS.cluster, [
    ...next.snapshot.get(TYPE_URLS.cluster)!.resources.values(),
    encodeResource(TYPE_URLS.cluster, edsCluster('outbound|7070||new.default.svc.cluster.local')),
  ]);
  cache.setSnapshot(first.group, withExtra);
  await eventually('new cluster', () => (proxy.state().clusters.has('outbound|7070||new.default.svc.cluster.local') ? true : undefined));
  assert.ok((proxy.xdsStatus()?.streams ?? 0) >= 2);
  assert.deepEqual(
    await eventually('EDS follows CDS', () => (proxy.state().endpoints.size === first.resources.endpoints.size ? [...proxy.state().endpoints.keys()].sort() : undefined)),
    [...first.resources.endpoints.keys()].sort(),
  );
});

test('sidecar runtime: ready only with certificate and first push; rotation reaches the sidecar', async (t) => {
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  const { factory, sidecar } = fakeSidecarFactory();
  const mk = (serial: string) => ({ certChainPem: `cert-${serial}`, keyPem: `key-${serial}`, rootsPem: 'roots', spiffeId: 'spiffe://cluster.local/ns/default/sa/sleep' });
  let issue!: (c: ReturnType<typeof mk>) => void;
  const rotations: Array<(c: ReturnType<typeof mk>) => void> = [];
  let closedProvider = false;
  const credentials = {
    ready: () => new Promise<ReturnType<typeof mk>>((r) => (issue = r)),
    current: () => mk('1'),
    onRotate: (cb: (c: ReturnType<typeof mk>) => void) => {
      rotations.push(cb);
      return () => undefined;
    },
    close: () => {
      closedProvider = true;
    },
  };
  const proxy = createProxy({ ...base(running.address), createSidecar: factory, dns: false, credentials });
  t.after(async () => {
    await proxy.close();
    running.stop();
  });
  const addresses = await proxy.start();
  const healthz = `http://127.0.0.1:${addresses.status!.port}/healthz/ready`;
  await eventually('connected stream', () => running.ads.connectedProxies()[0]);
  assert.equal((await httpRequest(healthz)).status, 503);
  const s = snapshotFor(proxy.node, buildMesh(18080));
  cache.setSnapshot(s.group, s.snapshot);
  await eventually('first push', () => (proxy.versions().has(TYPE_URLS.listener) && proxy.versions().has(TYPE_URLS.endpoint) ? true : undefined));
  assert.equal(proxy.isReady(), false, 'no certificate yet');
  assert.equal((await httpRequest(healthz)).status, 503);
  issue(mk('1'));
  await proxy.whenReady();
  assert.equal((await httpRequest(healthz)).status, 200);
  assert.equal(sidecar.options?.credentials()?.certChainPem, 'cert-1');
  const before = sidecar.credentialChanges;
  for (const cb of rotations) cb(mk('2'));
  assert.equal(sidecar.credentialChanges, before + 1);
  assert.equal(sidecar.options?.credentials()?.certChainPem, 'cert-2');
  const dump = JSON.parse((await httpRequest(`http://127.0.0.1:${addresses.admin!.port}/config_dump`)).body) as { configs: Array<Record<string, any>> };
  const secrets = dump.configs.find((c) => String(c['@type']).endsWith('SecretsConfigDump'))!.dynamic_active_secrets as Array<Record<string, any>>;
  assert.equal(Buffer.from(secrets[0]!.secret.tls_certificate.certificate_chain.inline_bytes, 'base64').toString(), 'cert-2');
  assert.equal(secrets[0]!.secret.tls_certificate.private_key.inline_string, '[redacted]');
  await proxy.close();
  assert.ok(closedProvider);
});

test('sidecar runtime with DNS capture off (ISTIO_META_DNS_CAPTURE=false): no DNS proxy, no name table asked for, DNS_CAPTURE=false sent', async (t) => {
  const cache = createSnapshotCache();
  const running = await startAds({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  const { factory } = fakeSidecarFactory();
  const proxy = createProxy({ ...base(running.address), createSidecar: factory, dnsCapture: false });
  t.after(async () => {
    await proxy.close();
    running.stop();
  });
  const s = snapshotFor(proxy.node, buildMesh(18080));
  cache.setSnapshot(s.group, s.snapshot);
  const addresses = await proxy.start();
  await proxy.whenReady();
  assert.equal(addresses.dns, undefined);
  const seen = running.ads.connectedProxies()[0]!;
  assert.equal(seen.node.metadata?.DNS_CAPTURE, 'false');
  assert.ok(seen.types.some((ty) => ty.typeUrl === TYPE_URLS.listener));
  assert.ok(!seen.types.some((ty) => ty.typeUrl === TYPE_URLS.nameTable), 'no NDS subscription');
  assert.equal(proxy.nameTable(), undefined);
});
