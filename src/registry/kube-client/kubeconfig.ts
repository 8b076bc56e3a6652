import { parse } from 'yaml';
import { KubeconfigError } from './errors.js';

/** Where and how to reach one API server. */
export interface KubeTarget {
  /** `https://host:port` (or http for local tests). */
  server: string;
  /** PEM CA bundle to trust instead of the system roots. */
  ca?: string;
  token?: string;
  /** PEM client certificate and key. */
  clientCert?: string;
  clientKey?: string;
  insecureSkipTlsVerify?: boolean;
  /** SNI / name to verify, when it differs from the server URL's host. */
  tlsServerName?: string;
  /** The context's namespace, if it names one. */
  namespace?: string;
}

export interface KubeconfigOptions {
  /** Use this context instead of current-context. */
  context?: string;
  /** Replace the cluster's server URL (private-cluster / port-forward case); CA and credentials stay. */
  server?: string;
}

type Named<T> = { name?: unknown } & Record<string, T>;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function pick(list: unknown, field: string, inner: string, name: string): Record<string, unknown> {
  if (!Array.isArray(list)) throw new KubeconfigError(`${field}: missing (a list of {name, ${inner}})`);
  const found = (list as Named<unknown>[]).find((e) => isRecord(e) && e.name === name);
  if (!found) throw new KubeconfigError(`${field}: no entry named ${JSON.stringify(name)}`);
  const body = found[inner];
  if (!isRecord(body)) throw new KubeconfigError(`${field}[${JSON.stringify(name)}].${inner}: missing`);
  return body;
}

function b64(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/=\s]*$/.test(v)) throw new KubeconfigError(`${field}: must be base64`);
  return Buffer.from(v, 'base64').toString('utf8');
}

/** Reads a kubeconfig (YAML or JSON text, or an already parsed object) into the target of one context. */
export function parseKubeconfig(source: string | unknown, options: KubeconfigOptions = {}): KubeTarget {
  let doc: unknown = source;
  if (typeof source === 'string') {
    try {
      doc = parse(source);
    } catch (err) {
      throw new KubeconfigError(`not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (!isRecord(doc)) throw new KubeconfigError('must be a mapping with clusters, users, contexts');
  const ctxName = options.context ?? doc['current-context'];
  if (typeof ctxName !== 'string' || ctxName === '') throw new KubeconfigError('current-context: missing (and no context chosen)');
  const context = pick(doc.contexts, 'contexts', 'context', ctxName);
  if (typeof context.cluster !== 'string') throw new KubeconfigError(`contexts[${JSON.stringify(ctxName)}].context.cluster: missing`);
  const cluster = pick(doc.clusters, 'clusters', 'cluster', context.cluster);
  const cref = `clusters[${JSON.stringify(context.cluster)}].cluster`;
  const server = options.server ?? cluster.server;
  if (typeof server !== 'string' || !/^https?:\/\//.test(server)) throw new KubeconfigError(`${cref}.server: must be an http(s) URL`);
  if (cluster['certificate-authority'] !== undefined && cluster['certificate-authority-data'] === undefined) {
    throw new KubeconfigError(`${cref}.certificate-authority: file references are not supported; embed certificate-authority-data`);
  }
  const target: KubeTarget = { server: server.replace(/\/+$/, '') };
  const ca = b64(cluster['certificate-authority-data'], `${cref}.certificate-authority-data`);
  if (ca) target.ca = ca;
  if (cluster['insecure-skip-tls-verify'] === true) target.insecureSkipTlsVerify = true;
  if (typeof cluster['tls-server-name'] === 'string') target.tlsServerName = cluster['tls-server-name'];
  if (typeof context.namespace === 'string') target.namespace = context.namespace;
  if (typeof context.user === 'string') {
    const user = pick(doc.users, 'users', 'user', context.user);
    const uref = `users[${JSON.stringify(context.user)}].user`;
    if (user.token !== undefined) {
      if (typeof user.token !== 'string' || user.token === '') throw new KubeconfigError(`${uref}.token: must be a non-empty string`);
      target.token = user.token;
    }
    const cert = b64(user['client-certificate-data'], `${uref}.client-certificate-data`);
    const key = b64(user['client-key-data'], `${uref}.client-key-data`);
    if ((cert === undefined) !== (key === undefined)) throw new KubeconfigError(`${uref}: client-certificate-data and client-key-data go together`);
    if (cert && key) {
      target.clientCert = cert;
      target.clientKey = key;
    }
  }
  return target;
}

/** A one-context kubeconfig for `target`: what create-remote-secret embeds. */
export function buildKubeconfig(target: KubeTarget, name: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: {
          server: target.server,
          ...(target.ca ? { 'certificate-authority-data': Buffer.from(target.ca).toString('base64') } : {}),
          ...(target.tlsServerName ? { 'tls-server-name': target.tlsServerName } : {}),
        },
      },
    ],
    users: [{ name, user: target.token ? { token: target.token } : {} }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
    preferences: {},
  };
}
