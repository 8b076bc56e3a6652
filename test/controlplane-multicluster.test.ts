import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdsClient, ResourceUpdate } from '../src/xds/index.js';
import { TYPE_URLS, createAdsClient } from '../src/xds/index.js';
import type { TestCluster } from './helpers/mesh.js';
import { eastWestGatewayService, eventually, exchangeRemoteSecret, service, startClusters, workloadEntry } from './helpers/mesh.js';
import { remoteSecret } from '../src/controlplane/index.js';
import { buildKubeconfig } from '../src/registry/kube-client/index.js';

const HOST = 'helloworld.sample.svc.cluster.local';
const CLUSTER = `outbound|5000||${HOST}`;

/** A sidecar-like ADS client of `c` that records the endpoints it is sent for helloworld. */
function sidecarOf(c: TestCluster, ip: string, name = 'sleep-1'): { client: AdsClient; endpoints(): string[] } {
  let latest: string[] = [];
  const client = createAdsClient({
    address: c.cp.addresses().xds,
    node: {
      id: `sidecar~${ip}~${name}.sample~sample.svc.cluster.local`,
      metadata: { CLUSTER_ID: c.name, NETWORK: c.network, NAMESPACE: 'sample', LABELS: { app: 'sleep' }, SERVICE_ACCOUNT: 'sleep' },
      locality: { region: 'r', zone: 'z' },
    },
  });
  client.subscribe(TYPE_URLS.cluster, () => undefined);
  client.subscribe(
    TYPE_URLS.endpoint,
    (u: ResourceUpdate) => {
      const cla = u.resources.get(CLUSTER) as any;
      latest = (cla?.endpoints ?? []).flatMap((l: any) => (l.lb_endpoints ?? []).map((e: any) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`)).sort();
    },
    [CLUSTER],
  );
  return { client, endpoints: () => latest };
}

async function withTwoClusters(sameNetwork: boolean, fn: (c1: TestCluster, c2: TestCluster, root: Awaited<ReturnType<typeof startClusters>>['root']) => Promise<void>, opts: Parameters<typeof startClusters>[1] = {}) {
  const mesh = await startClusters(
    [
      { name: 'cluster-1', network: 'vpc-1', locality: 'r1/z1' },
      { name: 'cluster-2', network: sameNetwork ? 'vpc-1' : 'vpc-2', locality: 'r2/z2' },
    ],
    opts,
  );
  const [c1, c2] = mesh.clusters as [TestCluster, TestCluster];
  try {
    for (const c of [c1, c2]) await c.cp.store.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } }, service('sample', 'helloworld', 5000)]);
    await c1.cp.store.apply([workloadEntry('sample', 'hw-v1', '10.1.0.5', { app: 'helloworld', version: 'v1' })]);
    await c2.cp.store.apply([workloadEntry('sample', 'hw-v2', '10.2.0.5', { app: 'helloworld', version: 'v2' })]);
    await fn(c1, c2, mesh.root);
  } finally {
    await mesh.stop();
  }
}

test('multi-primary, one network: remote secrets both ways make each sidecar see both clusters\' endpoints', async () => {
  await withTwoClusters(true, async (c1, c2, root) => {
    await exchangeRemoteSecret(c1, c2, root);
    await exchangeRemoteSecret(c2, c1, root);
    const s1 = sidecarOf(c1, '10.1.0.9');
    const s2 = sidecarOf(c2, '10.2.0.9');
    try {
      const want = ['10.1.0.5:5000', '10.2.0.5:5000'];
      assert.deepEqual(await eventually(() => (s1.endpoints().length === 2 ? s1.endpoints() : undefined)), want);
      assert.deepEqual(await eventually(() => (s2.endpoints().length === 2 ? s2.endpoints() : undefined)), want);
      const metrics = await (await fetch(`${c1.cp.addresses().admin}/metrics`)).text();
      assert.match(metrics, /crossmesh_remote_cluster_synced\{cluster="cluster-2",status="synced"\} 1/);
      assert.match(metrics, /^pilot_xds [1-9]/m);
      // A new workload in cluster-2 reaches cluster-1's sidecar through the EDS fast path: clusters untouched.
      const push = async () => (await (await fetch(`${c1.cp.addresses().admin}/debug/push`)).json()) as { endpointPushes: number };
      const cdsVersion = () => c1.cp.ads.connectedProxies()[0]!.types.find((t) => t.typeUrl === TYPE_URLS.cluster)?.ackedVersion;
      const before = { push: (await push()).endpointPushes, cds: cdsVersion() };
      await c2.cp.store.apply([workloadEntry('sample', 'hw-v2-b', '10.2.0.6', { app: 'helloworld', version: 'v2' })]);
      assert.ok(await eventually(() => s1.endpoints().includes('10.2.0.6:5000')), 'new remote endpoint pushed');
      assert.ok((await push()).endpointPushes > before.push, 'served by the endpoint fast path');
      assert.equal(cdsVersion(), before.cds, 'clusters were not re-sent');
    } finally {
      s1.client.close();
      s2.client.close();
    }
  });
});

test('the mesh trust bundle is served over SDS as ROOTCA; no private key ever is', async () => {
  await withTwoClusters(true, async (c1, _c2, root) => {
    let secrets: ReadonlyMap<string, any> = new Map();
    const client = createAdsClient({
      address: c1.cp.addresses().xds,
      node: { id: 'sidecar~10.1.0.9~sleep-1.sample~sample.svc.cluster.local', metadata: { CLUSTER_ID: 'cluster-1', NETWORK: 'vpc-1', NAMESPACE: 'sample' } },
    });
    client.subscribe(TYPE_URLS.secret, (u) => void (secrets = u.resources), ['ROOTCA', 'default']);
    try {
      const ca = await eventually(() => secrets.get('ROOTCA')?.validation_context?.trusted_ca?.inline_string as string | undefined);
      assert.ok(ca?.includes(root.certPem.trim().split('\n')[1]!), 'ROOTCA carries the shared root');
      assert.equal(secrets.has('default'), false, 'the workload key is never served by the control plane');
    } finally {
      client.close();
    }
  });
});

test('two networks: remote endpoints arrive as the remote network\'s east-west gateway on 15443', async () => {
  await withTwoClusters(false, async (c1, c2, root) => {
    await c2.cp.store.apply([eastWestGatewayService('vpc-2', '198.51.100.20')]);
    await exchangeRemoteSecret(c2, c1, root);
    const s1 = sidecarOf(c1, '10.1.0.9');
    try {
      assert.deepEqual(await eventually(() => (s1.endpoints().length === 2 ? s1.endpoints() : undefined)), ['10.1.0.5:5000', '198.51.100.20:15443']);
    } finally {
      s1.client.close();
    }
  });
});

test('deleting a remote secret withdraws that cluster\'s endpoints at once; rotating it drops none', async () => {
  await withTwoClusters(true, async (c1, c2, root) => {
    const secret = await exchangeRemoteSecret(c2, c1, root);
    const s1 = sidecarOf(c1, '10.1.0.9');
    try {
      assert.ok(await eventually(() => s1.endpoints().length === 2));
      // Rotation: a new token and kubeconfig; the sidecar must never see cluster-2 disappear.
      const seen: number[] = [];
      const sampler = setInterval(() => seen.push(s1.endpoints().length), 5);
      await exchangeRemoteSecret(c2, c1, root, { token: 'rotated-token' });
      await eventually(() => c1.cp.flush().then(() => false), 300);
      clearInterval(sampler);
      assert.ok(seen.every((n) => n === 2), `endpoint counts during rotation: ${[...new Set(seen)].join(',')}`);

      await c1.cp.store.delete([{ group: '', kind: 'Secret', namespace: 'istio-system', name: secret.metadata.name }]);
      assert.deepEqual(await eventually(() => (s1.endpoints().length === 1 ? s1.endpoints() : undefined)), ['10.1.0.5:5000']);
    } finally {
      s1.client.close();
    }
  });
});

test('an unreachable remote keeps its endpoints for the stale period, then they are withdrawn; status says so', async () => {
  await withTwoClusters(
    true,
    async (c1, c2, root) => {
      await exchangeRemoteSecret(c2, c1, root);
      const s1 = sidecarOf(c1, '10.1.0.9');
      try {
        assert.ok(await eventually(() => s1.endpoints().length === 2));
        await c2.cp.stop();
        const stale = await eventually(async () => {
          const status = (await (await fetch(`${c1.cp.addresses().admin}/debug/remote-clusters`)).json()) as Array<{ status: string; reason?: string }>;
          return status[0]?.status === 'stale' ? status[0] : undefined;
        }, 8000);
        assert.ok(stale, 'remote reported stale');
        const metrics = await (await fetch(`${c1.cp.addresses().admin}/metrics`)).text();
        assert.match(metrics, /crossmesh_remote_cluster_synced\{cluster="cluster-2",status="stale"\} 0/);
        assert.equal(s1.endpoints().length, 2, 'endpoints kept while stale');
        assert.deepEqual(await eventually(() => (s1.endpoints().length === 1 ? s1.endpoints() : undefined), 8000), ['10.1.0.5:5000']);
      } finally {
        s1.client.close();
      }
    },
    { remoteStaleMs: 1500 },
  );
});

test('a remote secret with the wrong cluster id, or a rejected token, gives a clear status and leaves the mesh alone', async () => {
  await withTwoClusters(true, async (c1, c2, root) => {
    await exchangeRemoteSecret(c2, c1, root, { clusterId: 'cluster-3' });
    // A secret whose token cluster-2 never issued.
    await c1.cp.store.apply([remoteSecret('cluster-9', buildKubeconfig({ server: c2.cp.addresses().api, ca: root.certPem, token: 'never-issued' }, 'cluster-9'))]);
    const statuses = await eventually(async () => {
      const s = (await (await fetch(`${c1.cp.addresses().admin}/debug/remote-clusters`)).json()) as Array<{ cluster: string; status: string; reason?: string }>;
      return s.every((r) => r.status === 'error') && s.length === 2 ? s : undefined;
    }, 8000);
    assert.ok(statuses, 'both remotes in error');
    const byName = Object.fromEntries(statuses.map((s) => [s.cluster, s.reason ?? '']));
    assert.match(byName['cluster-3']!, /remote secret names cluster "cluster-3" but .* is cluster "cluster-2"/);
    assert.match(byName['cluster-9']!, /401|403|unauthori|forbidden|token|credential/i);
    const ready = (await (await fetch(`${c1.cp.addresses().admin}/ready`)).json()) as { ready: boolean };
    assert.equal(ready.ready, true, 'a broken remote does not keep the control plane unready');
  });
});

test('a connecting proxy registers its workload; it is removed after the grace period once it leaves', async () => {
  await withTwoClusters(
    true,
    async (c1) => {
      const s = sidecarOf(c1, '10.1.0.42', 'sleep-7f9c');
      const key = { group: 'networking.istio.io', kind: 'WorkloadEntry', namespace: 'sample', name: 'sleep-7f9c' };
      try {
        const we = await eventually(() => c1.cp.store.get(key));
        assert.ok(we, 'registered');
        assert.equal((we.spec as any).address, '10.1.0.42');
        assert.equal((we.spec as any).network, 'vpc-1');
      } finally {
        s.client.close();
      }
      assert.ok(await eventually(() => !c1.cp.store.get(key), 5000), 'unregistered after grace');
    },
    { registrationGraceMs: 300 },
  );
});

test('a proxy that reports health registers unhealthy and turns healthy when it reports ready (Istio HealthInformation)', async () => {
  await withTwoClusters(true, async (c1) => {
    const key = { group: 'networking.istio.io', kind: 'WorkloadEntry', namespace: 'sample', name: 'hw-ready' };
    const health = () => c1.cp.store.get(key)?.metadata.annotations?.['crossmesh.io/health'] ?? 'healthy';
    const client = createAdsClient({
      address: c1.cp.addresses().xds,
      node: {
        id: 'sidecar~10.1.0.43~hw-ready.sample~sample.svc.cluster.local',
        metadata: { CLUSTER_ID: c1.name, NETWORK: c1.network, NAMESPACE: 'sample', LABELS: { app: 'helloworld' }, SERVICE_ACCOUNT: 'helloworld', HEALTH_REPORTS: 'true' },
      },
    });
    try {
      client.subscribe(TYPE_URLS.cluster, () => undefined);
      assert.ok(await eventually(() => c1.cp.store.get(key)), 'registered');
      assert.equal(health(), 'unhealthy', 'not ready yet: no traffic');
      client.reportHealth(true);
      assert.ok(await eventually(() => health() === 'healthy'), 'ready: healthy');
      client.reportHealth(false, 'app not listening');
      assert.ok(await eventually(() => health() === 'unhealthy'), 'unhealthy again when it says so');
    } finally {
      client.close();
    }
  });
});

test('three control planes, two networks: every sidecar sees every cluster, remote networks through their gateway', async () => {
  const mesh = await startClusters([
    { name: 'cluster-1', network: 'vpc-1' },
    { name: 'cluster-2', network: 'vpc-1' },
    { name: 'cluster-3', network: 'vpc-2' },
  ]);
  const cs = mesh.clusters;
  const sidecars: Array<ReturnType<typeof sidecarOf>> = [];
  try {
    for (const [i, c] of cs.entries()) {
      await c.cp.store.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sample' } },
        service('sample', 'helloworld', 5000),
        workloadEntry('sample', `hw-${i + 1}`, `10.${i + 1}.0.5`, { app: 'helloworld' }),
      ]);
    }
    await cs[2]!.cp.store.apply([eastWestGatewayService('vpc-2', '198.51.100.30')]);
    await cs[0]!.cp.store.apply([eastWestGatewayService('vpc-1', '198.51.100.10')]);
    for (const from of cs) for (const to of cs) if (from !== to) await exchangeRemoteSecret(from, to, mesh.root);
    for (const [i, c] of cs.entries()) sidecars.push(sidecarOf(c, `10.${i + 1}.0.9`));
    const want = [
      ['10.1.0.5:5000', '10.2.0.5:5000', '198.51.100.30:15443'],
      ['10.1.0.5:5000', '10.2.0.5:5000', '198.51.100.30:15443'],
      // vpc-1's two clusters stand behind one gateway: weight 2, one address.
      ['10.3.0.5:5000', '198.51.100.10:15443'],
    ];
    for (const [i, s] of sidecars.entries()) {
      assert.deepEqual(await eventually(() => (JSON.stringify(s.endpoints()) === JSON.stringify(want[i]) ? s.endpoints() : undefined), 8000), want[i], `cluster-${i + 1}`);
    }
  } finally {
    for (const s of sidecars) s.client.close();
    await mesh.stop();
  }
});
