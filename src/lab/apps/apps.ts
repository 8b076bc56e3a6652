import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { CrossmeshError } from '../../shared/errors.js';

/**
 * The lab's sample apps. They behave like the images the multi-cluster guides use (Istio's helloworld,
 * sleep, httpbin, and the Node.js app of the single-VPC guide), so scenario output reads the same.
 */
export type SampleAppKind = 'helloworld' | 'httpbin' | 'sleep' | 'nodeapp';

export interface SampleApp {
  kind: SampleAppKind;
  /** e.g. `v1` for helloworld, `1.0` for nodeapp. */
  version: string;
  /** nodeapp's service number (`Service 2: …`). */
  serviceNumber?: number;
  /** The port the app listens on when its Deployment names none. */
  defaultPort: number;
  /** `FAIL_EVERY=N`: every Nth request (health checks aside) answers 500, to show what retries hide. */
  failEvery?: number;
}

/** Chooses the app and version from a Deployment's image name, as the image would decide in a real cluster. */
export function appForImage(image: string, env: Readonly<Record<string, string>> = {}): SampleApp | undefined {
  const app = appKindForImage(image, env);
  if (!app || app.kind === 'sleep' || env.FAIL_EVERY === undefined) return app;
  const failEvery = Number(env.FAIL_EVERY);
  if (!Number.isInteger(failEvery) || failEvery < 1) throw new CrossmeshError('E_APP_ENV', `${image}: env FAIL_EVERY: must be a whole number of at least 1 (got "${env.FAIL_EVERY}")`);
  return { ...app, failEvery };
}

function appKindForImage(image: string, env: Readonly<Record<string, string>>): SampleApp | undefined {
  const name = image.toLowerCase();
  const tag = name.includes(':') ? name.slice(name.lastIndexOf(':') + 1) : '';
  if (name.includes('helloworld')) {
    const version = env.SERVICE_VERSION ?? /-(v\d+)/.exec(name)?.[1] ?? (/^v\d+$/.test(tag) ? tag : 'v1');
    return { kind: 'helloworld', version, defaultPort: 5000 };
  }
  if (name.includes('httpbin')) return { kind: 'httpbin', version: tag || 'latest', defaultPort: 80 };
  if (name.includes('nodeapp')) {
    const serviceNumber = Number(env.SERVICE_NUMBER ?? /nodeapp(\d+)/.exec(name)?.[1] ?? 1);
    const version = env.SERVICE_VERSION ?? (/^\d+(\.\d+)*$/.test(tag) ? tag : '1.0');
    return { kind: 'nodeapp', version, serviceNumber, defaultPort: 9000 };
  }
  if (name.includes('sleep') || name.includes('curl')) return { kind: 'sleep', version: tag || 'latest', defaultPort: 0 };
  return undefined;
}

// httpbin answers 418 with a teapot; this is our own drawing of one.
const TEAPOT = [
  '',
  '    -=[ teapot ]=-',
  '',
  '       _...._',
  "     .'  _ _ `.",
  '    | ."` ^ `". _,',
  '    \\_;`"---"`|//',
  '      |       ;/',
  '      \\_     _/',
  '        `"""`',
  '',
].join('\n');

const MAX_DELAY_SECONDS = 10;

export interface AppOptions {
  app: SampleApp;
  /** The pod name, shown by helloworld as its instance. */
  podName: string;
}

/** An HTTP server for the app; sleep has none (it only runs commands). */
export function createAppServer(options: AppOptions): Server | undefined {
  const handler = handlerFor(options);
  if (!handler) return undefined;
  const every = options.app.failEvery;
  if (!every) return createServer({ keepAliveTimeout: 30_000 }, handler);
  let served = 0;
  return createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    if ((req.url ?? '/').split('?')[0] === '/health') return handler(req, res);
    served++;
    if (served % every === 0) return text(res, 500, `failing on purpose: request ${served}, FAIL_EVERY=${every}\n`);
    handler(req, res);
  });
}

function handlerFor({ app, podName }: AppOptions): ((req: IncomingMessage, res: ServerResponse) => void) | undefined {
  switch (app.kind) {
    case 'helloworld':
      return (req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (path === '/hello') return text(res, 200, `Hello version: ${app.version}, instance: ${podName}\n`);
        if (path === '/health') return text(res, 200, 'ok\n');
        return text(res, 404, 'not found\n');
      };
    case 'nodeapp':
      return (_req, res) => text(res, 200, `Service ${app.serviceNumber ?? 1}: version ${app.version}\n\n`);
    case 'httpbin':
      return httpbin;
    case 'sleep':
      return undefined;
  }
}

function httpbin(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://httpbin');
  const path = url.pathname;
  const status = /^\/status\/(\d{3})$/.exec(path);
  if (status) {
    const code = Number(status[1]);
    if (code === 418) return text(res, 418, TEAPOT, { 'x-more-info': 'http://tools.ietf.org/html/rfc2324' });
    res.writeHead(code).end();
    return;
  }
  const delay = /^\/delay\/(\d+(?:\.\d+)?)$/.exec(path);
  if (delay) {
    const seconds = Math.min(Number(delay[1]), MAX_DELAY_SECONDS);
    const timer = setTimeout(() => json(res, 200, describe(req, url)), seconds * 1000);
    res.on('close', () => clearTimeout(timer));
    return;
  }
  if (path === '/headers') return json(res, 200, { headers: headersOf(req) });
  if (path === '/get' || path === '/anything') return json(res, 200, describe(req, url));
  if (path === '/ip') return json(res, 200, { origin: req.socket.remoteAddress ?? '' });
  if (path === '/' || path === '/health') return text(res, 200, 'httpbin\n');
  return text(res, 404, 'not found\n');
}

function describe(req: IncomingMessage, url: URL): object {
  return {
    args: Object.fromEntries(url.searchParams),
    headers: headersOf(req),
    origin: req.socket.remoteAddress ?? '',
    url: `http://${req.headers.host ?? 'httpbin'}${url.pathname}${url.search}`,
  };
}

/** Header names title-cased as httpbin shows them. */
function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
    out[name] = req.rawHeaders[i + 1]!;
  }
  return out;
}

function text(res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function json(res: ServerResponse, code: number, body: object): void {
  const s = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}
