import type { Resource } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { infoForKind } from '../../controlplane/api-server/index.js';
import { KubeClientError } from './errors.js';
import type { KubeTarget } from './kubeconfig.js';
import { Transport, networkError, readAll, statusError } from './transport.js';

/** A resource type: `{apiVersion: 'v1', kind: 'Service'}`. */
export interface TypeRef {
  apiVersion: string;
  kind: string;
}

/** One object: its type plus namespace (omit for cluster-scoped kinds) and name. */
export interface ObjectRef extends TypeRef {
  namespace?: string;
  name: string;
}

export interface ListOptions {
  /** Omit for all namespaces. */
  namespace?: string;
  labelSelector?: string;
}

export interface ListResponse {
  resourceVersion: string;
  items: Resource[];
}

export interface ApplyResponse {
  resourceVersion: string;
  results: Array<{ action: 'created' | 'configured' | 'unchanged'; object: Resource }>;
}

export interface DeleteResponse {
  resourceVersion: string;
  deleted: Resource[];
  /** `Kind/ns/name` of requested objects that did not exist. */
  notFound: string[];
}

export type RawWatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Resource }
  | { type: 'BOOKMARK'; object: { metadata: { resourceVersion: string } } };

export interface WatchOptions extends ListOptions {
  /** Resume after this version; omit to start with ADDED events for every current object. */
  resourceVersion?: string;
  /** Abort the stream (E_KUBE_TIMEOUT) when nothing arrives for this long; 0 disables (default 0). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called once the server accepted the watch (200). */
  onOpen?: () => void;
  /** Called for each event, in order. */
  onEvent: (e: RawWatchEvent) => void;
}

/** A small client for the resource API (ours, and the subset of a real Kubernetes API it uses). */
export interface KubeClient {
  readonly target: KubeTarget;
  /** undefined when the object does not exist. */
  get(ref: ObjectRef): Promise<Resource | undefined>;
  list(type: TypeRef, options?: ListOptions): Promise<ListResponse>;
  /** All-or-nothing apply of many objects (crossmesh API only); E_KUBE_INVALID carries every problem. */
  apply(resources: readonly Resource[], options?: { dryRun?: boolean }): Promise<ApplyResponse>;
  /** Deletes many objects in one transaction (crossmesh API only). */
  delete(refs: readonly ObjectRef[]): Promise<DeleteResponse>;
  /** Create-or-replace one object with PUT (any Kubernetes-style API). */
  put(resource: Resource): Promise<Resource>;
  /** Resolves when the server ends the stream; rejects with KubeClientError (E_KUBE_GONE: relist). */
  watch(type: TypeRef, options: WatchOptions): Promise<void>;
  close(): void;
}

export interface KubeClientOptions {
  clock?: Clock;
  /** Timeout for non-watch requests (default 30 s). */
  requestTimeoutMs?: number;
}

const enc = encodeURIComponent;

