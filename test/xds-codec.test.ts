/** Packing and unpacking resources, Istio naming, Struct conversion. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EXTENSION_TYPE_URLS,
  TYPE_URLS,
  XdsCodecError,
  apiListener,
  clusterLoadAssignment,
  decodeResource,
  edsCluster,
  encodeResource,
  fromStruct,
  httpConnectionManagerFilter,
  httpInspectorFilter,
  istioNodeId,
  parseIstioNodeId,
  istioUpstreamTls,
  originalDstFilter,
  outboundClusterName,
  outboundSni,
  parseClusterName,
  parseOutboundSni,
  resourceName,
  tcpProxyFilter,
  tlsInspectorFilter,
  toJsonValue,
  toStruct,
  typed,
} from '../src/xds/index.js';
import type { Listener, Secret } from '../src/xds/index.js';

test('every resource type round-trips through Any, nested typed configs included', () => {
  const sni = outboundSni(8000, '', 'httpbin.default.svc.cluster.local');
  const listener: Listener = {
    name: 'virtualOutbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
    use_original_dst: { value: true },
    listener_filters: [originalDstFilter(), tlsInspectorFilter(), httpInspectorFilter()],
    filter_chains: [
      { filter_chain_match: { destination_port: { value: 8000 }, application_protocols: ['http/1.1', 'h2c'] }, filters: [httpConnectionManagerFilter('8000')] },
      { filter_chain_match: { destination_port: { value: 9000 } }, filters: [tcpProxyFilter('outbound|9000||tcp.default.svc.cluster.local')] },
      {
        filter_chain_match: { server_names: [sni], transport_protocol: 'tls' },
        filters: [tcpProxyFilter('x')],
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: typed(EXTENSION_TYPE_URLS.downstreamTlsContext, { require_client_certificate: { value: true } }),
        },
      },
    ],
    traffic_direction: 'OUTBOUND',
  };
  const secret: Secret = {
    name: 'default',
    tls_certificate: { certificate_chain: { inline_bytes: Buffer.from('-----BEGIN CERTIFICATE-----\n') }, private_key: { inline_string: 'key' } },
  };
  const cases: Array<[string, object]> = [
    [TYPE_URLS.listener, listener],
    [TYPE_URLS.listener, apiListener('helloworld.sample.svc.cluster.local:5000', 'r')],
    [TYPE_URLS.cluster, edsCluster('outbound|8000||httpbin.default.svc.cluster.local', { transportSocket: istioUpstreamTls(sni) })],
    [TYPE_URLS.endpoint, clusterLoadAssignment('c', [{ locality: { region: 'r', zone: 'z', sub_zone: 's' }, priority: 1, endpoints: [{ address: '10.0.0.1', port: 80, weight: 3, istioMetadata: { cluster: 'c1' } }] }])],
    [TYPE_URLS.route, { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 90 } }, { name: 'b', weight: { value: 10 } }] }, timeout: { seconds: 5 } } }] }] }],
    [TYPE_URLS.secret, secret],
    [TYPE_URLS.nameTable, { table: { 'helloworld.sample.svc.cluster.local': { ips: ['240.240.0.1'], registry: 'Kubernetes', shortname: 'helloworld', namespace: 'sample' } } }],
  ];
  for (const [typeUrl, obj] of cases) {
    const any = encodeResource(typeUrl, obj);
    assert.equal(any.type_url, typeUrl);
    const back = decodeResource(any);
    assert.equal(back.typeUrl, typeUrl);
    assert.deepEqual(back.value, JSON.parse(JSON.stringify(obj), (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data) : v)), typeUrl);
  }
  const decodedSecret = decodeResource<Secret>(encodeResource(TYPE_URLS.secret, secret)).value;
  assert.ok(Buffer.isBuffer(decodedSecret.tls_certificate?.certificate_chain?.inline_bytes), 'bytes stay bytes');
  assert.deepEqual(toJsonValue(decodedSecret), {
    name: 'default',
    tls_certificate: { certificate_chain: { inline_bytes: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64') }, private_key: { inline_string: 'key' } },
  });
  assert.equal(resourceName(encodeResource(TYPE_URLS.endpoint, { cluster_name: 'eds-name' })), 'eds-name');
});

test('encoding is deterministic: map key order does not change the bytes', () => {
  const a = encodeResource(TYPE_URLS.nameTable, { table: { 'a.ns.svc.cluster.local': { ips: ['240.240.0.1'] }, 'b.ns.svc.cluster.local': { ips: ['240.240.0.2'] } } });
  const b = encodeResource(TYPE_URLS.nameTable, { table: { 'b.ns.svc.cluster.local': { ips: ['240.240.0.2'] }, 'a.ns.svc.cluster.local': { ips: ['240.240.0.1'] } } });
  assert.deepEqual(Buffer.from(a.value), Buffer.from(b.value));
});

test('encoding reports every unknown field, enum value and nested type at once', () => {
  try {
    encodeResource(TYPE_URLS.cluster, {
      name: 'x',
      lb_polcy: 'ROUND_ROBIN',
      type: 'EDZ',
      transport_socket: { name: 't', typed_config: { '@type': 'type.googleapis.com/no.such.Type' } },
      load_assignment: { cluster_name: 'x', endpoints: [{ lb_endpoints: [{ endpoint: { adress: {} } }] }] },
    });
    assert.fail('should have thrown');
  } catch (err) {
    assert.ok(err instanceof XdsCodecError);
    assert.equal(err.code, 'E_XDS_CODEC');
    assert.deepEqual(err.problems, [
      'lb_polcy: no such field in envoy.config.cluster.v3.Cluster',
      'type: "EDZ" is not a DiscoveryType value',
      'transport_socket.typed_config.@type: unknown type type.googleapis.com/no.such.Type',
      'load_assignment.endpoints[0].lb_endpoints[0].endpoint.adress: no such field in envoy.config.endpoint.v3.Endpoint',
    ]);
  }
  assert.throws(() => encodeResource('type.googleapis.com/nope.Nope', {}), /unknown resource type/);
  assert.throws(() => decodeResource({ type_url: TYPE_URLS.cluster, value: Buffer.from([0xff, 0xff, 0xff]) }), XdsCodecError);
});

test('Istio names: cluster names and SNI build and parse back', () => {
  const fqdn = 'httpbin.default.svc.cluster.local';
  assert.equal(outboundClusterName(8000, '', fqdn), 'outbound|8000||httpbin.default.svc.cluster.local');
  assert.equal(outboundSni(8000, '', fqdn), 'outbound_.8000_._.httpbin.default.svc.cluster.local');
  assert.equal(outboundSni(8000, 'v1', fqdn), 'outbound_.8000_.v1_.httpbin.default.svc.cluster.local');
  const sni = 'outbound_.8000_._.httpbin.default.svc.cluster.local';
  assert.deepEqual(parseOutboundSni(sni), { sni, port: 8000, subset: '', fqdn, clusterName: 'outbound|8000||httpbin.default.svc.cluster.local' });
  assert.deepEqual(parseOutboundSni(outboundSni(8000, 'v1', fqdn)), {
    sni: 'outbound_.8000_.v1_.httpbin.default.svc.cluster.local',
    port: 8000,
    subset: 'v1',
    fqdn,
    clusterName: 'outbound|8000|v1|httpbin.default.svc.cluster.local',
  });
  assert.equal(parseOutboundSni('httpbin.default.svc.cluster.local'), undefined);
  assert.equal(parseOutboundSni('outbound_.99999_._.x'), undefined);
  assert.deepEqual(parseClusterName('inbound|9080||'), { direction: 'inbound', port: 9080, subset: '', fqdn: '' });
  assert.deepEqual(parseClusterName(outboundClusterName(80, 'v2', fqdn)), { direction: 'outbound', port: 80, subset: 'v2', fqdn });
  assert.equal(parseClusterName('BlackHoleCluster'), undefined);
});

test('Istio node ids build and parse back; anything else is not one', () => {
  const id = istioNodeId({ role: 'sidecar', ip: '10.0.0.7', pod: 'helloworld-v1-abc.x', namespace: 'sample' });
  assert.equal(id, 'sidecar~10.0.0.7~helloworld-v1-abc.x.sample~sample.svc.cluster.local');
  assert.deepEqual(parseIstioNodeId(id), { role: 'sidecar', ip: '10.0.0.7', pod: 'helloworld-v1-abc.x', namespace: 'sample', domain: 'cluster.local' });
  assert.deepEqual(parseIstioNodeId('router~1.2.3.4~gw.istio-system~istio-system.svc.mesh.example')?.domain, 'mesh.example');
  for (const bad of ['grpc-client-1', 'sidecar~~p.ns~ns.svc.cluster.local', 'proxy~1.2.3.4~p.ns~ns.svc.cluster.local', 'sidecar~1.2.3.4~p.ns~other.svc.cluster.local', 'sidecar~1.2.3.4~pns~ns.svc.cluster.local']) {
    assert.equal(parseIstioNodeId(bad), undefined, bad);
  }
});

test('Struct conversion round-trips JSON', () => {
  const meta = { CLUSTER_ID: 'c1', LABELS: { app: 'x' }, n: 3, ok: true, list: ['a', 1], none: null };
  assert.deepEqual(fromStruct(toStruct(meta)), meta);
  // proto-loader's oneofs form names the set member in `kind`.
  assert.deepEqual(fromStruct({ fields: { a: { kind: 'stringValue', stringValue: 'x', numberValue: 0 } as never } }), { a: 'x' });
});
