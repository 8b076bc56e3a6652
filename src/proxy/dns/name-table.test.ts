import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateNames, createNameTableLookup, answerLocally, RRType } from './index.js';

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
