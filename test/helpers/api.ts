import { get as httpGet } from 'node:http';
import type { Resource } from '../../src/api/types.js';
import type { Problem } from '../../src/shared/errors.js';
import { resourceRef } from '../../src/api/types.js';
import { createApiServer } from '../../src/controlplane/api-server/index.js';
import type { ApiServer, ApiServerOptions } from '../../src/controlplane/api-server/index.js';
import { createMemoryStore } from '../../src/controlplane/store/index.js';
import type { Store } from '../../src/controlplane/store/index.js';

export const WRITE = 'write-token-0123456789';
export const READ = 'read-token-0123456789';

/** A stand-in for crossmesh's validation: Service ports must be 1..65535, and every problem is reported. */
export function testValidate(resources: Resource[]): Problem[] {
  const problems: Problem[] = [];
  for (const r of resources) {
    if (r.kind !== 'Service') continue;
    const ports = (r.spec as { ports?: Array<{ port?: unknown }> } | undefined)?.ports ?? [];
    ports.forEach((p, i) => {
      if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) {
        problems.push({ resource: resourceRef(r), path: `spec.ports[${i}].port`, message: 'must be 1..65535' });
      }
    });
  }
  return problems;
}

export interface TestApi {
  api: ApiServer;
  store: Store;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startApi(opts: Partial<ApiServerOptions> & { port?: number } = {}): Promise<TestApi> {
  const store = opts.store ?? createMemoryStore();
  const api = createApiServer({
    store,
    validate: testValidate,
    auth: { tokens: [{ token: WRITE, role: 'write', name: 'admin' }, { token: READ, role: 'read', name: 'reader' }] },
    ...opts,
  });
  const { url, port } = await api.listen(opts.port ?? 0);
  return { api, store, url, port, close: () => api.close() };
}

/** fetch with the write token, JSON in and out. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  /** '' sends no credentials. */
  token = WRITE,
  contentType = 'application/json',
   
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

export interface WatchStream {
  status: number;
   
  events: any[];
  /** Resolves once at least `n` events have arrived. */
  waitFor(n: number): Promise<void>;
  ended: Promise<void>;
  close(): void;
}

/** Opens a raw watch stream and collects its newline-delimited events. */
export function openWatch(base: string, path: string, token = READ): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const req = httpGet(base + path, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      const events: unknown[] = [];
      const waiters: Array<{ n: number; resolve: () => void }> = [];
      let buf = '';
      let endResolve: () => void;
      const ended = new Promise<void>((r) => (endResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) events.push(JSON.parse(line));
        }
        for (const w of waiters.splice(0)) {
          if (events.length >= w.n) w.resolve();
          else waiters.push(w);
        }
      });
      res.on('close', () => endResolve());
      resolve({
        status: res.statusCode ?? 0,
        events,
        ended,
        waitFor: (n) =>
          events.length >= n
            ? Promise.resolve()
            : new Promise<void>((r) => {
                waiters.push({ n, resolve: r });
              }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}
