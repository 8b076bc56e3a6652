import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import { buildClusterRegistry } from '../../registry/index.js';
import { aggregate } from '../aggregate/index.js';
import { createConfigIndex } from './config-index.js';
import type { DestinationRuleSpec, VirtualServiceSpec } from '../../api/index.js';
import { buildOutboundRouteConfiguration, serviceDomains } from './routes.js';

const HOST = 'helloworld.sample.svc.cluster.local';

function view() {
  const reg = buildClusterRegistry({ clusterId: 'c1', network: 'n1' }, [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'helloworld', namespace: 'sample' }, spec: { clusterIP: '10.96.0.5', selector: { app: 'helloworld' }, ports: [{ name: 'http', port: 5000 }] } },
  ]);
  return aggregate([reg], { localCluster: 'c1' });
}

function vs(spec: VirtualServiceSpec, name = 'helloworld'): Resource<VirtualServiceSpec> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'sample' }, spec };
}

function dr(spec: DestinationRuleSpec): Resource<DestinationRuleSpec> {
  return { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'helloworld', namespace: 'sample' }, spec };
}

function routesFor(vss: Resource<VirtualServiceSpec>[], drs: Resource<DestinationRuleSpec>[] = [], caller = { namespace: 'sample', labels: {} }) {
  const index = createConfigIndex({ virtualServices: vss, destinationRules: drs, gateways: [] }, 'cluster.local');
  const rc = buildOutboundRouteConfiguration('5000', 5000, [view().services.get(HOST)!], index, caller) as { virtual_hosts: Array<{ name: string; routes: Array<Record<string, any>> }> };
  return rc.virtual_hosts[0]!.routes;
}

test('routes: without a VirtualService, one default route to the service cluster with Istio default retries', () => {
  const [r] = routesFor([]);
  assert.equal(r!.route.cluster, `outbound|5000||${HOST}`);
  assert.deepEqual(r!.match, { prefix: '/' });
  assert.equal(r!.route.retry_policy.num_retries.value, 2);
  assert.deepEqual(r!.route.retry_policy.retriable_status_codes, [503], 'Istio retries a 503 by default');
});

const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }];
const DEFAULT_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
const DEFAULT_POLICY = { retry_on: DEFAULT_ON, num_retries: { value: 2 }, retriable_status_codes: [503], retry_host_predicate: PREVIOUS_HOSTS, host_selection_retry_max_attempts: 5 };

const retryCases: Array<{ name: string; retries?: NonNullable<VirtualServiceSpec['http']>[number]['retries']; hashed?: boolean; want: Record<string, unknown> | undefined }> = [
  { name: 'no retries: Istio default, 503 included', want: DEFAULT_POLICY },
  { name: 'attempts 0 disables retries', retries: { attempts: 0 }, want: undefined },
  { name: 'attempts only: default conditions and 503, attempts replaced', retries: { attempts: 5 }, want: { ...DEFAULT_POLICY, num_retries: { value: 5 } } },
  {
    name: 'retryOn replaces conditions and codes',
    retries: { attempts: 3, retryOn: '5xx,connect-failure' },
    want: { retry_on: '5xx,connect-failure', num_retries: { value: 3 }, retry_host_predicate: PREVIOUS_HOSTS, host_selection_retry_max_attempts: 5 },
  },
  {
    name: 'bare codes in retryOn become retriable_status_codes',
    retries: { attempts: 1, retryOn: 'gateway-error,502,504', perTryTimeout: '2s' },
    want: { retry_on: 'gateway-error,retriable-status-codes', num_retries: { value: 1 }, retriable_status_codes: [502, 504], per_try_timeout: { seconds: 2, nanos: 0 }, retry_host_predicate: PREVIOUS_HOSTS, host_selection_retry_max_attempts: 5 },
  },
  {
    name: 'retryRemoteLocalities adds previous_priorities',
    retries: { attempts: 2, retryRemoteLocalities: true },
    want: {
      ...DEFAULT_POLICY,
      retry_priority: {
        name: 'envoy.retry_priorities.previous_priorities',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: 2 },
      },
    },
  },
  { name: 'consistent hashing: default policy without previous_hosts', hashed: true, want: { retry_on: DEFAULT_ON, num_retries: { value: 2 }, retriable_status_codes: [503], host_selection_retry_max_attempts: 5 } },
];

for (const c of retryCases) {
  test(`routes: retry policy: ${c.name}`, () => {
    const drs = c.hashed ? [dr({ host: 'helloworld', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })] : [];
    const [r] = routesFor([vs({ hosts: ['helloworld'], http: [{ ...(c.retries ? { retries: c.retries } : {}), route: [{ destination: { host: 'helloworld' } }] }] })], drs);
    assert.deepEqual(r!.route.retry_policy, c.want);
    if (c.retries === undefined) {
      // Without any VirtualService the default route carries the same policy.
      const [d] = routesFor([], drs);
      assert.deepEqual(d!.route.retry_policy, c.want);
    }
  });
}

test('routes: 90/10 weights between subsets become weighted clusters', () => {
  const [r] = routesFor([
    vs({
      hosts: ['helloworld'],
      http: [{ route: [{ destination: { host: 'helloworld', subset: 'v1' }, weight: 90 }, { destination: { host: 'helloworld', subset: 'v2' }, weight: 10 }] }],
    }),
  ]);
  assert.deepEqual(r!.route.weighted_clusters.clusters, [
    { name: `outbound|5000|v1|${HOST}`, weight: { value: 90 } },
    { name: `outbound|5000|v2|${HOST}`, weight: { value: 10 } },
  ]);
});

