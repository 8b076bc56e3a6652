import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { silentLogger } from '../../shared/log.js';
import type { Store } from '../store/index.js';
import { authenticate } from './auth.js';
import type { ApiAuth } from './auth.js';
import type { HandlerContext, Validate } from './context.js';
import { handleCrossmesh } from './crossmesh.js';
import { groupVersions, knownKinds } from './kinds.js';
import { parsePath } from './paths.js';
import { handleResource, toHttpError } from './resources.js';
import { HttpError, sendJson, sendStatus } from './status.js';

export interface ApiServerTls {
  /** PEM server certificate (chain) and key. */
  cert: string;
  key: string;
  /** PEM CA bundle that client certificates must chain to; enables client-certificate authentication. */
  clientCa?: string;
}

export interface ApiServerOptions {
  store: Store;
  validate: Validate;
  auth: ApiAuth;
  tls?: ApiServerTls;
  logger?: Logger;
  clock?: Clock;
  /** How often watch streams that asked for bookmarks get one (default 15 s). */
  bookmarkIntervalMs?: number;
  /** Largest request body accepted (default 8 MiB). */
  maxBodyBytes?: number;
}

/** A running resource API. listen() may be called once; close() ends open watches and stops accepting. */
export interface ApiServer {
  listen(port?: number, host?: string): Promise<{ port: number; url: string }>;
  /** `http(s)://host:port` once listening. */
  url(): string;
  close(): Promise<void>;
  /** The node server, for embedding into another listener. */
  readonly server: Server;
}

const writeMethods = new Set(['PUT', 'POST', 'DELETE', 'PATCH']);

/**
 * A Kubernetes-style resource API over the store: core and grouped resource paths with list, get, watch, PUT, POST
 * and DELETE, plus `/apis/crossmesh.io/v1/apply|delete` for all-or-nothing multi-object changes. Every error is a
 * Kubernetes Status object; no request, however malformed, can crash the server.
 */
export function createApiServer(options: ApiServerOptions): ApiServer {
  const logger = options.logger ?? silentLogger;
  const ctx: HandlerContext = {
    store: options.store,
    validate: options.validate,
    logger,
    clock: options.clock ?? systemClock,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 15_000,
    maxBodyBytes: options.maxBodyBytes ?? 8 * 1024 * 1024,
    watches: new Set(),
  };
  const tls = options.tls;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = ctx.clock.now();
    res.on('finish', () => logger.debug('api: request', { method: req.method, url: req.url, status: res.statusCode, ms: ctx.clock.now() - started }));
    handle(ctx, options.auth, req, res).catch((err: unknown) => {
      const e = toHttpError(err);
      if (e.code >= 500) logger.error('api: request failed', { method: req.method, url: req.url, error: e.message });
      if (!res.headersSent) sendStatus(res, e);
      else res.destroy();
    });
  };
  const server: Server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, handler)
    : createHttpServer(handler);
  server.on('clientError', (err, socket) => {
    logger.debug('api: bad client connection', { error: err.message });
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  let url = '';
  return {
    server,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
          url = `${tls ? 'https' : 'http'}://${h}:${addr.port}`;
          logger.info('api: listening', { url });
          resolve({ port: addr.port, url });
        });
      });
    },
    url: () => url,
    close() {
      for (const res of ctx.watches) res.end();
      ctx.watches.clear();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function handle(ctx: HandlerContext, auth: ApiAuth, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let url: URL;
  try {
    // Prefixing the origin (rather than passing it as base) keeps `//x` a path instead of a host.
    url = new URL(`http://localhost${(req.url ?? '/').startsWith('/') ? '' : '/'}${req.url ?? ''}`);
  } catch {
    throw new HttpError(400, 'BadRequest', `malformed request URL ${JSON.stringify(req.url)}`);
  }
  const route = parsePath(url.pathname);
  if (route.type === 'healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  const who = authenticate(req, auth);
  if (!who) throw new HttpError(401, 'Unauthorized', 'Unauthorized: a valid bearer token (or client certificate) is required');
  const method = req.method ?? 'GET';
  if (writeMethods.has(method) && who.role !== 'write') {
    throw new HttpError(403, 'Forbidden', `${who.name} is read-only: ${method} ${url.pathname} is forbidden`);
  }
  switch (route.type) {
    case 'version':
      return sendJson(res, 200, { major: '1', minor: '30', gitVersion: 'v1.30.0-crossmesh', platform: `${process.platform}/${process.arch}` });
    case 'apiVersions':
      return sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    case 'apiGroups':
      return sendJson(res, 200, apiGroups());
    case 'apiResources':
      return sendJson(res, 200, apiResources(route.group, route.version));
    case 'crossmesh':
      return handleCrossmesh(ctx, req, res, route.action, url.searchParams);
    case 'resource':
      return handleResource(ctx, req, res, route.path, url.searchParams);
  }
}

function apiGroups(): unknown {
  const groups = [...new Set(knownKinds().map((k) => k.group).filter((g) => g !== ''))];
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups.map((name) => {
      const versions = groupVersions(name).map((version) => ({ groupVersion: `${name}/${version}`, version }));
      return { name, versions, preferredVersion: versions[0] };
    }),
  };
}

function apiResources(group: string, version: string): unknown {
  const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: knownKinds()
      .filter((k) => k.group === group)
      .map((k) => ({
        name: k.plural,
        singularName: k.kind.toLowerCase(),
        namespaced: k.namespaced,
        kind: k.kind,
        verbs,
        ...(k.shortNames ? { shortNames: k.shortNames } : {}),
      })),
  };
}
