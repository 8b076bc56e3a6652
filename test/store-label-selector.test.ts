import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LabelSelectorError, parseLabelSelector } from '../src/controlplane/store/index.js';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front', 'topology.istio.io/network': 'vpc-1' };
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app', true],
    ['!app', false],
    ['!missing', true],
    ['tier in (front, back)', true],
    ['tier notin (front)', false],
    ['missing notin (x)', true],
    ['topology.istio.io/network=vpc-1,app=web', true],
    ['topology.istio.io/network=vpc-1,app=db', false],
    ['app=', false],
  ];
  for (const [sel, want] of cases) {
    it(`${JSON.stringify(sel)} → ${want}`, () => assert.equal(parseLabelSelector(sel).matches(labels), want));
  }

  it('matches absent labels as an empty map', () => {
    assert.equal(parseLabelSelector('!a').matches(undefined), true);
    assert.equal(parseLabelSelector('a').matches(undefined), false);
  });

  it('rejects malformed selectors naming the selector', () => {
    for (const bad of ['a in (b', 'a=b=c', ',', 'a in (b c)', 'bad key=x', 'a=' + 'x'.repeat(64)]) {
      assert.throws(() => parseLabelSelector(bad), (e: unknown) => e instanceof LabelSelectorError && e.message.includes(JSON.stringify(bad)), bad);
    }
  });
});
