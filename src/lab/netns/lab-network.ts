import type { CommandRunner } from './ip.js';
import { systemRunner } from './ip.js';

/**
 * The lab's simulated hosts in `netns` isolation. Every host (pod, gateway, control plane) is a network
 * namespace. Every mesh network is a namespace holding a bridge (the network's switch) and acting as its
 * router, with NAT toward a shared "internet" segment. Hosts on different networks cannot reach each
 * other's private addresses; only hosts given a public address (east-west gateways, control planes) are
 * reachable across networks. Nothing is created in the root namespace, so the machine's own networking
 * is never touched.
 */
export interface LabNetworkOptions {
  /** Prefix of every namespace this lab creates; `destroy` removes everything with it. Keep it short. */
  prefix: string;
  runner?: CommandRunner;
  /**
   * Give the root namespace an address on the internet segment (198.51.100.254), so commands run on the
   * machine itself reach the public addresses of control planes and gateways. The veth goes away with the
   * lab's internet namespace.
   */
  hostAccess?: boolean;
  /** First three octets of the internet segment's /24 (default 198.51.100, TEST-NET-2); tests pick their own. */
  internetPrefix?: string;
}

export interface NetworkInfo {
  name: string;
  namespace: string;
  subnet: string;
  router: string;
  /** The router's address on the internet segment (the network's NAT address). */
  publicAddress: string;
}

export interface HostInfo {
  name: string;
  network: string;
  namespace: string;
  address: string;
  publicAddress?: string;
}

export interface LabNetwork {
  readonly prefix: string;
  /** The root namespace's address on the internet segment, with `hostAccess`. */
  readonly hostAddress: string | undefined;
  addNetwork(name: string): Promise<NetworkInfo>;
  /** A host on `network`; `publicAddress` also attaches it to the internet segment. */
  addHost(name: string, network: string, options?: { publicAddress?: boolean }): Promise<HostInfo>;
  removeHost(name: string): Promise<void>;
  networks(): NetworkInfo[];
  hosts(): HostInfo[];
  /** Removes every namespace with this lab's prefix, including ones left by a crashed run. */
  destroy(): Promise<void>;
}

const BRIDGE = 'br0';
const UPLINK = 'inet0';

