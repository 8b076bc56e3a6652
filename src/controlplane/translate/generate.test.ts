import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import { TYPE_URLS, encodeResource, decodeResource } from '../../xds/index.js';
import { allocateVips, buildClusterRegistry } from '../../registry/index.js';
import { aggregate } from '../aggregate/index.js';
import type { MeshService } from '../aggregate/index.js';
import type { GatewaySpec } from '../../api/index.js';
import type { MeshConfigSnapshot } from './config.js';
import { generateForProxy } from './generate.js';
import type { ProxyResources } from './generate.js';
import { proxyInfoFromNode } from './proxy-info.js';

const svc = (ns: string, name: string, port: number, target: number, portName = 'http'): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: portName, port, targetPort: target }] },
});
const we = (ns: string, name: string, address: string, labels: Record<string, string>, sa = 'default'): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: ns },
  spec: { address, labels, serviceAccount: sa },
});
const ewgw = (network: string, ip: string): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'istio-eastwestgateway', namespace: 'istio-system', labels: { 'topology.istio.io/network': network } },
  spec: { selector: { istio: 'eastwestgateway' }, ports: [{ name: 'tls', port: 15443 }], externalIPs: [ip] },
});
const crossNetworkGateway: Resource<GatewaySpec> = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
  spec: { selector: { istio: 'eastwestgateway' }, servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }] },
};

// S5-like: httpbin only in ack-2 (network2); sleep in ack-1 (network1).
const ack1 = buildClusterRegistry({ clusterId: 'ack-1', network: 'network1', locality: 'cn-hangzhou/a' }, [
  svc('default', 'sleep', 80, 80),
  we('default', 'sleep-1', '10.1.0.5', { app: 'sleep' }, 'sleep'),
  svc('sample', 'db', 3306, 3306, 'tcp-mysql'),
]);
const ack2 = buildClusterRegistry({ clusterId: 'ack-2', network: 'network2', locality: 'cn-beijing/b' }, [
  svc('default', 'httpbin', 8000, 80),
  we('default', 'httpbin-1', '10.2.0.7', { app: 'httpbin', version: 'v1' }, 'httpbin'),
  ewgw('network2', '198.51.100.20'),
]);
const view = aggregate([ack1, ack2], { localCluster: 'ack-1' });
const vips = allocateVips([...view.services.keys()]);
const vipOf = (s: MeshService) => vips.get(s.hostname);
const config: MeshConfigSnapshot = { virtualServices: [], destinationRules: [], gateways: [crossNetworkGateway] };
const mesh = { trustDomain: 'cluster.local', domainSuffix: 'cluster.local' };

const sleepProxy = proxyInfoFromNode({
  id: 'sidecar~10.1.0.5~sleep-1.default~default.svc.cluster.local',
  metadata: { CLUSTER_ID: 'ack-1', NETWORK: 'network1', NAMESPACE: 'default', LABELS: { app: 'sleep' }, SERVICE_ACCOUNT: 'sleep' },
  locality: { region: 'cn-hangzhou', zone: 'a' },
});
const gatewayProxy = proxyInfoFromNode({
  id: 'router~10.2.0.100~istio-eastwestgateway-1.istio-system~istio-system.svc.cluster.local',
  metadata: { CLUSTER_ID: 'ack-2', NETWORK: 'network2', REQUESTED_NETWORK_VIEW: 'network2', LABELS: { istio: 'eastwestgateway' } },
});

/** Every resource must pack into its proto: this catches any field Envoy would not understand. */
function assertEncodes(r: ProxyResources): void {
  const all: Array<[string, object]> = [
    ...[...r.clusters.values()].map((v) => [TYPE_URLS.cluster, v] as [string, object]),
    ...[...r.endpoints.values()].map((v) => [TYPE_URLS.endpoint, v] as [string, object]),
    ...[...r.listeners.values()].map((v) => [TYPE_URLS.listener, v] as [string, object]),
    ...[...r.routes.values()].map((v) => [TYPE_URLS.route, v] as [string, object]),
    ...(r.nameTable ? [[TYPE_URLS.nameTable, r.nameTable] as [string, object]] : []),
  ];
  for (const [typeUrl, value] of all) {
    const any = encodeResource(typeUrl, value);
    assert.equal(decodeResource(any).typeUrl, typeUrl);
  }
}

