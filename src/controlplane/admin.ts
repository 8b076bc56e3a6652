import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';

/** The control plane's monitoring port (15014): /ready, /metrics, /debug/<view> as JSON. */
export interface AdminServer {
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

export function createAdminServer(options: {
  metrics: Registry;
  ready: () => { ready: boolean; reasons: string[] };
  debug: Record<string, () => unknown>;
  logger: Logger;
}): AdminServer {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const json = (code: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(code, { 'content-type': 'application/json' }).end(text);
    };
    try {
      if (path === '/ready' || path === '/healthz/ready') {
        const r = options.ready();
        json(r.ready ? 200 : 503, r);
      } else if (path === '/metrics') {
        options.metrics.metrics().then(
          (text) => res.writeHead(200, { 'content-type': options.metrics.contentType }).end(text),
          (err) => json(500, { error: errorMessage(err) }),
        );
      } else if (path === '/debug' || path === '/debug/') {
        json(200, { views: Object.keys(options.debug).map((k) => `/debug/${k}`) });
      } else if (path.startsWith('/debug/') && options.debug[path.slice(7)]) {
        json(200, options.debug[path.slice(7)]!());
      } else {
        json(404, { error: `no such path ${path}; try /ready, /metrics, /debug` });
      }
    } catch (err) {
      options.logger.error('admin request failed', { path, error: errorMessage(err) });
      json(500, { error: errorMessage(err) });
    }
  });
  return {
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
