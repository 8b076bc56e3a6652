/**
 * Test fixtures for the sidecar: a one-cluster mesh model, the control plane's own generateForProxy to
 * produce each proxy's Envoy resources (packed into protobuf Anys and unpacked again, so the sidecar sees
 * exactly what travels over ADS), and small HTTP backends on 127.x addresses.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource } from '../src/api/types.js';
import type { DestinationRuleSpec, VirtualServiceSpec } from '../src/api/index.js';
import { aggregate } from '../src/controlplane/aggregate/index.js';
import { generateForProxy, proxyInfoFromNode } from '../src/controlplane/translate/index.js';
import { allocateVips, buildClusterRegistry } from '../src/registry/index.js';
import { TYPE_URLS, decodeResource, encodeResource } from '../src/xds/index.js';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from '../src/xds/index.js';
import type { ProxyXdsState } from '../src/proxy/sidecar/index.js';
import type { AccessLogRecord } from '../src/proxy/telemetry/index.js';

export const svc = (ns: string, name: string, port: number, target: number, portName = 'http'): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: portName, port, targetPort: target }] },
});

export const workload = (
  ns: string,
  name: string,
  address: string,
  labels: Record<string, string>,
  opts: { sa?: string; locality?: string; plaintext?: boolean } = {},
): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: ns },
  spec: {
    address,
    labels: { ...labels, ...(opts.plaintext ? { 'security.istio.io/tlsMode': 'disabled' } : {}) },
    serviceAccount: opts.sa ?? 'default',
    ...(opts.locality ? { locality: opts.locality } : {}),
  },
});

export const virtualService = (ns: string, name: string, spec: VirtualServiceSpec): Resource<VirtualServiceSpec> => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: ns },
  spec,
});

export const destinationRule = (ns: string, name: string, spec: DestinationRuleSpec): Resource<DestinationRuleSpec> => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name, namespace: ns },
  spec,
});

export interface ProxySpec {
  ip: string;
  pod: string;
  namespace: string;
  serviceAccount?: string;
  labels: Record<string, string>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  interception?: 'REDIRECT' | 'NONE';
  appHost?: string;
}

function roundTrip<T>(typeUrl: string, value: object): T {
  return decodeResource<T>(encodeResource(typeUrl, value)).value;
}

/** What the control plane would send this proxy, decoded as the proxy's xDS client decodes it. */
export function stateFor(
  resources: readonly Resource[],
  proxy: ProxySpec,
  config: { virtualServices?: Array<Resource<VirtualServiceSpec>>; destinationRules?: Array<Resource<DestinationRuleSpec>> } = {},
): ProxyXdsState {
  const registry = buildClusterRegistry({ clusterId: 'c1', network: 'n1', locality: 'r1/z1' }, resources);
  const view = aggregate([registry], { localCluster: 'c1' });
  const vips = allocateVips([...view.services.keys()]);
  const info = proxyInfoFromNode({
    id: `sidecar~${proxy.ip}~${proxy.pod}.${proxy.namespace}~${proxy.namespace}.svc.cluster.local`,
    metadata: {
      CLUSTER_ID: 'c1',
      NETWORK: 'n1',
      NAMESPACE: proxy.namespace,
      LABELS: proxy.labels,
      SERVICE_ACCOUNT: proxy.serviceAccount ?? 'default',
      INTERCEPTION_MODE: proxy.interception ?? 'NONE',
      ...(proxy.appHost ? { APP_HOST: proxy.appHost } : {}),
    },
    locality: proxy.locality ?? { region: 'r1', zone: 'z1' },
  });
  const out = generateForProxy({
    view,
    config: { virtualServices: config.virtualServices ?? [], destinationRules: config.destinationRules ?? [], gateways: [] },
    mesh: { trustDomain: 'cluster.local', domainSuffix: 'cluster.local' },
    proxy: info,
    vipOf: (s) => vips.get(s.hostname),
  });
  const map = <T>(typeUrl: string, m: Map<string, object>): Map<string, T> => new Map([...m].map(([k, v]) => [k, roundTrip<T>(typeUrl, v)]));
  return {
    listeners: map<Listener>(TYPE_URLS.listener, out.listeners),
    clusters: map<Cluster>(TYPE_URLS.cluster, out.clusters),
    routes: map<RouteConfiguration>(TYPE_URLS.route, out.routes),
    endpoints: map<ClusterLoadAssignment>(TYPE_URLS.endpoint, out.endpoints),
  };
}

/**
 * Moves the capture listeners (virtualOutbound, virtualInbound) of a REDIRECT-mode state onto a test
 * address, without their generated `[::]` address, which would bind the host's real capture ports.
 */
export function pinCaptureListeners(state: ProxyXdsState, address: string, ports: { outbound: number; inbound: number }): void {
  const listeners = state.listeners as Map<string, Listener>;
  for (const name of ['virtualOutbound', 'virtualInbound']) {
    const port = name === 'virtualOutbound' ? ports.outbound : ports.inbound;
    listeners.set(name, { ...listeners.get(name)!, address: { socket_address: { address, port_value: port } }, additional_addresses: [] });
  }
}

/** The VIP the mesh gives a hostname (same allocator the control plane uses). */
export function vipOf(resources: readonly Resource[], hostname: string): string {
  const registry = buildClusterRegistry({ clusterId: 'c1', network: 'n1', locality: 'r1/z1' }, resources);
  const view = aggregate([registry], { localCluster: 'c1' });
  return allocateVips([...view.services.keys()]).get(hostname)!;
}

export interface Backend {
  server: http.Server;
  requests: number;
  close(): Promise<void>;
}

/** An HTTP app on host:port; `handler` defaults to answering its name. */
export async function startBackend(host: string, port: number, name: string, handler?: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void): Promise<Backend> {
  const b: Backend = {
    server: http.createServer((req, res) => {
      b.requests++;
      if (handler) return handler(req, res, b.requests);
      req.resume();
      res.setHeader('x-backend', name);
      res.end(name);
    }),
    requests: 0,
    close: () =>
      new Promise((resolve) => {
        b.server.closeAllConnections();
        b.server.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve, reject) => {
    b.server.once('error', reject);
    b.server.listen(port, host, () => resolve());
  });
  return b;
}

export function addressOf(server: http.Server): AddressInfo {
  return server.address() as AddressInfo;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request through an explicit proxy (absolute-form URL) or straight to host:port (origin form). */
export function request(
  via: { host: string; port: number },
  url: string,
  opts: { headers?: Record<string, string>; agent?: http.Agent; method?: string; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: via.host, port: via.port, path: url, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Collects access-log records. */
export function recorder(): { records: AccessLogRecord[]; log: (r: AccessLogRecord) => void } {
  const records: AccessLogRecord[] = [];
  return { records, log: (r) => records.push(r) };
}
