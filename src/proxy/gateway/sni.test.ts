import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { outboundSni, parseOutboundSni } from '../../xds/index.js';
import { pickOrder, createSniPassthroughGateway } from './index.js';
import { ValidationError } from '../../shared/errors.js';

test('outbound SNIs parse into port, subset, host and cluster name', () => {
  assert.deepEqual(parseOutboundSni('outbound_.8000_._.httpbin.default.svc.cluster.local'), {
    sni: 'outbound_.8000_._.httpbin.default.svc.cluster.local',
    port: 8000,
    subset: '',
    fqdn: 'httpbin.default.svc.cluster.local',
    clusterName: 'outbound|8000||httpbin.default.svc.cluster.local',
  });
  const v1 = parseOutboundSni('outbound_.9080_.v1_.reviews.bookinfo.svc.cluster.local');
  assert.equal(v1?.subset, 'v1');
  assert.equal(v1?.clusterName, 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local');
});

test('anything else is not an outbound SNI', () => {
  for (const bad of [
    'httpbin.default.svc.cluster.local',
    'inbound_.8000_._.httpbin.default.svc.cluster.local',
    'outbound_.0_._.a.b',
    'outbound_.70000_._.a.b',
    'outbound_.08_._.a.b',
    'outbound_.80_._.',
    'outbound_.80_.a.b',
    'outbound_.80_._.-bad.b',
    'outbound_.80_._.a..b',
    'outbound_.80__.a.b',
    'outbound_..80_._.a.b',
  ]) {
    assert.equal(parseOutboundSni(bad), undefined, bad);
  }
});

test('format and parse are inverse', () => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65535 }), fc.oneof(fc.constant(''), label), fc.array(label, { minLength: 1, maxLength: 5 }), (port, subset, labels) => {
      const fqdn = labels.join('.');
      const parsed = parseOutboundSni(outboundSni(port, subset, fqdn));
      assert.deepEqual(parsed && { port: parsed.port, subset: parsed.subset, fqdn: parsed.fqdn }, { port, subset, fqdn });
    }),
  );
});

test('pickOrder walks round robin from the cursor and caps the attempts', () => {
  assert.deepEqual(pickOrder(['a', 'b', 'c'], 0, 3), ['a', 'b', 'c']);
  assert.deepEqual(pickOrder(['a', 'b', 'c'], 4, 2), ['b', 'c']);
  assert.deepEqual(pickOrder(['a'], 7, 3), ['a']);
  assert.deepEqual(pickOrder([], 1, 3), []);
});

test('gateway options are validated up front, every problem named', () => {
  assert.throws(
    () => createSniPassthroughGateway({ port: 70000, resolve: undefined as never, idleTimeoutMs: -1 }),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.deepEqual(err.problems.map((p) => p.path), ['port', 'resolve', 'idleTimeoutMs']);
      return true;
    },
  );
});
