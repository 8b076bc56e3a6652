import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { LabStatus } from '../../src/lab/state.js';
import { requestThroughSidecar } from '../../src/lab/checks.js';
import { accessLog, crossmesh, eventually, labFixture, labStatus } from './lab-helpers.js';

/**
 * Issue 7's traffic policies measured in a running lab (loopback isolation, one lab for the file): retries hide a
 * backend that fails every other request, fault injection gives its configured ratios, consistent hashing keeps a
 * header value on one pod. The DestinationRule of the hashing test stays while the faults are measured:
 * it changes which pod answers, not whether a fault is injected.
 */
const dir = new URL('../../../examples/traffic/', import.meta.url).pathname;
const lab = labFixture();
let status: LabStatus;
let sleepIp: string;

interface Reply {
  status: number;
  body: string;
  ms: number;
  id: string;
}

let seq = 0;
async function call(host: string, headers: Record<string, string> = {}): Promise<Reply> {
  const id = `traffic-${process.pid}-${++seq}`;
  const start = performance.now();
  const r = await requestThroughSidecar(sleepIp, `http://${host}.sample:5000/hello`, { headers: { 'x-request-id': id, ...headers } }).catch(() => ({ status: 0, body: '' }));
  return { status: r.status, body: r.body, ms: performance.now() - start, id };
}

/** `count` calls, `concurrency` at a time. */
async function calls(count: number, concurrency: number, one: (i: number) => Promise<Reply>): Promise<Reply[]> {
  const out: Reply[] = [];
  for (let i = 0; i < count; i += concurrency) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, (_, k) => one(i + k)))));
  }
  return out;
}

async function applyToCluster1(file: string): Promise<void> {
  const r = await crossmesh(lab.dir, ['lab', 'apply', 'cluster-1', '-f', join(dir, file)]);
  assert.equal(r.code, 0, r.stderr);
}

const logOf = (pod: string) => join(lab.dir, 'logs', `${pod}.proxy.log.access`);
const podNamed = (prefix: string) => status.pods.find((p) => p.name.startsWith(prefix))!;
const instance = (body: string) => /instance: (\S+)/.exec(body)?.[1];

before(async () => {
  const up = await crossmesh(lab.dir, ['up', '-d', '--topology', join(dir, 'topology.yaml')]);
  assert.equal(up.code, 0, `up failed:\n${up.stdout}\n${up.stderr}`);
  status = await labStatus(lab.dir);
  sleepIp = podNamed('sleep-').ip;
  const reached = await eventually(async () => (await call('helloworld')).status === 200 && (await call('flaky')).status !== 0, 30_000, 250);
  assert.ok(reached, 'helloworld and flaky answer through cluster-1\'s sleep');
});

after(async () => {
  await lab.cleanup();
});

test('retries: 3 attempts on 5xx hide a backend that fails every other request; without them about half fail', async (t) => {
  const flaky = podNamed('flaky-');
  const inbound = (lines: any[]) => lines.filter((l) => l.path === '/hello' && String(l.upstream_cluster).startsWith('inbound|'));

  const plain = await calls(40, 1, () => call('flaky'));
  const failed = plain.filter((r) => r.status === 500).length;
  assert.ok(failed >= 15 && failed <= 25, `without retries about half fail: ${failed} of 40 answered 500`);
  assert.ok(plain.every((r) => r.status === 200 || r.body.includes('failing on purpose')), 'the failures are flaky\'s own 500s');

  await applyToCluster1('retries.yaml');
  const inForce = await eventually(async () => (await calls(8, 1, () => call('flaky'))).every((r) => r.status === 200), 20_000, 250);
  assert.ok(inForce, 'the retry policy reached cluster-1\'s sleep');

  const seen = inbound(await accessLog(logOf(`cluster-1.${flaky.name}`), () => true)).length;
  const replies = await calls(60, 1, () => call('flaky'));
  assert.deepEqual(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.trim()}`), [], 'every call succeeded');
  const attempts = inbound(await accessLog(logOf(`cluster-1.${flaky.name}`), (lines) => inbound(lines).length >= seen + 110)).slice(seen);
  const failedAttempts = attempts.filter((l) => l.response_code === 500).length;
  t.diagnostic(`without retries ${failed}/40 failed; with retries 60/60 succeeded over ${attempts.length} attempts, ${failedAttempts} of them 500`);
  assert.ok(failedAttempts >= 50, `flaky's sidecar saw the failed attempts the caller never saw: ${failedAttempts} answered 500 of ${attempts.length}`);
});