test('routes: a zero weight drops the destination; 100/0 is a plain cluster route', () => {
  const [r] = routesFor([
    vs({ hosts: [HOST], http: [{ route: [{ destination: { host: HOST, subset: 'v1' }, weight: 100 }, { destination: { host: HOST, subset: 'v2' }, weight: 0 }] }] }),
  ]);
  assert.equal(r!.route.cluster, `outbound|5000|v1|${HOST}`);
});

test('routes: matches on uri, headers, method; retries with status codes; timeout; fault; mirror; header ops', () => {
  const routes = routesFor([
    vs({
      hosts: ['helloworld'],
      http: [
        {
          name: 'canary',
          match: [{ uri: { prefix: '/hello' }, headers: { 'x-canary': { exact: 'yes' } }, method: { exact: 'GET' } }],
          route: [{ destination: { host: 'helloworld', subset: 'v2' } }],
          timeout: '1.5s',
          retries: { attempts: 3, perTryTimeout: '200ms', retryOn: '5xx,503,connect-failure' },
          fault: { abort: { httpStatus: 503, percentage: { value: 12.5 } } },
          mirror: { host: 'helloworld', subset: 'v1' },
          mirrorPercentage: { value: 50 },
          headers: { request: { set: { 'x-a': '1' }, remove: ['x-b'] }, response: { add: { 'x-c': '2' } } },
        },
        { route: [{ destination: { host: 'helloworld', subset: 'v1' } }] },
      ],
    }),
  ]);
  assert.equal(routes.length, 2);
  const [canary, rest] = routes;
  assert.equal(canary!.name, 'canary');
  assert.deepEqual(canary!.match, {
    prefix: '/hello',
    headers: [
      { name: 'x-canary', string_match: { exact: 'yes' } },
      { name: ':method', string_match: { exact: 'GET' } },
    ],
  });
  assert.equal(canary!.route.cluster, `outbound|5000|v2|${HOST}`);
  assert.deepEqual(canary!.route.timeout, { seconds: 1, nanos: 500_000_000 });
  assert.equal(canary!.route.retry_policy.retry_on, '5xx,connect-failure,retriable-status-codes');
  assert.deepEqual(canary!.route.retry_policy.retriable_status_codes, [503]);
  assert.deepEqual(canary!.route.retry_policy.per_try_timeout, { seconds: 0, nanos: 200_000_000 });
  assert.deepEqual(canary!.typed_per_filter_config['envoy.filters.http.fault'].abort, { http_status: 503, percentage: { numerator: 125_000, denominator: 'MILLION' } });
  assert.deepEqual(canary!.route.request_mirror_policies, [{ cluster: `outbound|5000|v1|${HOST}`, runtime_fraction: { default_value: { numerator: 500_000, denominator: 'MILLION' } } }]);
  assert.deepEqual(canary!.request_headers_to_add, [{ header: { key: 'x-a', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  assert.deepEqual(canary!.request_headers_to_remove, ['x-b']);
  assert.deepEqual(canary!.response_headers_to_add, [{ header: { key: 'x-c', value: '2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }]);
  assert.deepEqual(rest!.match, { prefix: '/' });
});

test('routes: sourceLabels and port matches apply only to matching callers and ports', () => {
  const rules = [
    vs({
      hosts: ['helloworld'],
      http: [
        { match: [{ sourceLabels: { app: 'sleep' } }], route: [{ destination: { host: 'helloworld', subset: 'v2' } }] },
        { match: [{ port: 9999 }], route: [{ destination: { host: 'helloworld', subset: 'v3' } }] },
        { route: [{ destination: { host: 'helloworld', subset: 'v1' } }] },
      ],
    }),
  ];
  assert.deepEqual(routesFor(rules, [], { namespace: 'sample', labels: { app: 'sleep' } }).map((r) => r.route.cluster), [
    `outbound|5000|v2|${HOST}`,
    `outbound|5000|v1|${HOST}`,
  ]);
  assert.deepEqual(routesFor(rules, [], { namespace: 'sample', labels: { app: 'other' } }).map((r) => r.route.cluster), [`outbound|5000|v1|${HOST}`]);
});

test('routes: consistentHash on a header in the DestinationRule becomes the hash policy', () => {
  const [r] = routesFor([], [dr({ host: 'helloworld', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })]);
  assert.deepEqual(r!.route.hash_policy, [{ header: { header_name: 'x-user' } }]);
});

test('domains: FQDN, name.ns.svc, name.ns, short name only from the same namespace, VIP; each with :port', () => {
  const svc = view().services.get(HOST)!;
  assert.deepEqual(serviceDomains(svc, 5000, 'sample', 'cluster.local'), [
    HOST, `${HOST}:5000`, 'helloworld.sample.svc', 'helloworld.sample.svc:5000', 'helloworld.sample', 'helloworld.sample:5000', 'helloworld', 'helloworld:5000', '10.96.0.5', '10.96.0.5:5000',
  ]);
  assert.ok(!serviceDomains(svc, 5000, 'other', 'cluster.local').includes('helloworld'));
});
