/**
 * Transparent capture, Istio-style: iptables nat rules in the current (or a named) network namespace, the
 * same rules for IPv6 with ip6tables when the namespace has IPv6 and ip6tables works (otherwise IPv4 only,
 * said once in the log). Outbound TCP goes to 15001, inbound TCP to 15006 (except the proxy's own
 * 15000-15099), DNS on port 53 (UDP and TCP) to 15053. The proxy's own traffic is excluded by owner match:
 * by default the gid 1337 (Istio's proxy uid/gid), so a proxy can keep uid 0, which it needs to remove the
 * rules on exit.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { CrossmeshError, ValidationError } from '../../shared/index.js';
import type { Problem } from '../../shared/index.js';
import type { Logger } from '../../shared/log.js';

export const CAPTURE_OUTPUT_CHAIN = 'CROSSMESH_OUTPUT';
export const CAPTURE_INBOUND_CHAIN = 'CROSSMESH_INBOUND';
export const PROXY_GID = 1337;

export interface CaptureOptions {
  /** Traffic from sockets owned by this uid is not captured. */
  proxyUid?: number;
  /** Traffic from sockets owned by this gid is not captured; default 1337 when no uid is given. */
  proxyGid?: number;
  outboundPort?: number;
  inboundPort?: number;
  dnsPort?: number;
  /** Capture DNS (port 53) to the DNS proxy; default true. */
  captureDns?: boolean;
  /** Capture inbound TCP (PREROUTING); default true. */
  captureInbound?: boolean;
  /** Inbound destination ports left alone; default the proxy's own 15000:15099. */
  excludeInboundPorts?: readonly string[];
  /** Run in this named namespace (`ip netns exec`); default the current one. */
  netns?: string;
  /** Runs one iptables or ip6tables invocation (argv without the command); injectable for tests. */
  run?: (args: readonly string[], tool: CaptureTool) => Promise<void>;
  /** Whether IPv6 can be captured here, and why not; default: the namespace's IPv6 sysctl and ip6tables. */
  ipv6?: () => Promise<{ ok: true } | { ok: false; reason: string }>;
  /** Where the IPv4-only fallback is said. */
  logger?: Logger;
}

export type CaptureTool = 'iptables' | 'ip6tables';

/** Installed rules; remove() deletes them again (both families) and never throws. */
export interface Capture {
  readonly rules: readonly (readonly string[])[];
  /** The ip6tables rules, or why IPv6 is not captured. */
  readonly ipv6: { captured: true; rules: readonly (readonly string[])[] } | { captured: false; reason: string };
  remove(): Promise<void>;
}

export class CaptureError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_CAPTURE', message, options);
  }
}

const port = (p: number): string => String(p);

function validate(o: CaptureOptions): void {
  const problems: Problem[] = [];
  for (const k of ['outboundPort', 'inboundPort', 'dnsPort'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0 && v < 65536)) problems.push({ path: k, message: `must be a port 1..65535 (got ${String(v)})` });
  }
  for (const k of ['proxyUid', 'proxyGid'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) problems.push({ path: k, message: `must be a non-negative integer (got ${String(v)})` });
  }
  for (const [i, r] of (o.excludeInboundPorts ?? []).entries()) {
    if (!/^\d{1,5}(:\d{1,5})?$/.test(r)) problems.push({ path: `excludeInboundPorts[${i}]`, message: `must be PORT or FROM:TO (got "${r}")` });
  }
  if (problems.length) throw new ValidationError(problems.map((p) => ({ resource: 'capture', ...p })));
}

