/**
 * Transparent capture, Istio-style: iptables nat rules in the current (or a named) network namespace.
 * Outbound TCP goes to 15001, inbound TCP to 15006 (except the proxy's own 15000-15099), DNS on port 53
 * (UDP and TCP) to 15053. The proxy's own traffic is excluded by owner match: by default the gid 1337
 * (Istio's proxy uid/gid), so a proxy can keep uid 0, which it needs to remove the rules on exit.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CrossmeshError, ValidationError } from '../../shared/index.js';
import type { Problem } from '../../shared/index.js';

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
  /** Runs one iptables invocation (argv without the `iptables`); injectable for tests. */
  run?: (args: readonly string[]) => Promise<void>;
}

/** Installed rules; remove() deletes them again and never throws. */
export interface Capture {
  readonly rules: readonly (readonly string[])[];
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

/** Every iptables invocation that installs capture, in order (pure; tests read it). */
export function captureRules(o: CaptureOptions = {}): string[][] {
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
  out('-d', '127.0.0.1/32', '-j', 'RETURN');
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

function defaultRunner(netns: string | undefined): (args: readonly string[]) => Promise<void> {
  return async (args) => {
    const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, 'iptables', '-w', ...args]] : ['iptables', ['-w', ...args]];
    try {
      await execFileAsync(cmd, argv as string[]);
    } catch (err) {
      const e = err as { stderr?: string; message: string; code?: string };
      throw new CaptureError(`iptables ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
    }
  };
}

/** Installs capture (removing leftovers of an earlier run first); on failure nothing stays installed. */
export async function installCapture(o: CaptureOptions = {}): Promise<Capture> {
  const rules = captureRules(o);
  const run = o.run ?? defaultRunner(o.netns);
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
  return { rules, remove };
}
