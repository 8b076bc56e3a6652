import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Problems } from './config-util.js';
import { compileRouteTable, selectVirtualHost } from './compile-routes.js';
import { matchRoute } from './http-router.js';
import { compileState, EMPTY_CONFIG } from './config.js';

const req = (method: string, headers: Record<string, string>) => ({ method, headers });

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
  const p = new Problems();
  const t = compileRouteTable(
    {
      name: 'r',
      virtual_hosts: [
        {
          name: 'v',
          domains: ['*'],
          routes: [
            { name: 'exact', match: { path: '/exact' }, route: { cluster: 'a' } },
            { name: 'nocase', match: { prefix: '/CaSe', case_sensitive: {} }, route: { cluster: 'a' } },
            { name: 'regex', match: { safe_regex: { regex: '/items/[0-9]+' } }, route: { cluster: 'a' } },
            { name: 'hdr', match: { prefix: '/h', headers: [{ name: 'x-a', string_match: { exact: 'yes' } }, { name: 'x-b', present_match: true, invert_match: true }] }, route: { cluster: 'a' } },
            { name: 'method', match: { prefix: '/m', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }, route: { cluster: 'a' } },
            { name: 'query', match: { prefix: '/q', query_parameters: [{ name: 'v', string_match: { prefix: '2' } }] }, route: { cluster: 'a' } },
            { name: 'fallback', match: { prefix: '/' }, route: { cluster: 'b' } },
          ],
        },
      ],
    },
    p,
  );
  assert.deepEqual(p.list, []);
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