export async function createLabNetwork(options: LabNetworkOptions): Promise<LabNetwork> {
  const runner = options.runner ?? systemRunner;
  const prefix = options.prefix;
  const ip = (...args: string[]) => runner.run('ip', args);
  const inNs = (ns: string, file: string, ...args: string[]) => runner.run('ip', ['netns', 'exec', ns, file, ...args]);
  const networks = new Map<string, NetworkInfo & { index: number; nextHost: number }>();
  const hosts = new Map<string, HostInfo & { veth: string }>();
  let nextPublic = 100;
  let nextVeth = 0;

  const internet = options.internetPrefix ?? '198.51.100';
  const internetNs = `${prefix}-internet`;
  await addNamespace(internetNs);
  await ip('-n', internetNs, 'link', 'add', BRIDGE, 'type', 'bridge');
  await ip('-n', internetNs, 'link', 'set', BRIDGE, 'up');
  let hostAddress: string | undefined;
  if (options.hostAccess) {
    const hostVeth = `h${prefix}`.slice(0, 15);
    const peer = `hp${prefix}`.slice(0, 15);
    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer, 'netns', internetNs);
    await ip('-n', internetNs, 'link', 'set', peer, 'master', BRIDGE);
    await ip('-n', internetNs, 'link', 'set', peer, 'up');
    hostAddress = `${internet}.254`;
    await ip('addr', 'add', `${hostAddress}/24`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
  }

  async function addNamespace(ns: string): Promise<void> {
    await ip('netns', 'add', ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** A veth whose one end is `inside` in `hostNs` and other end is plugged into `switchNs`'s bridge. */
  async function plug(hostNs: string, inside: string, switchNs: string, cidr: string): Promise<string> {
    const veth = `v${prefix.slice(-4)}${(nextVeth++).toString(36)}`.slice(0, 15);
    await ip('link', 'add', inside, 'netns', hostNs, 'type', 'veth', 'peer', 'name', veth, 'netns', switchNs);
    await ip('-n', switchNs, 'link', 'set', veth, 'master', BRIDGE);
    await ip('-n', switchNs, 'link', 'set', veth, 'up');
    await ip('-n', hostNs, 'addr', 'add', cidr, 'dev', inside);
    await ip('-n', hostNs, 'link', 'set', inside, 'up');
    return veth;
  }

  return {
    prefix,
    hostAddress,
    async addNetwork(name) {
      const index = networks.size + 1;
      const namespace = `${prefix}-net${index}`;
      const subnetBase = `10.${100 + index}`;
      const info = {
        name,
        namespace,
        index,
        nextHost: 10,
        subnet: `${subnetBase}.0.0/16`,
        router: `${subnetBase}.0.1`,
        publicAddress: `${internet}.${index}`,
      };
      await addNamespace(namespace);
      await ip('-n', namespace, 'link', 'add', BRIDGE, 'type', 'bridge');
      await ip('-n', namespace, 'addr', 'add', `${info.router}/16`, 'dev', BRIDGE);
      await ip('-n', namespace, 'link', 'set', BRIDGE, 'up');
      await plug(namespace, UPLINK, internetNs, `${info.publicAddress}/24`);
      await inNs(namespace, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
      // Private addresses leave the network only as its NAT address, like a VPC behind a NAT gateway;
      // nothing routes 10.x of one network into another.
      await inNs(namespace, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', UPLINK, '-j', 'MASQUERADE');
      networks.set(name, info);
      return publicNetwork(info);
    },
    async addHost(name, network, hostOptions = {}) {
      const net = networks.get(network);
      if (!net) throw new Error(`lab network: unknown network ${network}`);
      const n = net.nextHost++;
      const address = `10.${100 + net.index}.${n >> 8}.${n & 255}`;
      const namespace = `${prefix}-${name}`.slice(0, 200);
      await addNamespace(namespace);
      const veth = await plug(namespace, 'eth0', net.namespace, `${address}/16`);
      await ip('-n', namespace, 'route', 'add', 'default', 'via', net.router);
      const info: HostInfo & { veth: string } = { name, network, namespace, address, veth };
      if (hostOptions.publicAddress) {
        info.publicAddress = `${internet}.${nextPublic++}`;
        await plug(namespace, 'eth1', internetNs, `${info.publicAddress}/24`);
      }
      hosts.set(name, info);
      return publicHost(info);
    },
    async removeHost(name) {
      const h = hosts.get(name);
      if (!h) return;
      hosts.delete(name);
      await ip('netns', 'del', h.namespace).catch(() => undefined);
    },
    networks: () => [...networks.values()].map(publicNetwork),
    hosts: () => [...hosts.values()].map(publicHost),
    async destroy() {
      hosts.clear();
      networks.clear();
      await destroyLabNamespaces(prefix, runner);
    },
  };
}

function publicNetwork(n: NetworkInfo): NetworkInfo {
  return { name: n.name, namespace: n.namespace, subnet: n.subnet, router: n.router, publicAddress: n.publicAddress };
}

function publicHost(h: HostInfo): HostInfo {
  return { name: h.name, network: h.network, namespace: h.namespace, address: h.address, ...(h.publicAddress ? { publicAddress: h.publicAddress } : {}) };
}

/** Deletes every namespace whose name starts with `prefix-`; veths and bridges inside go with them. */
export async function destroyLabNamespaces(prefix: string, runner: CommandRunner = systemRunner): Promise<string[]> {
  const listing = await runner.run('ip', ['netns', 'list']).catch(() => '');
  const names = listing
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter((n) => n.startsWith(`${prefix}-`));
  for (const ns of names) {
    // Processes still inside keep a namespace alive; delete anyway so the name is free again.
    await runner.run('ip', ['netns', 'pids', ns]).then(
      (pids) => Promise.all(pids.split('\n').filter(Boolean).map((pid) => runner.run('kill', ['-9', pid]).catch(() => ''))),
      () => [],
    );
    await runner.run('ip', ['netns', 'del', ns]).catch(() => '');
  }
  return names;
}
