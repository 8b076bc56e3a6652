/**
 * Original destination of a connection captured by iptables REDIRECT (the sidecar's 15001/15006 ports):
 * the kernel keeps it in the conntrack entry and hands it out through getsockopt(SO_ORIGINAL_DST), which
 * Node does not expose, so a tiny N-API addon (native/original_dst.cc, built at install time by
 * native/build.js) makes the call. Everything here returns values; nothing throws for a missing addon or
 * an unredirected socket.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';

interface Addon {
  originalDst(fd: number, family: 4 | 6): { address: string; port: number } | number;
}

export type OriginalDstFailure =
  /** The addon is not built or not loadable here (non-Linux, no compiler at install time). */
  | 'unavailable'
  /** The socket has no file descriptor (closed, or not a TCP socket). */
  | 'no-fd'
  /** The kernel has no NAT record for this connection: it was not redirected (ENOENT). */
  | 'not-redirected'
  | 'system-error';

export type OriginalDstResult =
  | { ok: true; address: string; port: number; family: 4 | 6; /** false when the kernel reports the socket's own local address */ redirected: boolean }
  | { ok: false; error: OriginalDstFailure; message: string };

let loaded: { addon: Addon } | { error: string } | undefined;

/** The package root: the nearest ancestor holding binding.gyp (works from src/ and from dist/src/). */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function load(): { addon: Addon } | { error: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { error: `original destination recovery needs Linux (running on ${process.platform})` });
  const root = packageRoot();
  const file = root && join(root, 'build', 'Release', 'original_dst.node');
  if (!file || !existsSync(file)) return (loaded = { error: 'the original_dst addon is not built; run `node native/build.js` (needs g++ and node headers)' });
  try {
    return (loaded = { addon: createRequire(import.meta.url)(file) as Addon });
  } catch (err) {
    return (loaded = { error: `loading ${file} failed: ${err instanceof Error ? err.message : String(err)}` });
  }
}

/** Whether original destinations can be recovered in this process, and why not. */
export function originalDstSupport(): { ok: true } | { ok: false; reason: string } {
  const l = load();
  return 'addon' in l ? { ok: true } : { ok: false, reason: l.error };
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/**
 * Asks the kernel where an accepted connection was headed before REDIRECT. The family follows the local
 * address: an IPv4-mapped connection on a dual-stack listener is asked as IPv4 (as conntrack tracks it).
 */
export function originalDestination(socket: Socket): OriginalDstResult {
  const l = load();
  if (!('addon' in l)) return { ok: false, error: 'unavailable', message: l.error };
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return { ok: false, error: 'no-fd', message: 'socket has no file descriptor' };
  const local = socket.localAddress ?? '';
  const family: 4 | 6 = local.includes(':') && !local.startsWith('::ffff:') ? 6 : 4;
  const r = l.addon.originalDst(fd, family);
  if (typeof r === 'number') {
    const name = errnoNames.get(r) ?? `errno ${r}`;
    if (name === 'ENOENT') return { ok: false, error: 'not-redirected', message: 'no NAT record for this connection (ENOENT)' };
    return { ok: false, error: 'system-error', message: `getsockopt(SO_ORIGINAL_DST): ${name}` };
  }
  const localPlain = local.startsWith('::ffff:') ? local.slice(7) : local;
  return { ok: true, address: r.address, port: r.port, family, redirected: r.address !== localPlain || r.port !== socket.localPort };
}
