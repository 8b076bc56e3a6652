import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import type { Resource } from '../src/api/types.js';
import { EchoClient, echo, startEchoBackend } from './xds-helpers.js';
import type { EchoBackend } from './xds-helpers.js';
import { eventually, exchangeRemoteSecret, startClusters } from './helpers/mesh.js';
import type { TestCluster } from './helpers/mesh.js';

const require = createRequire(import.meta.url);
(require('@grpc/grpc-js-xds') as { register(): void }).register();

const TARGET = 'helloworld.sample.svc.cluster.local:5000';

function grpcService(): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'helloworld', namespace: 'sample' }, spec: { selector: { app: 'helloworld' }, ports: [{ name: 'grpc', port: 5000 }] } };
}

function backendEntry(b: EchoBackend, name: string): Resource {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name, namespace: 'sample' },
    spec: { address: '127.0.0.1', ports: { grpc: b.port }, labels: { app: 'helloworld' }, serviceAccount: 'helloworld' },
  };
}

test('a real @grpc/grpc-js-xds client, driven by two real control planes, balances across both clusters and follows a withdrawal', async (t) => {
  const mesh = await startClusters([
    { name: 'cluster-1', network: 'vpc-1', locality: 'region-1/zone-a' },
    { name: 'cluster-2', network: 'vpc-1', locality: 'region-2/zone-b' },
  ]);
  const [c1, c2] = mesh.clusters as [TestCluster, TestCluster];
  const backends = [await startEchoBackend('cluster-1/a'), await startEchoBackend('cluster-1/b'), await startEchoBackend('cluster-2/a')];
  const clients: grpc.Client[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const b of backends) b.server.forceShutdown();
    await mesh.stop();
  });

  await exchangeRemoteSecret(c2, c1, mesh.root);
  const ns: Resource = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } };
  await c1.cp.store.apply([ns, grpcService(), backendEntry(backends[0]!, 'hw-a'), backendEntry(backends[1]!, 'hw-b')]);
  await c2.cp.store.apply([ns, grpcService(), backendEntry(backends[2]!, 'hw-c')]);
  await eventually(async () => {
    await c1.cp.flush();
    const eps = (await (await fetch(`${c1.cp.addresses().admin}/debug/endpointz`)).json()) as Record<string, Record<string, unknown[]>>;
    return Object.keys(eps[TARGET] ?? {}).length === 2;
  });

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: c1.cp.addresses().xds, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: 'sidecar~127.0.0.10~grpc-client.sample~sample.svc.cluster.local',
      locality: { region: 'region-1', zone: 'zone-a' },
      metadata: { GENERATOR: 'grpc', CLUSTER_ID: 'cluster-1', NETWORK: 'vpc-1', NAMESPACE: 'sample' },
    },
  });
  const client = new EchoClient(`xds:///${TARGET}`, grpc.credentials.createInsecure());
  clients.push(client);

  const counts = new Map<string, number>();
  const calls = 300;
  for (let i = 0; i < calls; i++) {
    const who = await echo(client);
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  for (const b of backends) {
    const n = counts.get(b.name) ?? 0;
    assert.ok(n >= calls * 0.15, `${b.name} got ${n} of ${calls}: ${JSON.stringify([...counts])}`);
  }

  // The client is a proxy of cluster-1 that ACKed what translation produced, and NACKed nothing.
  const proxy = c1.cp.ads.connectedProxies().find((p) => p.node.id.includes('grpc-client'));
  assert.ok(proxy);
  for (const st of proxy.types) assert.equal(st.nacks, 0, `${st.typeUrl} NACKed: ${JSON.stringify(st)}`);

  // cluster-2's workload goes away: every call ends up in cluster-1.
  await c2.cp.store.delete([{ group: 'networking.istio.io', kind: 'WorkloadEntry', namespace: 'sample', name: 'hw-c' }]);
  let streak = 0;
  for (let i = 0; i < 2000 && streak < 30; i++) streak = (await echo(client)).startsWith('cluster-1/') ? streak + 1 : 0;
  assert.equal(streak, 30, 'calls settled on cluster-1');
});
