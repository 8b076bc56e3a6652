import { createHash } from 'node:crypto';

/** Istio's range for auto-allocated service VIPs (DNS proxy), outside any routable space. */
export const AUTO_VIP_PREFIX = '240.240';
const SPACE = 65_534;

/**
 * Gives every hostname a VIP in 240.240.0.0/16, by hash with linear probing in sorted hostname order, so
 * the same set of names always gets the same addresses on every control plane and after restarts.
 */
export function allocateVips(hostnames: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<number>();
  for (const host of [...new Set(hostnames)].sort()) {
    let slot = createHash('sha256').update(host).digest().readUInt32BE(0) % SPACE;
    while (used.has(slot)) slot = (slot + 1) % SPACE;
    used.add(slot);
    const n = slot + 1;
    out.set(host, `${AUTO_VIP_PREFIX}.${n >> 8}.${n & 255}`);
  }
  return out;
}
