/**
 * Virtual IPs for hosts that have none (ServiceEntries without addresses, remote-only names), from
 * 240.240.0.0/16 as Istio's DNS auto-allocation does. Deterministic: the same set of names always gets the
 * same addresses, on any machine and after any restart, and a name keeps its address when unrelated names
 * come and go unless it collided with one of them.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../shared/errors.js';

export const AUTO_VIP_PREFIX = '240.240.0.0/16';
const BASE = (240 << 24) | (240 << 16);
/** .0.0 and .255.255 are left out: network and broadcast forms confuse some clients. */
const FIRST = 1;
const LAST = 0xfffe;
const SIZE = LAST - FIRST + 1;

function slot(name: string): number {
  const digest = createHash('sha256').update(name).digest();
  return digest.readUInt32BE(0) % SIZE;
}

function toIp(offset: number): string {
  const v = (BASE + FIRST + offset) >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/**
 * Assigns each distinct host name (case-insensitive) a VIP. Names are placed in sorted order at their hash
 * slot, probing linearly past taken slots, so the result depends only on the set of names.
 */
export function allocateVips(hostnames: Iterable<string>): Map<string, string> {
  const names = [...new Set([...hostnames].map((h) => h.toLowerCase().replace(/\.$/, '')))].sort();
  if (names.length > SIZE) {
    throw new ValidationError([{ path: 'hostnames', message: `${names.length} hosts do not fit in ${AUTO_VIP_PREFIX} (${SIZE} addresses)` }]);
  }
  const taken = new Set<number>();
  const out = new Map<string, string>();
  for (const name of names) {
    let s = slot(name);
    while (taken.has(s)) s = (s + 1) % SIZE;
    taken.add(s);
    out.set(name, toIp(s));
  }
  return out;
}
