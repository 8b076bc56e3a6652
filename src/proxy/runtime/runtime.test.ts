import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyInfoFromNode } from '../../controlplane/translate/index.js';
import type { Cluster, ClusterLoadAssignment, Listener } from '../../xds/index.js';
import { tcpProxyFilter } from '../../xds/index.js';
import { buildProxyNode, parseLocalityText } from './node.js';
import { captureRules, installCapture, removalRules } from './capture.js';
import { edsNamesOf, rdsNamesOf } from './xds-state.js';
import { gatewayResolver, sniRoutesOf, usableEndpoints } from './gateway-routes.js';
import { createLevelLogger } from './level-logger.js';
import { silentLogger } from '../../shared/log.js';

test('node: Istio id and metadata, read back by the control plane as sent', () => {
  const node = buildProxyNode({
    role: 'eastwest-gateway', ip: '10.2.0.100', podName: 'ewgw-1', namespace: 'istio-system', serviceAccount: 'ewgw', cluster: 'ack-2', network: 'network2',
    labels: { istio: 'eastwestgateway' }, locality: parseLocalityText('cn-beijing/b'), interception: 'NONE', appHost: '127.0.0.1', appPorts: [8080],
  });
  assert.equal(node.id, 'router~10.2.0.100~ewgw-1.istio-system~istio-system.svc.cluster.local');
  assert.deepEqual(node.locality, { region: 'cn-beijing', zone: 'b', sub_zone: '' });
  const info = proxyInfoFromNode(node);
  assert.deepEqual(
    [info.role, info.ip, info.podName, info.namespace, info.serviceAccount, info.cluster, info.network, info.requestedNetworkView, info.labels],
    ['router', '10.2.0.100', 'ewgw-1', 'istio-system', 'ewgw', 'ack-2', 'network2', ['network2'], { istio: 'eastwestgateway' }],
  );
  assert.equal(node.metadata?.INTERCEPTION_MODE, 'NONE');
  assert.equal(node.metadata?.APP_HOST, '127.0.0.1');
  const sidecar = buildProxyNode({ role: 'sidecar', ip: '10.1.0.5', podName: 'p', namespace: 'ns', serviceAccount: 'sa', cluster: 'c', network: 'n', labels: {} });
  assert.equal(sidecar.id, 'sidecar~10.1.0.5~p.ns~ns.svc.cluster.local');
  assert.equal(sidecar.metadata?.REQUESTED_NETWORK_VIEW, undefined);
  assert.equal(sidecar.metadata?.INTERCEPTION_MODE, 'REDIRECT');
  assert.deepEqual(sidecar.locality, { region: '', zone: '', sub_zone: '' }, 'locality is always sent');
  assert.equal(sidecar.metadata?.DNS_CAPTURE, 'true');
  assert.equal(buildProxyNode({ role: 'sidecar', ip: '10.1.0.5', podName: 'p', namespace: 'ns', serviceAccount: 'sa', cluster: 'c', network: 'n', labels: {}, dnsCapture: false }).metadata?.DNS_CAPTURE, 'false');
  assert.equal(node.metadata?.DNS_CAPTURE, undefined, 'a gateway answers no DNS');
});

