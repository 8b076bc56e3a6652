import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateVips, candidateNames, createNameTableLookup, answerLocally, RRType } from './index.js';

const search = ['sample.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

test('candidate names undo and redo the resolver search list', () => {
  assert.deepEqual(candidateNames('helloworld.sample.svc.cluster.local.', search).slice(0, 2), ['helloworld.sample.svc.cluster.local', 'helloworld']);
  assert.ok(candidateNames('httpbin.default.sample.svc.cluster.local', search).includes('httpbin.default.svc.cluster.local'));
  assert.ok(candidateNames('httpbin.default', search).includes('httpbin.default.svc.cluster.local'));
  assert.equal(candidateNames('HELLOWORLD', search)[1], 'helloworld.sample.svc.cluster.local');
});

test('a name table answers FQDN, name.ns, short names via search, alt hosts; not other namespaces by short name', () => {
  const lookup = createNameTableLookup({
    table: {
      'helloworld.sample.svc.cluster.local': { ips: ['10.1.0.5', 'fd00::5'], registry: 'Kubernetes', shortname: 'helloworld', namespace: 'sample' },
      'httpbin.default.svc.cluster.local': { ips: ['10.1.0.9'], registry: 'Kubernetes', shortname: 'httpbin', namespace: 'default' },
      'api.example.com': { ips: ['240.240.1.2'], altHosts: ['api.example.org'] },
    },
  });
  const a = (name: string) => answerLocally({ name, type: RRType.A, class: 1 }, lookup, search, 30)?.records.map((r) => r.data);
  assert.deepEqual(a('helloworld'), ['10.1.0.5']);
  assert.deepEqual(a('helloworld.sample'), ['10.1.0.5']);
  assert.deepEqual(a('helloworld.sample.svc.cluster.local'), ['10.1.0.5']);
  assert.deepEqual(a('httpbin.default'), ['10.1.0.9']);
  assert.deepEqual(a('httpbin.default.sample.svc.cluster.local'), ['10.1.0.9']);
  assert.deepEqual(a('api.example.org'), ['240.240.1.2']);
  assert.equal(a('httpbin'), undefined, 'httpbin is not in the client namespace');
  assert.equal(a('example.com'), undefined);
  const aaaa = (name: string) => answerLocally({ name, type: RRType.AAAA, class: 1 }, lookup, search, 30)?.records.map((r) => r.data);
  assert.deepEqual(aaaa('helloworld'), ['fd00::5']);
  assert.deepEqual(aaaa('httpbin.default'), [], 'IPv4-only mesh name: empty answer, not unknown');
  assert.equal(answerLocally({ name: 'helloworld', type: RRType.TXT, class: 1 }, lookup, search, 30), undefined);
});

test('VIPs come from 240.240.0.0/16, are unique, and depend only on the set of names', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.domain(), { minLength: 1, maxLength: 40 }), (names) => {
      const a = allocateVips(names);
      const b = allocateVips([...names].reverse().map((n) => n.toUpperCase()));
      assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
      const ips = [...a.values()];
      assert.equal(new Set(ips).size, ips.length);
      for (const ip of ips) {
        assert.match(ip, /^240\.240\.\d+\.\d+$/);
        assert.ok(ip !== '240.240.0.0' && ip !== '240.240.255.255');
      }
    }),
  );
});

test('adding a name does not move the others unless they collide', () => {
  const names = Array.from({ length: 200 }, (_, i) => `svc-${i}.ns.svc.cluster.local`);
  const before = allocateVips(names);
  const after = allocateVips([...names, 'new.ns.svc.cluster.local']);
  const moved = names.filter((n) => before.get(n) !== after.get(n));
  assert.ok(moved.length <= 1, `moved: ${moved.join(', ')}`);
});
