/** Fixtures for the proxy runtime tests: a small two-cluster mesh, snapshots from generateForProxy, a fake sidecar. */
import http from 'node:http';
import type { Resource } from '../src/api/types.js';
import type { GatewaySpec } from '../src/api/index.js';
import { allocateVips, buildClusterRegistry } from '../src/registry/index.js';
import { aggregate } from '../src/controlplane/aggregate/index.js';
import type { MeshService } from '../src/controlplane/aggregate/index.js';
import { createSnapshot } from '../src/controlplane/cache/index.js';
import type { Snapshot } from '../src/controlplane/cache/index.js';
import { generateForProxy, proxyInfoFromNode, proxyGroupKey } from '../src/controlplane/translate/index.js';
import type { ProxyResources } from '../src/controlplane/translate/index.js';
import { TYPE_URLS, encodeResource } from '../src/xds/index.js';
import type { XdsNode } from '../src/xds/index.js';
import type { ClusterStatus, ProxyXdsState, SidecarHandle, SidecarOptions, SidecarProblem } from '../src/proxy/runtime/index.js';

export const svc = (ns: string, name: string, port: number, target: number, portName = 'http'): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: portName, port, targetPort: target }] },
});
export const we = (ns: string, name: string, address: string, labels: Record<string, string>, sa = 'default'): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: ns },
  spec: { address, labels, serviceAccount: sa },
});
export const crossNetworkGateway: Resource<GatewaySpec> = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'cross-network-gateway', namespace: 'istio-system' },
  spec: { selector: { istio: 'eastwestgateway' }, servers: [{ port: { number: 15443, name: 'tls', protocol: 'TLS' }, tls: { mode: 'AUTO_PASSTHROUGH' }, hosts: ['*.local'] }] },
};
export const mesh = { trustDomain: 'cluster.local', domainSuffix: 'cluster.local' };

/**
 * ack-1 (network1) runs sleep; ack-2 (network2) runs httpbin on two loopback addresses at `httpbinPort`
 * (so a gateway in ack-2 can really reach them) and `db` exists nowhere but ack-2.
 */
export function buildMesh(httpbinPort: number, extra: { ack1?: Resource[] } = {}) {
  const ack1 = buildClusterRegistry({ clusterId: 'ack-1', network: 'network1', locality: 'region-1/zone-a' }, [
    svc('default', 'sleep', 80, 80),
    we('default', 'sleep-1', '127.0.0.1', { app: 'sleep' }, 'sleep'),
    ...(extra.ack1 ?? []),
  ]);
  const ack2 = buildClusterRegistry({ clusterId: 'ack-2', network: 'network2', locality: 'region-2/zone-b' }, [
    svc('default', 'httpbin', 8000, httpbinPort),
    we('default', 'httpbin-1', '127.0.0.2', { app: 'httpbin', version: 'v1' }, 'httpbin'),
    we('default', 'httpbin-2', '127.0.0.3', { app: 'httpbin', version: 'v1' }, 'httpbin'),
    svc('sample', 'db', 3306, 3306, 'tcp-mysql'),
  ]);
  const view = aggregate([ack1, ack2], { localCluster: 'ack-1' });
  const vips = allocateVips([...view.services.keys()]);
  const vipOf = (s: MeshService) => vips.get(s.hostname);
  return { view, vips, vipOf };
}

/** What the control plane would serve this node (interception and app host read from its metadata), packed, plus its group key. */
export function snapshotFor(node: XdsNode, mesh_: Pick<ReturnType<typeof buildMesh>, 'view' | 'vipOf'>): { group: string; snapshot: Snapshot; resources: ProxyResources } {
  const proxy = proxyInfoFromNode(node);
  const resources = generateForProxy({
    view: mesh_.view,
    config: { virtualServices: [], destinationRules: [], gateways: [crossNetworkGateway] },
    mesh,
    proxy,
    vipOf: mesh_.vipOf,
  });
  return { group: proxyGroupKey(proxy), snapshot: toSnapshot(resources), resources };
}

export function toSnapshot(r: ProxyResources): Snapshot {
  const pack = (typeUrl: string, m: Map<string, object>) => [...m.values()].map((v) => encodeResource(typeUrl, v));
  return createSnapshot({
    [TYPE_URLS.cluster]: pack(TYPE_URLS.cluster, r.clusters),
    [TYPE_URLS.endpoint]: pack(TYPE_URLS.endpoint, r.endpoints),
    [TYPE_URLS.listener]: pack(TYPE_URLS.listener, r.listeners),
    [TYPE_URLS.route]: pack(TYPE_URLS.route, r.routes),
    ...(r.nameTable ? { [TYPE_URLS.nameTable]: [encodeResource(TYPE_URLS.nameTable, r.nameTable)] } : {}),
  });
}

/** A stand-in for the sidecar data path: records what it is given; rejects clusters named `…reject…`, throws on `…explode…`. */
export interface FakeSidecar extends SidecarHandle {
  applied: ProxyXdsState[];
  credentialChanges: number;
  options: SidecarOptions | undefined;
}

export function fakeSidecarFactory(): { factory: (o: SidecarOptions) => SidecarHandle; sidecar: FakeSidecar } {
  const sidecar: FakeSidecar = {
    applied: [],
    credentialChanges: 0,
    options: undefined,
    apply(state) {
      this.applied.push(state);
      const problems: SidecarProblem[] = [];
      for (const name of state.clusters.keys()) {
        if (name.includes('explode')) throw new Error('boom');
        if (name.includes('reject')) problems.push({ typeUrl: TYPE_URLS.cluster, name, message: 'unsupported lb_policy MAGLEV' });
      }
      return { problems };
    },
    credentialsChanged() {
      this.credentialChanges++;
    },
    clusterStatus(): ClusterStatus[] {
      const last = this.applied.at(-1);
      return last
        ? [...last.endpoints.values()].map((cla) => ({
            name: cla.cluster_name,
            endpoints: (cla.endpoints ?? []).flatMap((g) =>
              (g.lb_endpoints ?? []).map((lb) => ({
                address: lb.endpoint!.address!.socket_address!.address,
                port: lb.endpoint!.address!.socket_address!.port_value ?? 0,
                health: lb.health_status ?? 'HEALTHY',
                ejected: false,
                activeRequests: 0,
                locality: `${g.locality?.region ?? ''}/${g.locality?.zone ?? ''}/`,
                priority: g.priority ?? 0,
              })),
            ),
          }))
        : [];
    },
    listening: async () => new Map(),
    async close() {},
  };
  return {
    sidecar,
    factory: (o) => {
      sidecar.options = o;
      return sidecar;
    },
  };
}

export function httpRequest(url: string, method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}
