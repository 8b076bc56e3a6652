import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** `read`: GET/list/watch. `write`: also create, replace, apply, delete. */
export type Role = 'read' | 'write';

export interface TokenEntry {
  token: string;
  role: Role;
  /** Who the token belongs to, for logs (e.g. `remote-secret/cluster-2`). */
  name?: string;
}

export interface ApiAuth {
  /** Accepted bearer tokens; a function is called per request so tokens can be added and revoked at runtime. */
  tokens?: readonly TokenEntry[] | (() => readonly TokenEntry[]);
  /** Role of a client whose certificate verified against `tls.clientCa`; unset = certificates grant nothing. */
  clientCertRole?: Role;
  /** Role of unauthenticated requests; unset = 401. Meant for throwaway labs only. */
  anonymous?: Role;
}

export interface Identity {
  name: string;
  role: Role;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Comparing fixed-size digests in constant time keeps token checks from leaking prefixes through timing. */
function sameToken(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** `undefined`: no acceptable credential (401). */
export function authenticate(req: IncomingMessage, auth: ApiAuth): Identity | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return undefined;
    const tokens = typeof auth.tokens === 'function' ? auth.tokens() : (auth.tokens ?? []);
    let found: TokenEntry | undefined;
    for (const t of tokens) if (sameToken(t.token, m[1]!) && !found) found = t;
    return found ? { name: found.name ?? 'token', role: found.role } : undefined;
  }
  const sock = req.socket as Partial<TLSSocket>;
  if (auth.clientCertRole && sock.encrypted && sock.authorized) {
    const cert = sock.getPeerCertificate?.();
    const cn = cert?.subject?.CN;
    return { name: `cert:${Array.isArray(cn) ? cn.join(',') : (cn ?? 'unknown')}`, role: auth.clientCertRole };
  }
  return auth.anonymous ? { name: 'anonymous', role: auth.anonymous } : undefined;
}
