import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Problem } from '../../shared/errors.js';
import { KubeClientError } from './errors.js';
import type { KubeTarget } from './kubeconfig.js';

const tlsCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);
const netCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** Turns a socket-level failure into a KubeClientError whose message says what to check. */
export function networkError(err: unknown, server: string): KubeClientError {
  if (err instanceof KubeClientError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? '';
  if (tlsCodes.has(code) || /certificate|SSL|TLS/i.test(e.message ?? '')) {
    return new KubeClientError('E_KUBE_TLS', `TLS failure talking to ${server}: ${code ? code + ': ' : ''}${e.message} (is the CA data right for this server, and does it speak HTTPS?)`, { cause: err });
  }
  if (netCodes.has(code)) return new KubeClientError('E_KUBE_UNREACHABLE', `${server} is unreachable: ${e.message}`, { cause: err });
  if (e.name === 'AbortError') return new KubeClientError('E_KUBE_ABORTED', `request to ${server} was cancelled`, { cause: err });
  return new KubeClientError('E_KUBE_UNREACHABLE', `request to ${server} failed: ${e.message}`, { cause: err });
}

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ field?: string; message?: string; resource?: string }> };
}

/** Turns a non-2xx response into a KubeClientError, keeping Kubernetes Status causes as Problems. */
export function statusError(status: number, body: string, server: string): KubeClientError {
  let parsed: StatusBody = {};
  try {
    parsed = JSON.parse(body) as StatusBody;
  } catch {
    parsed = { message: body.slice(0, 300) };
  }
  const msg = parsed.message ?? `HTTP ${status}`;
  switch (status) {
    case 401:
      return new KubeClientError('E_KUBE_UNAUTHORIZED', `${server} rejected the credentials (401 Unauthorized): check the token in the kubeconfig`, { status });
    case 403:
      return new KubeClientError('E_KUBE_FORBIDDEN', `${server} refused the request (403 Forbidden): ${msg}`, { status });
    case 404:
      return new KubeClientError('E_KUBE_NOT_FOUND', msg, { status });
    case 409:
      return new KubeClientError('E_KUBE_CONFLICT', msg, { status });
    case 410:
      return new KubeClientError('E_KUBE_GONE', msg, { status });
    case 422: {
      const problems: Problem[] = (parsed.details?.causes ?? []).map((c) => ({
        ...(c.resource ? { resource: c.resource } : {}),
        ...(c.field ? { path: c.field } : {}),
        message: c.message ?? 'invalid',
      }));
      return new KubeClientError('E_KUBE_INVALID', msg, { status, problems });
    }
    default:
      return new KubeClientError('E_KUBE_HTTP', `${server}: HTTP ${status}${parsed.reason ? ' ' + parsed.reason : ''}: ${msg}`, { status });
  }
}

export interface RequestOptions {
  method: string;
  /** Path and query, e.g. `/api/v1/namespaces/a/services?labelSelector=x`. */
  path: string;
  body?: unknown;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** One HTTP(S) connection pool bound to a target, adding the credentials to every request. */
export class Transport {
  private readonly agent: HttpAgent;
  private readonly isHttps: boolean;

  constructor(readonly target: KubeTarget) {
    this.isHttps = target.server.startsWith('https:');
    this.agent = this.isHttps
      ? new HttpsAgent({
          keepAlive: true,
          ...(target.ca ? { ca: target.ca } : {}),
          ...(target.clientCert ? { cert: target.clientCert, key: target.clientKey } : {}),
          ...(target.tlsServerName ? { servername: target.tlsServerName } : {}),
          rejectUnauthorized: !target.insecureSkipTlsVerify,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** Starts a request and resolves with the response once headers arrive (non-2xx included). */
  open(opts: RequestOptions): Promise<IncomingMessage> {
    const url = new URL(this.target.server + opts.path);
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const req = (this.isHttps ? httpsRequest : httpRequest)(url, { method: opts.method, headers, agent: this.agent, signal: opts.signal });
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) {
        timer = setTimeout(() => req.destroy(new KubeClientError('E_KUBE_TIMEOUT', `${this.target.server} did not answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
        timer.unref();
      }
      req.on('response', (res) => {
        if (timer) clearTimeout(timer);
        resolve(res);
      });
      req.on('error', (err) => {
        if (timer) clearTimeout(timer);
        reject(networkError(err, this.target.server));
      });
      req.end(payload);
    });
  }

  /** A whole request: the parsed JSON body on 2xx, KubeClientError otherwise. */
  async request<T>(opts: RequestOptions): Promise<T> {
    const res = await this.open({ timeoutMs: 30_000, ...opts });
    let text: string;
    try {
      text = await readAll(res);
    } catch (err) {
      throw networkError(err, this.target.server);
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw statusError(status, text, this.target.server);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeClientError('E_KUBE_PROTOCOL', `${this.target.server} answered ${opts.method} ${opts.path} with something that is not JSON`);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

export function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
  });
}
