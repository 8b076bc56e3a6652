import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackAddresses as addr } from './addresses.js';
import type { LabNetwork } from './netns/index.js';
import { createLabNetwork, destroyLabNamespaces } from './netns/index.js';
import type { ClusterPlan, GatewayPlan, LabPlan, PodPlan } from './plan.js';

/** Where one lab process lives and how others reach it. */
export interface Host {
  /** Address the process binds to. */
  bind: string;
  /** Address hosts of the same network use (and, for pods, the workload IP). */
  address: string;
  /** Address hosts of other networks and the machine itself use. */
  publicAddress: string;
  /** Network namespace to run in (netns isolation). */
  netns?: string;
}

export interface PodHost extends Host {
  /** Where the pod's app listens, as its sidecar reaches it. */
  appHost: string;
  appBind: string;
}

/**
 * The two isolation modes behind one interface. Loopback: every host is an address on lo. Netns: every
 * host is a network namespace on its network's bridge; control planes and gateways also get a public
 * address on a shared segment the machine itself can reach; pods resolve names through their sidecar.
 */
export interface LabHosts {
  readonly isolation: 'loopback' | 'netns';
  controlPlane(c: ClusterPlan): Promise<Host>;
  gateway(c: ClusterPlan, g: GatewayPlan): Promise<Host>;
  pod(c: ClusterPlan, p: PodPlan): Promise<PodHost>;
  destroy(): Promise<void>;
}

export function loopbackHosts(): LabHosts {
  return {
    isolation: 'loopback',
    controlPlane: async (c) => {
      const a = addr.controlPlane(c);
      return { bind: a, address: a, publicAddress: a };
    },
    gateway: async (c, g) => {
      const a = addr.gateway(c, g);
      return { bind: a, address: a, publicAddress: a };
    },
    pod: async (c, p) => {
      const a = addr.pod(c, p);
      const app = addr.app(c, p);
      return { bind: a, address: a, publicAddress: a, appHost: app, appBind: app };
    },
    destroy: async () => undefined,
  };
}

/** Namespaces are named `<prefix>-<cluster>-<host>`; resolv.conf files live in /etc/netns/<namespace>. */
export async function netnsHosts(plan: LabPlan, prefix: string): Promise<LabHosts> {
  const net: LabNetwork = await createLabNetwork({ prefix, hostAccess: true });
  try {
    for (const n of plan.networks) await net.addNetwork(n);
  } catch (err) {
    await net.destroy();
    throw err;
  }
  const resolvConf = (namespace: string, nameserver: string, searchNamespace: string) => {
    const dir = join('/etc/netns', namespace);
    mkdirSync(dir, { recursive: true });
    // Any nameserver works: the sidecar captures port 53; the search path is Kubernetes'.
    writeFileSync(join(dir, 'resolv.conf'), `nameserver ${nameserver}\nsearch ${searchNamespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`);
  };
  return {
    isolation: 'netns',
    async controlPlane(c) {
      const h = await net.addHost(`${c.name}-cp`, c.network, { publicAddress: true });
      return { bind: '0.0.0.0', address: h.address, publicAddress: h.publicAddress!, netns: h.namespace };
    },
    async gateway(c, g) {
      const h = await net.addHost(`${c.name}-${g.name}`, c.network, { publicAddress: true });
      return { bind: '0.0.0.0', address: h.address, publicAddress: h.publicAddress!, netns: h.namespace };
    },
    async pod(c, p) {
      const h = await net.addHost(`${c.name}-${p.name}`, c.network);
      const router = net.networks().find((n) => n.name === c.network)!.router;
      resolvConf(h.namespace, router, p.namespace);
      return { bind: '0.0.0.0', address: h.address, publicAddress: h.address, netns: h.namespace, appHost: '127.0.0.1', appBind: '0.0.0.0' };
    },
    async destroy() {
      for (const h of net.hosts()) rmSync(join('/etc/netns', h.namespace), { recursive: true, force: true });
      await net.destroy();
    },
  };
}

/** Removes a lab's namespaces and resolv.conf files from outside the process that made them (`crossmesh down`). */
export async function destroyNetnsLab(prefix: string): Promise<void> {
  const removed = await destroyLabNamespaces(prefix);
  for (const ns of removed) rmSync(join('/etc/netns', ns), { recursive: true, force: true });
}