test('consistent hashing on x-user: each user sticks to one helloworld pod, users spread over several in both clusters', async (t) => {
  const pods = status.pods.filter((p) => p.app === 'helloworld').map((p) => p.name);
  assert.equal(pods.length, 4);
  const before = await calls(12, 4, () => call('helloworld', { 'x-user': 'alice' }));
  assert.ok(new Set(before.map((r) => instance(r.body))).size > 1, 'without the DestinationRule one user reaches several pods');

  await applyToCluster1('consistent-hash.yaml');
  const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
  const sticky = async (): Promise<Map<string, Set<string>>> => {
    const replies = await calls(users.length * 8, 20, async (i) => ({ ...(await call('helloworld', { 'x-user': users[i % users.length]! })), id: users[i % users.length]! }));
    const seen = new Map<string, Set<string>>();
    for (const r of replies) {
      assert.equal(r.status, 200, r.body);
      seen.set(r.id, (seen.get(r.id) ?? new Set()).add(instance(r.body) ?? '?'));
    }
    return seen;
  };
  const inForce = await eventually(async () => [...(await sticky()).values()].every((s) => s.size === 1), 20_000, 500);
  assert.ok(inForce, 'the hash policy reached cluster-1\'s sleep');

  const seen = await sticky();
  const moved = [...seen].filter(([, s]) => s.size > 1).map(([u, s]) => `${u}: ${[...s].join(', ')}`);
  assert.deepEqual(moved, [], 'each user always lands on the same pod');
  const used = new Set([...seen.values()].flatMap((s) => [...s]));
  t.diagnostic(`pods used by 20 users: ${[...used].join(', ')}`);
  assert.ok(used.size > 1, `20 users spread over more than one pod (used: ${[...used].join(', ')})`);
  assert.ok([...used].every((p) => pods.includes(p)), 'the instances are helloworld pods');
  const clusters = new Set(status.pods.filter((p) => used.has(p.name)).map((p) => p.cluster));
  assert.deepEqual([...clusters].sort(), ['cluster-1', 'cluster-2'], 'the ring holds both clusters\' pods');
});

test('fault injection: 30% aborted with 503 and 50% delayed by 300 ms, over 400 calls', async (t) => {
  await applyToCluster1('faults.yaml');
  const inForce = await eventually(async () => (await calls(20, 20, () => call('helloworld'))).some((r) => r.status === 503), 20_000, 250);
  assert.ok(inForce, 'the fault policy reached cluster-1\'s sleep');

  const replies = await calls(400, 20, () => call('helloworld'));
  const aborted = replies.filter((r) => r.status === 503);
  assert.equal(aborted.length + replies.filter((r) => r.status === 200).length, 400, 'every call answered 200 or the injected 503');
  assert.ok(aborted.every((r) => r.body.includes('fault filter abort')), 'the 503s are the injected ones');
  const abortPct = (100 * aborted.length) / 400;
  assert.ok(abortPct >= 22 && abortPct <= 38, `aborted ${abortPct.toFixed(1)}%, configured 30% (±8)`);

  const ids = new Set(replies.map((r) => r.id));
  const records = await accessLog(logOf(`cluster-1.${podNamed('sleep-').name}`), (lines) => lines.filter((l) => ids.has(l.request_id)).length >= 400);
  const flagsOf = new Map(records.filter((l) => ids.has(l.request_id)).map((l) => [l.request_id as string, String(l.response_flags)]));
  assert.equal(flagsOf.size, 400, 'one access record per call');
  const delayed = replies.filter((r) => flagsOf.get(r.id)!.split(',').includes('DI'));
  const delayPct = (100 * delayed.length) / 400;
  assert.ok(delayPct >= 42 && delayPct <= 58, `delayed ${delayPct.toFixed(1)}%, configured 50% (±8)`);
  t.diagnostic(`aborted ${abortPct.toFixed(1)}%, delayed ${delayPct.toFixed(1)}%`);
  const early = delayed.filter((r) => r.ms < 300);
  assert.deepEqual(early.map((r) => Math.round(r.ms)), [], 'every delayed call took at least the 300 ms delay');
  const slowUndelayed = replies.filter((r) => !delayed.includes(r) && r.ms >= 300).length;
  assert.ok(slowUndelayed <= 20, `calls that were not delayed stay fast (${slowUndelayed} of ${400 - delayed.length} took 300 ms or more)`);
});
