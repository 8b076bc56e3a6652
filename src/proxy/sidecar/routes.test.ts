import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Problems } from './config-util.js';
import { compileRouteTable, compileUpgrades, selectVirtualHost } from './compile-routes.js';
import type { HttpChainFilter, XfccMode } from './compile-listeners.js';
import { tunnelIdleTimeoutMs, upgradeAllowed } from './upgrade.js';
import { matchRoute, xfccPlan } from './route-match.js';
import { compileState, EMPTY_CONFIG } from './config.js';

const req = (method: string, headers: Record<string, string>) => ({ method, headers });

/** A route table with one virtual host for every domain; fails the test on any config problem. */
function catchAllTable(routes: unknown[]): ReturnType<typeof compileRouteTable> {
  const p = new Problems();
  const t = compileRouteTable({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes }] }, p);
  assert.deepEqual(p.list, []);
  return t;
}

test('virtual hosts: exact, then longest suffix wildcard, then prefix wildcard, then *', () => {
  const p = new Problems();
  const t = compileRouteTable(
    {
      name: 'r',
      virtual_hosts: [
        { name: 'exact', domains: ['api.example.com', 'api.example.com:8080'] },
        { name: 'suffix', domains: ['*.example.com'] },
        { name: 'longer', domains: ['*.eu.example.com'] },
        { name: 'prefix', domains: ['api.*'] },
        { name: 'any', domains: ['*'] },
      ],
    },
    p,
  );
  assert.deepEqual(p.list, []);
  const pick = (h: string) => selectVirtualHost(t, h)?.name;
  assert.equal(pick('api.example.com'), 'exact');
  assert.equal(pick('api.example.com:8080'), 'exact');
  assert.equal(pick('x.example.com'), 'suffix');
  assert.equal(pick('x.eu.example.com'), 'longer');
  assert.equal(pick('api.other'), 'prefix');
  assert.equal(pick('nothing'), 'any');
});

test('routes: path specifiers, case, headers (present, invert, regex), query parameters, first match wins', () => {
  const t = catchAllTable([
    { name: 'exact', match: { path: '/exact' }, route: { cluster: 'a' } },
    { name: 'nocase', match: { prefix: '/CaSe', case_sensitive: {} }, route: { cluster: 'a' } },
    { name: 'regex', match: { safe_regex: { regex: '/items/[0-9]+' } }, route: { cluster: 'a' } },
    { name: 'hdr', match: { prefix: '/h', headers: [{ name: 'x-a', string_match: { exact: 'yes' } }, { name: 'x-b', present_match: true, invert_match: true }] }, route: { cluster: 'a' } },
    { name: 'method', match: { prefix: '/m', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }, route: { cluster: 'a' } },
    { name: 'query', match: { prefix: '/q', query_parameters: [{ name: 'v', string_match: { prefix: '2' } }] }, route: { cluster: 'a' } },
    { name: 'fallback', match: { prefix: '/' }, route: { cluster: 'b' } },
  ]);
  const routes = t.any!.routes;
  const m = (path: string, headers: Record<string, string> = {}, method = 'GET', query = '') => matchRoute(routes, req(method, headers), path, query, 'h')?.name;
  assert.equal(m('/exact'), 'exact');
  assert.equal(m('/exact/more'), 'fallback');
  assert.equal(m('/case/x'), 'nocase');
  assert.equal(m('/items/42'), 'regex');
  assert.equal(m('/items/x'), 'fallback');
  assert.equal(m('/h', { 'x-a': 'yes' }), 'hdr');
  assert.equal(m('/h', { 'x-a': 'yes', 'x-b': '1' }), 'fallback');
  assert.equal(m('/h', { 'x-a': 'no' }), 'fallback');
  assert.equal(m('/m', {}, 'POST'), 'method');
  assert.equal(m('/m'), 'fallback');
  assert.equal(m('/q', {}, 'GET', 'v=21'), 'query');
  assert.equal(m('/q', {}, 'GET', 'v=1'), 'fallback');
});

test('bad config becomes problems naming resource and field, never a throw', () => {
  const { problems, config } = compileState(
    {
      listeners: new Map([['l', { name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.redis_proxy' }] }] }]]),
      routes: new Map([['r', { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '([' } }, route: { cluster: 'x' } }] }] }]]),
      clusters: new Map([['c', { name: 'c', type: 'STRICT_DNS' as const }]]),
      endpoints: new Map(),
    },
    EMPTY_CONFIG,
  );
  assert.deepEqual(
    problems.map((p) => [p.name, p.message]),
    [
      ['l', 'filter_chains[0].filters: unsupported network filter envoy.filters.network.redis_proxy'],
      ['r', 'virtual_hosts[0].routes[0].match.safe_regex.regex: invalid regular expression "(["'],
      ['c', 'type: unsupported discovery type STRICT_DNS'],
    ],
  );
  assert.equal(config.listeners.size + config.routes.size + config.clusters.size, 0, 'nothing to keep from before');
});