/** The jumps from the built-in chains into ours; the same argv with -D removes them. */
function jumps(o: CaptureOptions): string[][] {
  const out = [['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-j', CAPTURE_OUTPUT_CHAIN]];
  if (o.captureDns !== false) out.push(['-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '--dport', '53', '-j', CAPTURE_OUTPUT_CHAIN]);
  if (o.captureInbound !== false) out.push(['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '-j', CAPTURE_INBOUND_CHAIN]);
  return out;
}

/** Every iptables (family 4) or ip6tables (family 6) invocation that installs capture, in order (pure). */
export function captureRules(o: CaptureOptions = {}, family: 4 | 6 = 4): string[][] {
  validate(o);
  const outbound = port(o.outboundPort ?? 15001);
  const inbound = port(o.inboundPort ?? 15006);
  const dnsPort = port(o.dnsPort ?? 15053);
  const gid = o.proxyGid ?? (o.proxyUid === undefined ? PROXY_GID : undefined);
  const rules: string[][] = [
    ['-t', 'nat', '-N', CAPTURE_OUTPUT_CHAIN],
    ['-t', 'nat', '-N', CAPTURE_INBOUND_CHAIN],
  ];
  const out = (...args: string[]) => rules.push(['-t', 'nat', '-A', CAPTURE_OUTPUT_CHAIN, ...args]);
  // The proxy's own connections (to upstreams, to the real resolver) must leave as they are.
  if (o.proxyUid !== undefined) out('-m', 'owner', '--uid-owner', String(o.proxyUid), '-j', 'RETURN');
  if (gid !== undefined) out('-m', 'owner', '--gid-owner', String(gid), '-j', 'RETURN');
  if (o.captureDns !== false) {
    // Before the loopback exception: a resolver on 127.0.0.53 is captured too, as in Istio.
    out('-p', 'udp', '--dport', '53', '-j', 'REDIRECT', '--to-ports', dnsPort);
    out('-p', 'tcp', '--dport', '53', '-j', 'REDIRECT', '--to-ports', dnsPort);
  }
  out('-d', family === 4 ? '127.0.0.1/32' : '::1/128', '-j', 'RETURN');
  out('-p', 'tcp', '-j', 'REDIRECT', '--to-ports', outbound);
  if (o.captureInbound !== false) {
    for (const range of o.excludeInboundPorts ?? ['15000:15099']) {
      rules.push(['-t', 'nat', '-A', CAPTURE_INBOUND_CHAIN, '-p', 'tcp', '--dport', range, '-j', 'RETURN']);
    }
    rules.push(['-t', 'nat', '-A', CAPTURE_INBOUND_CHAIN, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', inbound]);
  }
  rules.push(...jumps(o));
  return rules;
}

/** What removes capture: the jumps, then our chains flushed and deleted. */
export function removalRules(o: CaptureOptions = {}): string[][] {
  return [
    ...jumps(o).map((r) => r.map((a) => (a === '-A' ? '-D' : a))),
    ['-t', 'nat', '-F', CAPTURE_OUTPUT_CHAIN],
    ['-t', 'nat', '-X', CAPTURE_OUTPUT_CHAIN],
    ['-t', 'nat', '-F', CAPTURE_INBOUND_CHAIN],
    ['-t', 'nat', '-X', CAPTURE_INBOUND_CHAIN],
  ];
}

const execFileAsync = promisify(execFile);

function command(netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, cmd, ...args]] : [cmd, [...args]];
}

function defaultRunner(netns: string | undefined): (args: readonly string[], tool: CaptureTool) => Promise<void> {
  return async (args, tool) => {
    const [cmd, argv] = command(netns, tool, ['-w', ...args]);
    try {
      await execFileAsync(cmd, argv);
    } catch (err) {
      const e = err as { stderr?: string; message: string; code?: string };
      const why = e.code === 'ENOENT' ? `${cmd} is not installed` : (e.stderr ?? '').trim() || e.message;
      throw new CaptureError(`${tool} ${args.join(' ')}: ${why}`, { cause: err });
    }
  };
}

/** IPv6 in the namespace: the kernel has it and the namespace has not switched it off. */
async function defaultIpv6Check(netns: string | undefined): Promise<{ ok: true } | { ok: false; reason: string }> {
  const sysctl = '/proc/sys/net/ipv6/conf/all/disable_ipv6';
  let value: string;
  try {
    if (netns) value = (await execFileAsync(...command(netns, 'cat', [sysctl]))).stdout;
    else value = await readFile(sysctl, 'utf8');
  } catch {
    return { ok: false, reason: `the kernel has no IPv6 (no ${sysctl})` };
  }
  return value.trim() === '1' ? { ok: false, reason: 'IPv6 is disabled in this network namespace (net.ipv6.conf.all.disable_ipv6=1)' } : { ok: true };
}

/** Installs rules for one family, removing leftovers of an earlier run first; on failure nothing stays. */
async function installFamily(o: CaptureOptions, rules: readonly string[][], run: (args: readonly string[]) => Promise<void>): Promise<() => Promise<void>> {
  const remove = async (): Promise<void> => {
    for (const r of removalRules(o)) await run(r).catch(() => undefined);
  };
  await remove();
  try {
    for (const r of rules) await run(r);
  } catch (err) {
    await remove();
    throw err;
  }
  return remove;
}

/**
 * Installs capture. IPv4 must succeed (on failure nothing stays installed and this throws); IPv6 follows
 * when the namespace has it, and anything that stops it leaves IPv4 capture working and is logged once.
 */
export async function installCapture(o: CaptureOptions = {}): Promise<Capture> {
  const rules = captureRules(o, 4);
  const rules6 = captureRules(o, 6);
  const run = o.run ?? defaultRunner(o.netns);
  const remove4 = await installFamily(o, rules, (r) => run(r, 'iptables'));
  let ipv6: Capture['ipv6'];
  let remove6 = async (): Promise<void> => undefined;
  const check = await (o.ipv6 ?? (() => defaultIpv6Check(o.netns)))();
  if (!check.ok) ipv6 = { captured: false, reason: check.reason };
  else {
    try {
      // Fails cleanly (nothing to undo) when ip6tables is missing or the kernel has no IPv6 nat table.
      await run(['-t', 'nat', '-S', 'OUTPUT'], 'ip6tables');
      remove6 = await installFamily(o, rules6, (r) => run(r, 'ip6tables'));
      ipv6 = { captured: true, rules: rules6 };
    } catch (err) {
      ipv6 = { captured: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }
  if (!ipv6.captured) o.logger?.warn(`IPv6 is not captured (IPv4 only): ${ipv6.reason}`);
  return {
    rules,
    ipv6,
    remove: async () => {
      await remove4();
      await remove6();
    },
  };
}
