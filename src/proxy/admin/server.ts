/**
 * The proxy's admin endpoint (Envoy's 15000) and its readiness endpoint (Istio's 15021 `/healthz/ready`).
 * The server only renders what its providers return; it holds no proxy state of its own.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { createPrometheusHandler } from '../telemetry/index.js';
import type { ClusterStatus } from '../runtime/sidecar-contract.js';
import { dumpJson } from './config-dump.js';
import { renderClustersJson, renderClustersText } from './clusters.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type AdminLogLevel = (typeof LOG_LEVELS)[number];

export interface AdminProviders {
  configDump(): object;
  clusters(): ClusterStatus[];
  registry: Registry;
  ready(): boolean;
  logLevel(): AdminLogLevel;
  setLogLevel(level: AdminLogLevel): void;
}

export interface AdminServerOptions extends AdminProviders {
  /** Admin port; default 15000, 0 picks one. */
  port?: number;
  /** Default 127.0.0.1: the admin API changes the proxy (log levels), so it stays local unless asked. */
  host?: string;
  /** Readiness port (`/healthz/ready`); default 15021, 0 picks one, false disables. */
  statusPort?: number | false;
  /** Default 0.0.0.0: kubelet-style probes come from outside. */
  statusHost?: string;
}

/** Running admin and status servers. */
export interface AdminServer {
  listen(): Promise<{ admin: AddressInfo; status?: AddressInfo }>;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, code: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function createAdminServer(options: AdminServerOptions): AdminServer {
  const prometheus = createPrometheusHandler(options.registry);
  const readyBody = (): [number, string] => (options.ready() ? [200, 'LIVE\n'] : [503, 'PRE_INITIALIZING\n']);

  const admin = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    try {
      if (prometheus(req, res)) return;
      switch (url.pathname) {
        case '/config_dump':
          return send(res, 200, dumpJson(options.configDump()) + '\n', 'application/json');
        case '/clusters': {
          const clusters = options.clusters();
          if (url.searchParams.get('format') === 'json') return send(res, 200, JSON.stringify(renderClustersJson(clusters), null, 2) + '\n', 'application/json');
          return send(res, 200, renderClustersText(clusters));
        }
        case '/ready':
          return send(res, ...readyBody());
        case '/logging': {
          const level = url.searchParams.get('level');
          if (level !== null) {
            if (req.method !== 'POST') return send(res, 405, 'use POST to change the log level\n');
            if (!(LOG_LEVELS as readonly string[]).includes(level)) return send(res, 400, `unknown level "${level}"; one of ${LOG_LEVELS.join(', ')}\n`);
            options.setLogLevel(level as AdminLogLevel);
          }
          return send(res, 200, `active loggers:\n  crossmesh: ${options.logLevel()}\n`);
        }
        case '/':
          return send(res, 200, ['/config_dump', '/clusters', '/clusters?format=json', '/stats/prometheus', '/ready', '/logging'].join('\n') + '\n');
        default:
          return send(res, 404, `no admin endpoint ${url.pathname}\n`);
      }
    } catch (err) {
      send(res, 500, `admin handler failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  });
  const status =
    options.statusPort === false
      ? undefined
      : http.createServer((req, res) => {
          const path = (req.url ?? '/').split('?')[0];
          if (path === '/healthz/ready') return send(res, ...readyBody());
          send(res, 404, 'not found\n');
        });

  const listen = (server: http.Server, port: number, host: string): Promise<AddressInfo> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  const close = (server: http.Server | undefined): Promise<void> =>
    new Promise((resolve) => {
      if (!server?.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    async listen() {
      const a = await listen(admin, options.port ?? 15000, options.host ?? '127.0.0.1');
      if (!status) return { admin: a };
      try {
        return { admin: a, status: await listen(status, typeof options.statusPort === 'number' ? options.statusPort : 15021, options.statusHost ?? '0.0.0.0') };
      } catch (err) {
        await close(admin);
        throw err;
      }
    },
    async close() {
      await Promise.all([close(admin), close(status)]);
    },
  };
}