test('capture rules: own gid/uid first, DNS before the loopback exception, inbound ports excluded; removal mirrors jumps', async () => {
  const rules = captureRules({ proxyUid: 1337, proxyGid: 1337 }).map((r) => r.join(' '));
  const out = rules.filter((r) => r.includes('-A CROSSMESH_OUTPUT'));
  assert.deepEqual(out, [
    '-t nat -A CROSSMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN',
    '-t nat -A CROSSMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN',
    '-t nat -A CROSSMESH_OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053',
    '-t nat -A CROSSMESH_OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports 15053',
    '-t nat -A CROSSMESH_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-t nat -A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001',
  ]);
  assert.ok(rules.includes('-t nat -A CROSSMESH_INBOUND -p tcp --dport 15000:15099 -j RETURN'));
  assert.equal(rules.at(-1), '-t nat -A PREROUTING -p tcp -j CROSSMESH_INBOUND');
  const noDns = captureRules({ captureDns: false, captureInbound: false }).map((r) => r.join(' '));
  assert.ok(noDns.every((r) => !r.includes('53') && !r.includes('PREROUTING')));
  assert.ok(noDns.includes('-t nat -A CROSSMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN'), 'gid 1337 by default');
  assert.ok(removalRules().some((r) => r.join(' ') === '-t nat -D OUTPUT -p tcp -j CROSSMESH_OUTPUT'));
  assert.throws(() => captureRules({ outboundPort: 0, excludeInboundPorts: ['15000-15099'] }), /outboundPort: must be a port.*\n.*excludeInboundPorts\[0\]/);

  // A failing rule leaves nothing installed: everything is removed again.
  const calls: string[] = [];
  await assert.rejects(
    installCapture({
      run: async (args) => {
        calls.push(args.join(' '));
        if (args.includes('PREROUTING') && args.includes('-A')) throw new Error('no nat table');
      },
    }),
    /no nat table/,
  );
  assert.ok(calls.at(-1)!.includes('-X CROSSMESH_INBOUND'));
});

test('capture rules for IPv6: the same chains, ports and exclusions, ::1 as the loopback exception', () => {
  const v4 = captureRules({ proxyUid: 1337 });
  const v6 = captureRules({ proxyUid: 1337 }, 6);
  assert.equal(v6.length, v4.length);
  const differing = v6.map((r, i) => [r.join(' '), v4[i]!.join(' ')]).filter(([a, b]) => a !== b);
  assert.deepEqual(differing, [['-t nat -A CROSSMESH_OUTPUT -d ::1/128 -j RETURN', '-t nat -A CROSSMESH_OUTPUT -d 127.0.0.1/32 -j RETURN']]);
  const joined = v6.map((r) => r.join(' '));
  assert.ok(joined.includes('-t nat -A CROSSMESH_OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053'));
  assert.ok(joined.includes('-t nat -A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001'));
  assert.ok(joined.includes('-t nat -A CROSSMESH_INBOUND -p tcp -j REDIRECT --to-ports 15006'));
  assert.ok(joined.includes('-t nat -A CROSSMESH_INBOUND -p tcp --dport 15000:15099 -j RETURN'));
  assert.ok(joined.indexOf('-t nat -A CROSSMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN') < joined.indexOf('-t nat -A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001'));
});

test('installCapture: IPv6 with ip6tables when available, removed with IPv4; otherwise IPv4 only and one log line', async () => {
  const logged: string[] = [];
  const logger = { ...silentLogger, warn: (m: string) => void logged.push(m) };
  const calls: string[] = [];
  const both = await installCapture({ logger, ipv6: async () => ({ ok: true }), run: async (args, tool) => void calls.push(`${tool} ${args.join(' ')}`) });
  assert.equal(both.ipv6.captured, true);
  assert.ok(calls.includes('ip6tables -t nat -A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001'));
  assert.ok(calls.includes('iptables -t nat -A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001'));
  assert.deepEqual(logged, []);
  calls.length = 0;
  await both.remove();
  assert.ok(calls.includes('iptables -t nat -X CROSSMESH_OUTPUT') && calls.includes('ip6tables -t nat -X CROSSMESH_OUTPUT') && calls.includes('ip6tables -t nat -D PREROUTING -p tcp -j CROSSMESH_INBOUND'));

  // ip6tables missing: IPv4 stays installed and working, the reason is logged once.
  calls.length = 0;
  const v4only = await installCapture({
    logger,
    ipv6: async () => ({ ok: true }),
    run: async (args, tool) => {
      if (tool === 'ip6tables') throw new Error('ip6tables is not installed');
      calls.push(`${tool} ${args.join(' ')}`);
    },
  });
  assert.deepEqual(v4only.ipv6, { captured: false, reason: 'ip6tables is not installed' });
  assert.deepEqual(logged, ['IPv6 is not captured (IPv4 only): ip6tables is not installed']);
  assert.ok(calls.includes('iptables -t nat -A CROSSMESH_OUTPUT -p tcp -j REDIRECT --to-ports 15001'));

  // IPv6 off in the namespace: ip6tables is never run.
  calls.length = 0;
  logged.length = 0;
  const off = await installCapture({ logger, ipv6: async () => ({ ok: false, reason: 'IPv6 is disabled in this network namespace' }), run: async (args, tool) => void calls.push(`${tool} ${args.join(' ')}`) });
  assert.equal(off.ipv6.captured, false);
  assert.ok(calls.every((c) => c.startsWith('iptables ')));
  assert.deepEqual(logged, ['IPv6 is not captured (IPv4 only): IPv6 is disabled in this network namespace']);
  calls.length = 0;
  await off.remove();
  assert.ok(calls.length > 0 && calls.every((c) => c.startsWith('iptables ')));
});