test('generate: a sidecar on network1 reaches httpbin (network2 only) through the gateway with mTLS and SNI', () => {
  const r = generateForProxy({ view, config, mesh, proxy: sleepProxy, vipOf });
  assertEncodes(r);
  const name = 'outbound|8000||httpbin.default.svc.cluster.local';
  const cluster = r.clusters.get(name) as any;
  assert.ok(cluster, 'cluster for the remote-only service');
  const tls = cluster.transport_socket_matches[0].transport_socket.typed_config;
  assert.equal(tls.sni, 'outbound_.8000_._.httpbin.default.svc.cluster.local');
  assert.deepEqual(tls.common_tls_context.alpn_protocols, ['istio-http/1.1', 'istio-peer-exchange', 'istio']);
  assert.deepEqual(tls.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [
    { san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/default/sa/httpbin' } },
  ]);
  const cla = r.endpoints.get(name) as any;
  const eps = cla.endpoints.flatMap((l: any) => l.lb_endpoints.map((e: any) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`));
  assert.deepEqual(eps, ['198.51.100.20:15443']);
  assert.deepEqual(cla.endpoints[0].locality, { region: 'cn-beijing', zone: 'b', sub_zone: '' });
  assert.ok(r.routes.get('8000'), 'RDS for port 8000');
  assert.ok(r.listeners.get('0.0.0.0_8000'));
  assert.ok(r.listeners.get('virtualOutbound') && r.listeners.get('virtualInbound'));
  assert.deepEqual(r.nameTable!.table['httpbin.default.svc.cluster.local']!.ips, [vips.get('httpbin.default.svc.cluster.local')]);
  // A TCP service gets a listener on its VIP.
  assert.ok(r.listeners.get(`${vips.get('db.sample.svc.cluster.local')}_3306`));
  // Inbound: sleep's own port 80 with mTLS required.
  const inbound = r.listeners.get('virtualInbound') as any;
  assert.deepEqual(inbound.filter_chains.map((c: any) => c.filter_chain_match.destination_port.value), [80]);
  assert.equal(inbound.filter_chains[0].transport_socket.typed_config.require_client_certificate.value, true);
  // IPv6 capture lands on the same listeners through their [::] address.
  for (const [l, port] of [['virtualOutbound', 15001], ['virtualInbound', 15006]] as const) {
    assert.deepEqual((r.listeners.get(l) as any).additional_addresses, [{ address: { socket_address: { address: '::', port_value: port } } }]);
  }
  // As Istio: no circuit-breaker limits unless a DestinationRule sets them, inbound and passthrough included.
  for (const c of [name, 'inbound|80||', 'PassthroughCluster']) {
    assert.equal((r.clusters.get(c) as any)?.circuit_breakers?.thresholds[0].max_connections.value, 4294967295, c);
  }
});

test('generate: the east-west gateway routes SNI to local endpoints only, without TLS of its own', () => {
  const r = generateForProxy({ view, config, mesh, proxy: gatewayProxy, vipOf });
  assertEncodes(r);
  const listener = r.listeners.get('0.0.0.0_15443') as any;
  assert.deepEqual(listener.filter_chains.map((c: any) => c.filter_chain_match.server_names[0]), ['outbound_.8000_._.httpbin.default.svc.cluster.local']);
  const sni = 'outbound_.8000_._.httpbin.default.svc.cluster.local';
  assert.equal((r.clusters.get(sni) as any).transport_socket, undefined);
  const cla = r.endpoints.get(sni) as any;
  assert.deepEqual(cla.endpoints.flatMap((l: any) => l.lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address)), ['10.2.0.7']);
});

test('generate: a gateway without an AUTO_PASSTHROUGH Gateway gets no listener', () => {
  const r = generateForProxy({ view, config: { ...config, gateways: [] }, mesh, proxy: gatewayProxy, vipOf });
  assert.equal(r.listeners.size, 0);
});

test('generate: a proxyless gRPC client gets API listeners, RDS and plaintext clusters', () => {
  const grpc = proxyInfoFromNode({ id: 'grpc-client', metadata: { GENERATOR: 'grpc', CLUSTER_ID: 'ack-1', NETWORK: 'network1', NAMESPACE: 'default' } });
  const r = generateForProxy({ view, config, mesh, proxy: grpc, vipOf });
  assertEncodes(r);
  const name = 'httpbin.default.svc.cluster.local:8000';
  assert.ok((r.listeners.get(name) as any).api_listener);
  assert.ok(r.routes.get(name));
  assert.equal((r.clusters.get('outbound|8000||httpbin.default.svc.cluster.local') as any).transport_socket_matches, undefined);
  assert.equal(r.nameTable, undefined);
});

test('generate: explicit mode binds the pod address for the HTTP proxy and inbound ports', () => {
  const r = generateForProxy({ view, config, mesh, proxy: { ...sleepProxy, interception: 'NONE' }, vipOf });
  assertEncodes(r);
  assert.deepEqual([...r.listeners.keys()], ['10.1.0.5_15001', '10.1.0.5_80']);
  const vhosts = (r.routes.get('http_proxy') as any).virtual_hosts;
  const httpbin = vhosts.find((v: any) => v.name === 'httpbin.default.svc.cluster.local:8000');
  assert.ok(httpbin.domains.includes('httpbin:8000'));
  assert.ok(!httpbin.domains.includes('httpbin'));
  const sleep = vhosts.find((v: any) => v.name === 'sleep.default.svc.cluster.local:80');
  assert.ok(sleep.domains.includes('sleep'), 'port 80 keeps bare names');
});

test('generate: every sidecar HTTP connection manager lets WebSocket upgrades through, as Istio does', () => {
  for (const interception of ['REDIRECT', 'NONE'] as const) {
    const r = generateForProxy({ view, config, mesh, proxy: { ...sleepProxy, interception }, vipOf });
    assertEncodes(r);
    const hcms = [...r.listeners.values()].flatMap((l: any) =>
      [...(l.filter_chains ?? []), ...(l.default_filter_chain ? [l.default_filter_chain] : [])].flatMap((c: any) =>
        c.filters.filter((f: any) => f.name === 'envoy.filters.network.http_connection_manager').map((f: any) => ({ listener: l.name, hcm: f.typed_config })),
      ),
    );
    assert.ok(hcms.some((h) => h.hcm.stat_prefix.startsWith('inbound_')), `${interception}: an inbound HCM`);
    assert.ok(hcms.some((h) => h.hcm.stat_prefix.startsWith('outbound_')), `${interception}: an outbound HCM`);
    for (const { listener, hcm } of hcms) assert.deepEqual(hcm.upgrade_configs, [{ upgrade_type: 'websocket' }], `${interception} ${listener}`);
  }
});

test('generate: grpc/http2 ports get HTTP/2 upstream (h2 ALPN to the peer sidecar, h2c to the app), http ports stay HTTP/1.1', () => {
  const reg = buildClusterRegistry({ clusterId: 'c1', network: 'n1', locality: 'r/z' }, [
    svc('default', 'greeter', 9000, 9000, 'grpc'),
    we('default', 'greeter-1', '10.3.0.2', { app: 'greeter' }, 'greeter'),
    { ...svc('default', 'web', 8080, 8080, 'web'), spec: { selector: { app: 'web' }, ports: [{ name: 'web', port: 8080, targetPort: 8080, appProtocol: 'http2' }] } },
    we('default', 'web-1', '10.3.0.3', { app: 'web' }, 'web'),
  ]);
  const v = aggregate([reg], { localCluster: 'c1' });
  const proxy = proxyInfoFromNode({
    id: 'sidecar~10.3.0.2~greeter-1.default~default.svc.cluster.local',
    metadata: { CLUSTER_ID: 'c1', NETWORK: 'n1', NAMESPACE: 'default', LABELS: { app: 'greeter' }, SERVICE_ACCOUNT: 'greeter' },
  });
  const r = generateForProxy({ view: v, config: { virtualServices: [], destinationRules: [], gateways: [] }, mesh, proxy, vipOf: () => undefined });
  assertEncodes(r);
  const H2 = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  for (const name of ['outbound|9000||greeter.default.svc.cluster.local', 'outbound|8080||web.default.svc.cluster.local']) {
    const c = r.clusters.get(name) as any;
    assert.deepEqual(c.typed_extension_protocol_options[H2].explicit_http_config, { http2_protocol_options: {} }, name);
    assert.deepEqual(c.transport_socket_matches[0].transport_socket.typed_config.common_tls_context.alpn_protocols, ['istio-peer-exchange', 'istio', 'h2'], name);
  }
  const inbound = r.clusters.get('inbound|9000||') as any;
  assert.deepEqual(inbound.typed_extension_protocol_options[H2].explicit_http_config, { http2_protocol_options: {} });
  // An HTTP/1.1 service keeps Istio's HTTP/1.1 ALPN and no protocol options…
  const plain = generateForProxy({ view, config, mesh, proxy: sleepProxy, vipOf });
  const httpbin = 'outbound|8000||httpbin.default.svc.cluster.local';
  assert.equal((plain.clusters.get(httpbin) as any).typed_extension_protocol_options, undefined);
  assert.equal((plain.clusters.get('inbound|80||') as any).typed_extension_protocol_options, undefined);
  // …unless its DestinationRule asks for h2UpgradePolicy: UPGRADE (HTTP/2 between the sidecars only).
  const upgrade = {
    ...config,
    destinationRules: [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'httpbin', namespace: 'default' },
        spec: { host: 'httpbin', trafficPolicy: { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE' as const } } } },
      },
    ],
  };
  const upgraded = generateForProxy({ view, config: upgrade, mesh, proxy: sleepProxy, vipOf }).clusters.get(httpbin) as any;
  assert.deepEqual(upgraded.typed_extension_protocol_options[H2].explicit_http_config, { http2_protocol_options: {} });
  assert.deepEqual(upgraded.transport_socket_matches[0].transport_socket.typed_config.common_tls_context.alpn_protocols, ['istio-peer-exchange', 'istio', 'h2']);
});