test('upgrades: a route naming the type decides, else the connection manager must enable it; idle timeout from route or HCM', () => {
  const t = catchAllTable([
    { name: 'off', match: { prefix: '/off' }, route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'WebSocket', enabled: {} }] } },
    { name: 'on', match: { prefix: '/on' }, route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'spdy/3.1' }], idle_timeout: { seconds: 2 } } },
    { name: 'plain', match: { prefix: '/' }, route: { cluster: 'c' } },
  ]);
  const route = (name: string) => t.any!.routes.find((r) => r.name === name)!;
  const hcm = (upgrades: Array<[string, boolean]>, streamIdleTimeoutMs = 300_000): HttpChainFilter => ({ kind: 'http', statPrefix: '', fault: false, xfcc: 'SANITIZE', upgrades: new Map(upgrades), streamIdleTimeoutMs, codec: 'AUTO' });
  const allows = hcm([['websocket', true]]);
  assert.equal(upgradeAllowed('websocket', allows, route('plain')), true);
  assert.equal(upgradeAllowed('websocket', allows, route('off')), false, 'disabled on the route wins');
  assert.equal(upgradeAllowed('spdy/3.1', allows, route('on')), true, 'enabled on the route, absent from the HCM');
  assert.equal(upgradeAllowed('spdy/3.1', allows, route('plain')), false);
  assert.equal(upgradeAllowed('websocket', hcm([['websocket', false]]), route('plain')), false);
  assert.equal(upgradeAllowed('websocket', hcm([]), route('plain')), false);
  assert.equal(tunnelIdleTimeoutMs(allows, route('on')), 2000);
  assert.equal(tunnelIdleTimeoutMs(allows, route('plain')), 300_000);
  assert.equal(tunnelIdleTimeoutMs(hcm([], 0), route('plain')), 2 ** 31 - 1, '0 disables the timer');

  const bad = new Problems();
  compileUpgrades([{ upgrade_type: 'CONNECT' }, { upgrade_type: '' }, { upgrade_type: 'websocket', filters: [{ name: 'x' }] }], bad, 'upgrade_configs');
  assert.deepEqual(
    bad.list.map((x) => `${x.path}: ${x.message}`),
    ['upgrade_configs[0].upgrade_type: connect tunnels are not supported', 'upgrade_configs[1].upgrade_type: must not be empty', 'upgrade_configs[2].filters: per-upgrade filter chains are not supported'],
  );
});

test('x-forwarded-client-cert by forward_client_cert_details: only a verified client certificate adds or keeps it', () => {
  const chain = (xfcc: XfccMode): HttpChainFilter => ({ kind: 'http', statPrefix: '', fault: false, xfcc, upgrades: new Map(), streamIdleTimeoutMs: 0, codec: 'AUTO' });
  const me = () => 'spiffe://cluster.local/ns/a/sa/server';
  const mtls = { tls: true, peerCertHash: 'abc', peerId: 'spiffe://cluster.local/ns/a/sa/client' };
  const plain = { tls: false, peerCertHash: undefined, peerId: undefined };
  const element = 'By=spiffe://cluster.local/ns/a/sa/server;Hash=abc;URI=spiffe://cluster.local/ns/a/sa/client';
  assert.deepEqual(xfccPlan({ chain: chain('SANITIZE'), ...mtls }, me), { keepClient: false });
  assert.deepEqual(xfccPlan({ chain: chain('FORWARD_ONLY'), ...mtls }, me), { keepClient: true });
  assert.deepEqual(xfccPlan({ chain: chain('APPEND_FORWARD'), ...mtls }, me), { keepClient: true, element });
  assert.deepEqual(xfccPlan({ chain: chain('SANITIZE_SET'), ...mtls }, me), { keepClient: false, element });
  assert.deepEqual(xfccPlan({ chain: chain('ALWAYS_FORWARD_ONLY'), ...mtls }, me), { keepClient: true });
  for (const mode of ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET'] as const) {
    assert.deepEqual(xfccPlan({ chain: chain(mode), ...plain }, me), { keepClient: false }, `${mode} without a client certificate`);
  }
  assert.deepEqual(xfccPlan({ chain: chain('ALWAYS_FORWARD_ONLY'), ...plain }, me), { keepClient: true });

  const hcmListener = (xfcc: string) => ({
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { stat_prefix: 's', rds: { route_config_name: 'r' }, forward_client_cert_details: xfcc } }] }],
  });
  const { problems } = compileState({ listeners: new Map([['l', hcmListener('FORWARD_ALL') as never]]), routes: new Map(), clusters: new Map(), endpoints: new Map() }, EMPTY_CONFIG);
  assert.deepEqual(
    problems.map((p) => [p.name, p.message]),
    [['l', 'filter_chains[0].filters[0].typed_config.forward_client_cert_details: unsupported value "FORWARD_ALL"; one of SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY']],
  );
});