test('xds names: EDS from EDS clusters (service_name first), RDS from HCMs', () => {
  const clusters = new Map<string, Cluster>([
    ['a', { name: 'a', type: 'EDS' }],
    ['b', { name: 'b', type: 'EDS', eds_cluster_config: { service_name: 'b-svc' } }],
    ['PassthroughCluster', { name: 'PassthroughCluster', type: 'ORIGINAL_DST' }],
  ]);
  assert.deepEqual(edsNamesOf(clusters), ['a', 'b-svc']);
  const hcm = (name: string) => ({ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': 'x', rds: { config_source: { ads: {} }, route_config_name: name } } });
  const listeners = new Map<string, Listener>([['l', { name: 'l', filter_chains: [{ filters: [hcm('80')] }, { filters: [hcm('8000'), tcpProxyFilter('t', 'c')] }], default_filter_chain: { filters: [hcm('80')] } }]]);
  assert.deepEqual(rdsNamesOf(listeners), ['80', '8000']);
});

test('gateway routes: only SNIs in filter chains, best priority, unhealthy endpoints left out', () => {
  const sni = 'outbound_.80_._.a.ns.svc.cluster.local';
  const listeners = new Map<string, Listener>([['gw', { name: 'gw', filter_chains: [{ filter_chain_match: { server_names: [sni] }, filters: [tcpProxyFilter(sni, sni)] }] }]]);
  assert.deepEqual([...sniRoutesOf(listeners)], [[sni, sni]]);
  const ep = (address: string, health?: 'UNHEALTHY' | 'HEALTHY') => ({ endpoint: { address: { socket_address: { address, port_value: 80 } } }, ...(health ? { health_status: health } : {}) });
  const cla: ClusterLoadAssignment = {
    cluster_name: sni,
    endpoints: [
      { priority: 1, lb_endpoints: [ep('10.0.0.9')] },
      { priority: 0, lb_endpoints: [ep('10.0.0.1', 'UNHEALTHY'), ep('10.0.0.2', 'HEALTHY')] },
    ],
  };
  assert.deepEqual(usableEndpoints(cla), [{ address: '10.0.0.2', port: 80 }]);
  const resolve = gatewayResolver({ listeners, clusters: new Map(), routes: new Map(), endpoints: new Map([[sni, cla]]) });
  assert.deepEqual(resolve(sni.toUpperCase()), [{ address: '10.0.0.2', port: 80 }]);
  assert.equal(resolve('outbound_.80_._.b.ns.svc.cluster.local'), undefined);
  const allDown: ClusterLoadAssignment = { cluster_name: sni, endpoints: [{ lb_endpoints: [ep('10.0.0.1', 'UNHEALTHY')] }] };
  assert.deepEqual(usableEndpoints(allDown), []);
});

test('level logger: the level is read per call', () => {
  const lines: string[] = [];
  let level: 'debug' | 'info' = 'info';
  const base = { debug: (m: string) => lines.push(`d:${m}`), info: (m: string) => lines.push(`i:${m}`), warn: () => undefined, error: () => undefined, child: () => base };
  const log = createLevelLogger(base, () => level).child({ x: 1 });
  log.debug('a');
  log.info('b');
  level = 'debug';
  log.debug('c');
  assert.deepEqual(lines, ['i:b', 'd:c']);
});
