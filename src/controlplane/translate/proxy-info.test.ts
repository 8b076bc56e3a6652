import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyGroupKey, proxyInfoFromNode } from './proxy-info.js';

const node = (ip: string, pod: string, extra: Record<string, unknown> = {}) =>
  proxyInfoFromNode({
    id: `sidecar~${ip}~${pod}.sample~sample.svc.cluster.local`,
    metadata: { CLUSTER_ID: 'c1', NETWORK: 'n1', NAMESPACE: 'sample', LABELS: { app: 'helloworld', version: 'v1' }, ...extra },
    locality: { region: 'r', zone: 'z' },
  });

test('node id and metadata are read as Istio writes them', () => {
  const p = node('10.0.0.5', 'helloworld-v1-abc', { SERVICE_ACCOUNT: 'hw', INTERCEPTION_MODE: 'NONE', APP_HOST: '127.0.0.7' });
  assert.deepEqual(
    { role: p.role, ip: p.ip, pod: p.podName, ns: p.namespace, sa: p.serviceAccount, cluster: p.cluster, net: p.network, mode: p.interception, app: p.appHost },
    { role: 'sidecar', ip: '10.0.0.5', pod: 'helloworld-v1-abc', ns: 'sample', sa: 'hw', cluster: 'c1', net: 'n1', mode: 'NONE', app: '127.0.0.7' },
  );
  const gw = proxyInfoFromNode({ id: 'router~10.0.0.9~ewgw-1.istio-system~istio-system.svc.cluster.local', metadata: { REQUESTED_NETWORK_VIEW: 'n1, n2' } });
  assert.equal(gw.role, 'router');
  assert.deepEqual(gw.requestedNetworkView, ['n1', 'n2']);
});

test('replicas of one workload share a snapshot group; other labels, namespaces or explicit mode do not', () => {
  assert.equal(proxyGroupKey(node('10.0.0.5', 'hw-a')), proxyGroupKey(node('10.0.0.6', 'hw-b')));
  assert.notEqual(proxyGroupKey(node('10.0.0.5', 'hw-a')), proxyGroupKey(node('10.0.0.6', 'hw-b', { LABELS: { app: 'helloworld', version: 'v2' } })));
  assert.notEqual(proxyGroupKey(node('10.0.0.5', 'hw-a')), proxyGroupKey(node('10.0.0.6', 'hw-b', { NAMESPACE: 'other' })));
  assert.notEqual(proxyGroupKey(node('10.0.0.5', 'hw-a', { INTERCEPTION_MODE: 'NONE' })), proxyGroupKey(node('10.0.0.6', 'hw-b', { INTERCEPTION_MODE: 'NONE' })));
});
