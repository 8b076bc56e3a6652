import { execFile } from 'node:child_process';
import { request } from 'node:http';
import type { TopologyCheck } from '../api/index.js';
import type { LabState } from './state.js';

export interface CheckReply {
  status: number;
  body: string;
  /** The cluster of the pod named in the reply (helloworld prints its instance), if any. */
  answeredBy?: string;
  error?: string;
}

export interface CheckResult {
  check: TopologyCheck;
  pod: string;
  replies: CheckReply[];
  failures: string[];
}

/** One HTTP request through a pod's sidecar, used as an explicit proxy (loopback isolation). */
export function requestThroughSidecar(proxyIp: string, url: string, options: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: proxyIp, port: 15001, method: options.method ?? 'GET', path: target.href, headers: { host: target.host, ...options.headers }, timeout: options.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** One request with the system's curl inside a pod's network namespace: captured and resolved by its sidecar. */
export function curlInPod(netns: string, url: string, options: { method?: string; headers?: Record<string, string>; timeoutSec?: number } = {}): Promise<{ status: number; body: string }> {
  const args = ['netns', 'exec', netns, 'curl', '-sS', '-m', String(options.timeoutSec ?? 10), '-X', options.method ?? 'GET', '-w', '\n__STATUS__%{http_code}'];
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    execFile('ip', args, { maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const m = /\n__STATUS__(\d+)$/.exec(stdout);
      if (err && !m) return reject(new Error((stderr || err.message).trim()));
      resolve({ status: Number(m?.[1] ?? 0), body: m ? stdout.slice(0, m.index) : stdout });
    });
  });
}

/** Runs a topology check from the first pod of its deployment and evaluates its expectations. */
export async function runCheck(state: LabState, check: TopologyCheck): Promise<CheckResult> {
  const pod = state.pods.find((p) => p.cluster === check.from.cluster && p.namespace === check.from.namespace && p.name.startsWith(`${check.from.deployment}-`));
  if (!pod) return { check, pod: '-', replies: [], failures: [`no pod of deployment ${check.from.namespace}/${check.from.deployment} in ${check.from.cluster}`] };
  const clusterOfPod = new Map(state.pods.map((p) => [p.name, p.cluster]));
  const replies: CheckReply[] = [];
  for (let i = 0; i < check.count; i++) {
    try {
      const opts = { method: check.request.method, ...(check.request.headers ? { headers: check.request.headers } : {}) };
      const r = pod.netns ? await curlInPod(pod.netns, check.request.url, opts) : await requestThroughSidecar(pod.ip, check.request.url, opts);
      const instance = /instance: (\S+)/.exec(r.body)?.[1];
      const answeredBy = instance ? clusterOfPod.get(instance) : undefined;
      replies.push({ status: r.status, body: r.body.trim(), ...(answeredBy ? { answeredBy } : {}) });
    } catch (err) {
      replies.push({ status: 0, body: '', error: (err as Error).message });
    }
  }
  const failures: string[] = [];
  const expect = check.expect;
  const bad = replies.filter((r) => (expect.status !== undefined ? r.status !== expect.status : r.status === 0));
  if (bad.length) failures.push(`${bad.length} of ${replies.length} replies were not ${expect.status ?? 'answered'} (first: ${bad[0]!.error ?? `${bad[0]!.status} ${bad[0]!.body.slice(0, 80)}`})`);
  for (const text of expect.bodyContains ?? []) {
    const missing = replies.filter((r) => !r.body.includes(text)).length;
    if (missing) failures.push(`${missing} replies lack "${text}"`);
  }
  for (const share of expect.shares ?? []) {
    const pct = (100 * replies.filter((r) => r.body.includes(share.bodyContains)).length) / Math.max(1, replies.length);
    if (share.minPercent !== undefined && pct < share.minPercent) failures.push(`"${share.bodyContains}" in ${pct.toFixed(0)}% of replies, wanted at least ${share.minPercent}%`);
    if (share.maxPercent !== undefined && pct > share.maxPercent) failures.push(`"${share.bodyContains}" in ${pct.toFixed(0)}% of replies, wanted at most ${share.maxPercent}%`);
  }
  return { check, pod: `${pod.cluster}/${pod.name}`, replies, failures };
}