/** The REST path of a type (and optionally one object), following Kubernetes conventions. */
export function resourcePath(type: TypeRef, namespace?: string, name?: string): string {
  const slash = type.apiVersion.indexOf('/');
  const group = slash < 0 ? '' : type.apiVersion.slice(0, slash);
  const info = infoForKind(type.kind, group);
  let p = group ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  if (info.namespaced && namespace) p += `/namespaces/${enc(namespace)}`;
  p += `/${info.plural}`;
  if (name !== undefined) p += `/${enc(name)}`;
  return p;
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function createKubeClient(target: KubeTarget, options: KubeClientOptions = {}): KubeClient {
  const t = new Transport(target);
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  return {
    target,
    async get(ref) {
      try {
        return await t.request<Resource>({ method: 'GET', path: resourcePath(ref, ref.namespace, ref.name), timeoutMs });
      } catch (err) {
        if (err instanceof KubeClientError && err.code === 'E_KUBE_NOT_FOUND') return undefined;
        throw err;
      }
    },
    async list(type, opts = {}) {
      const body = await t.request<{ metadata?: { resourceVersion?: string }; items?: Resource[] }>({
        method: 'GET',
        path: resourcePath(type, opts.namespace) + query({ labelSelector: opts.labelSelector }),
        timeoutMs,
      });
      return { resourceVersion: body.metadata?.resourceVersion ?? '', items: body.items ?? [] };
    },
    async apply(resources, opts = {}) {
      const body = await t.request<{ metadata: { resourceVersion: string }; results: ApplyResponse['results'] }>({
        method: 'POST',
        path: '/apis/crossmesh.io/v1/apply' + query({ dryRun: opts.dryRun ? 'All' : undefined }),
        body: { apiVersion: 'v1', kind: 'List', items: resources },
        timeoutMs,
      });
      return { resourceVersion: body.metadata.resourceVersion, results: body.results };
    },
    async delete(refs) {
      const items = refs.map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) } }));
      const body = await t.request<{ metadata: { resourceVersion: string }; deleted: Resource[]; notFound: string[] }>({
        method: 'POST',
        path: '/apis/crossmesh.io/v1/delete',
        body: { apiVersion: 'v1', kind: 'List', items },
        timeoutMs,
      });
      return { resourceVersion: body.metadata.resourceVersion, deleted: body.deleted, notFound: body.notFound };
    },
    put(resource) {
      return t.request<Resource>({
        method: 'PUT',
        path: resourcePath(resource, resource.metadata.namespace, resource.metadata.name),
        body: resource,
        timeoutMs,
      });
    },
    watch: (type, opts) => watchStream(t, clock, type, opts),
    close: () => t.close(),
  };
}

async function watchStream(t: Transport, clock: Clock, type: TypeRef, opts: WatchOptions): Promise<void> {
  const server = t.target.server;
  const path =
    resourcePath(type, opts.namespace) +
    query({ watch: 'true', allowWatchBookmarks: 'true', resourceVersion: opts.resourceVersion, labelSelector: opts.labelSelector });
  const abort = new AbortController();
  const onOuterAbort = (): void => abort.abort();
  opts.signal?.addEventListener('abort', onOuterAbort);
  let idle: { cancel(): void } | undefined;
  let idleFired = false;
  const armIdle = (): void => {
    idle?.cancel();
    if (!opts.idleTimeoutMs) return;
    idle = clock.setTimeout(() => {
      idleFired = true;
      abort.abort();
    }, opts.idleTimeoutMs);
  };
  try {
    armIdle();
    const res = await t.open({ method: 'GET', path, signal: abort.signal });
    const status = res.statusCode ?? 0;
    if (status !== 200) throw statusError(status, await readAll(res), server);
    opts.onOpen?.();
    armIdle();
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        armIdle();
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let ev: { type?: string; object?: { code?: number; message?: string; metadata?: unknown } };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch {
            reject(new KubeClientError('E_KUBE_PROTOCOL', `${server} sent a watch line that is not JSON`));
            res.destroy();
            return;
          }
          if (ev.type === 'ERROR') {
            const code = ev.object?.code ?? 0;
            reject(statusError(code, JSON.stringify(ev.object ?? {}), server));
            res.destroy();
            return;
          }
          try {
            opts.onEvent(ev as RawWatchEvent);
          } catch (err) {
            reject(err as Error);
            res.destroy();
            return;
          }
        }
      });
      res.on('end', () => resolve());
      res.on('error', (err) => reject(err));
      res.on('aborted', () => reject(new Error('watch stream aborted')));
      res.on('close', () => resolve());
    });
    if (idleFired) throw new Error('idle');
  } catch (err) {
    if (idleFired) throw new KubeClientError('E_KUBE_TIMEOUT', `watch on ${server} received nothing for ${opts.idleTimeoutMs} ms`);
    throw networkError(err, server);
  } finally {
    idle?.cancel();
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (!abort.signal.aborted) abort.abort();
  }
}
