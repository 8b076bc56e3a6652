import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateVips } from './vip.js';

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
