/**
 * xDS over TLS as on 15012: the proxy trusts the mesh root and presents its workload certificate (the
 * server requires one); after a rotation it reconnects with the new certificate and stays in sync.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createSnapshotCache } from '../src/controlplane/cache/index.js';
import { createAdsServer } from '../src/controlplane/server/index.js';
import { proxyInfoFromNode, proxyGroupKey } from '../src/controlplane/translate/index.js';
import { TYPE_URLS } from '../src/xds/index.js';
import { createProxy } from '../src/proxy/runtime/index.js';
import type { CredentialProvider, SidecarCredentials } from '../src/proxy/runtime/index.js';
import { createTestPki } from './proxy-certs.js';
import { eventually } from './xds-helpers.js';
import { buildMesh, fakeSidecarFactory, snapshotFor } from './proxy-runtime-helpers.js';

test('xDS over mutual TLS; a rotated certificate reconnects the stream and keeps the state', async (t) => {
  const pki = await createTestPki();
  const serverLeaf = await pki.issue({ spiffe: 'spiffe://cluster.local/ns/istio-system/sa/istiod', dns: ['istiod.istio-system.svc'] });
  const leaf1 = await pki.issue({ spiffe: 'spiffe://cluster.local/ns/default/sa/sleep' });
  const leaf2 = await pki.issue({ spiffe: 'spiffe://cluster.local/ns/default/sa/sleep' });
  const cache = createSnapshotCache();
  const ads = createAdsServer({ cache, nodeGroup: (node) => proxyGroupKey(proxyInfoFromNode(node)) });
  const server = new grpc.Server();
  ads.register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(Buffer.from(pki.rootPem), [{ cert_chain: Buffer.from(serverLeaf.cert), private_key: Buffer.from(serverLeaf.key) }], true),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  const asCreds = (l: { cert: string; key: string }): SidecarCredentials => ({ certChainPem: l.cert, keyPem: l.key, rootsPem: pki.rootPem, spiffeId: 'spiffe://cluster.local/ns/default/sa/sleep' });
  let current = asCreds(leaf1);
  const listeners: Array<(c: SidecarCredentials) => void> = [];
  const credentials: CredentialProvider = { ready: async () => current, current: () => current, onRotate: (cb) => (listeners.push(cb), () => undefined), close: () => undefined };
  const { factory } = fakeSidecarFactory();
  const proxy = createProxy({
    role: 'sidecar', discoveryAddress: `127.0.0.1:${port}`, xdsTls: { rootsPem: pki.rootPem, serverName: 'istiod.istio-system.svc' },
    ip: '127.0.0.1', podName: 'sleep-1', namespace: 'default', serviceAccount: 'sleep', cluster: 'ack-1', network: 'network1', labels: { app: 'sleep' },
    admin: false, dns: false, createSidecar: factory, credentials, backoff: { initialMs: 20, maxMs: 100 },
  });
  t.after(async () => {
    await proxy.close();
    ads.close();
    server.forceShutdown();
  });
  const s = snapshotFor(proxy.node, buildMesh(18080));
  cache.setSnapshot(s.group, s.snapshot);
  await proxy.start();
  await proxy.whenReady();
  assert.equal(proxy.versions().get(TYPE_URLS.cluster)?.version, s.snapshot.version(TYPE_URLS.cluster));
  const clusters = proxy.state().clusters;
  assert.equal(ads.stats().streams, 1);

  current = asCreds(leaf2);
  for (const cb of listeners) cb(current);
  assert.equal(proxy.state().clusters, clusters, 'the state in force is kept while reconnecting');
  await eventually('new stream synced', () => {
    const p = ads.connectedProxies();
    return ads.stats().streams === 2 && p.length === 1 && p[0]!.types.filter((ty) => ty.ackedVersion).length >= 5 ? true : undefined;
  });
  assert.equal(proxy.xdsStatus()?.connected, true);
  assert.equal(proxy.versions().get(TYPE_URLS.endpoint)?.version, s.snapshot.version(TYPE_URLS.endpoint));
  assert.equal(proxy.state().endpoints.size, s.resources.endpoints.size, 'EDS names carried over to the new stream');
});
