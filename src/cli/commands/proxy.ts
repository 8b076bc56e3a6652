import { readFileSync, createWriteStream } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { UsageError, createLogger } from '../../shared/index.js';
import { createWorkloadIdentity } from '../../ca/index.js';
import { createProxy, installCapture, parseLocalityText, PROXY_GID } from '../../proxy/runtime/index.js';
import type { Capture, ProxyOptions } from '../../proxy/runtime/index.js';
import { parseUpstream } from '../../proxy/dns/index.js';
import { originalDestination } from '../../proxy/capture/index.js';
import { createLineBatcher } from '../../proxy/telemetry/index.js';
import type { CliContext } from '../context.js';

export interface ProxyFlags {
  role?: string;
  discovery?: string;
  cluster?: string;
  network?: string;
  namespace?: string;
  serviceAccount: string;
  labels?: string;
  ip?: string;
  pod?: string;
  appPort?: string[];
  token?: string;
  tokenFile?: string;
  caAddress?: string;
  caRoot?: string;
  trustDomain: string;
  locality?: string;
  interception: string;
  appHost?: string;
  adminPort: string;
  adminHost: string;
  statusPort: string;
  dnsPort: string;
  dnsUpstream?: string[];
  dnsCapture: string;
  gatewayPort?: string;
  accessLog?: string;
  capture?: boolean;
  xdsTls?: boolean;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

function hostPort(flag: string, value: string | undefined, problems: string[]): { host: string; port: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    problems.push(`${flag}: expected HOST:PORT (got "${value}")`);
    return undefined;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function portFlag(flag: string, value: string, problems: string[], allowZero = true): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535 || (!allowZero && n === 0)) problems.push(`${flag}: expected a port 0..65535 (got "${value}")`);
  return n;
}

/** `k=v,k2=v2` → labels; problems name the bad item. */
export function parseLabels(text: string | undefined, problems: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq) : '';
    if (!key || !/^([a-z0-9.-]+\/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(key)) problems.push(`--labels: "${item}" is not key=value`);
    else labels[key] = item.slice(eq + 1);
  }
  return labels;
}

function defaultIp(): string {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

/** Nameservers from resolv.conf text (the DNS proxy's upstreams when --dns-upstream is not given). */
export function resolvConfNameservers(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined && net.isIP(s.replace(/%.*$/, '')) !== 0);
}

/** Checks every flag and returns the runtime options plus what the command must set up around it. */
export function proxyOptionsFromFlags(f: ProxyFlags, cwd: string, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')) {
  const problems: string[] = [];
  const role = f.role;
  if (role === undefined) problems.push('--role: required (sidecar or eastwest-gateway)');
  else if (role !== 'sidecar' && role !== 'eastwest-gateway') problems.push(`--role: must be sidecar or eastwest-gateway (got "${role}")`);
  if (f.discovery === undefined) problems.push('--discovery: required (HOST:PORT of the control plane, 15010 plaintext or 15012 TLS)');
  const discovery = hostPort('--discovery', f.discovery, problems);
  for (const [flag, v] of [['--cluster', f.cluster], ['--network', f.network], ['--namespace', f.namespace]] as const) {
    if (!v) problems.push(`${flag}: required`);
  }
  if (f.namespace && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(f.namespace)) problems.push(`--namespace: "${f.namespace}" is not a DNS label`);
  const labels = parseLabels(f.labels, problems);
  if (f.ip !== undefined && net.isIP(f.ip) === 0) problems.push(`--ip: "${f.ip}" is not an IP address`);
  const appPorts = (f.appPort ?? []).map((p) => portFlag('--app-port', p, problems, false));
  if (f.token !== undefined && f.tokenFile !== undefined) problems.push('--token and --token-file: give one, not both');
  const caAddress = hostPort('--ca-address', f.caAddress, problems);
  const interception = f.interception.toUpperCase();
  if (interception !== 'REDIRECT' && interception !== 'NONE') problems.push(`--interception: must be redirect or none (got "${f.interception}")`);
  if (f.capture && interception !== 'REDIRECT') problems.push('--capture: needs --interception redirect');
  if (f.capture && role === 'eastwest-gateway') problems.push('--capture: only a sidecar captures traffic');
  const adminPort = portFlag('--admin-port', f.adminPort, problems);
  const statusPort = portFlag('--status-port', f.statusPort, problems);
  const dnsPort = portFlag('--dns-port', f.dnsPort, problems);
  // Without the flag the gateway listens where the control plane's listeners say (15443 by default).
  const gatewayPort = f.gatewayPort === undefined ? undefined : portFlag('--gateway-port', f.gatewayPort, problems);
  if (f.dnsCapture !== 'true' && f.dnsCapture !== 'false') problems.push(`--dns-capture: must be true or false (got "${f.dnsCapture}")`);
  const dnsCapture = f.dnsCapture !== 'false';
  if (f.locality !== undefined && !/^[^/]+(\/[^/]*){0,2}$/.test(f.locality)) problems.push(`--locality: expected region/zone/subzone (got "${f.locality}")`);
  const upstreams = (f.dnsUpstream ?? []).map((u) => {
    const parsed = parseUpstream(u);
    if (net.isIP(parsed.address) === 0 || !((parsed.port ?? 53) > 0 && (parsed.port ?? 53) < 65536)) problems.push(`--dns-upstream: "${u}" is not IP[:PORT]`);
    return parsed;
  });
  let token: string | undefined = f.token;
  if (f.tokenFile !== undefined) {
    try {
      token = readFile(resolvePath(cwd, f.tokenFile)).trim();
    } catch (err) {
      problems.push(`--token-file: cannot read ${f.tokenFile}: ${(err as Error).message}`);
    }
  }
  let caRootPem: string | undefined;
  if (f.caRoot !== undefined) {
    try {
      caRootPem = readFile(resolvePath(cwd, f.caRoot));
      if (!caRootPem.includes('-----BEGIN CERTIFICATE-----')) problems.push(`--ca-root: ${f.caRoot} holds no PEM certificate`);
    } catch (err) {
      problems.push(`--ca-root: cannot read ${f.caRoot}: ${(err as Error).message}`);
    }
  }
  const xdsTls = f.xdsTls === true || discovery?.port === 15012;
  if ((token !== undefined || xdsTls) && f.caRoot === undefined) problems.push('--ca-root: required with a join token or TLS to the control plane (the mesh root that verifies it)');
  if (xdsTls && token === undefined) problems.push('--token or --token-file: TLS to the control plane presents the workload certificate, which needs a join token');
  if (problems.length) throw new UsageError(`proxy: ${problems.length === 1 ? problems[0] : '\n  ' + problems.join('\n  ')}`);

  const options: ProxyOptions = {
    role: role as ProxyOptions['role'],
    discoveryAddress: f.discovery!,
    ip: f.ip ?? defaultIp(),
    podName: f.pod ?? os.hostname(),
    namespace: f.namespace!,
    serviceAccount: f.serviceAccount,
    cluster: f.cluster!,
    network: f.network!,
    labels,
    appPorts,
    interception: interception as 'REDIRECT' | 'NONE',
    ...(role === 'sidecar' ? { dnsCapture } : {}),
    ...(f.locality ? { locality: parseLocalityText(f.locality) } : {}),
    ...(f.appHost ? { appHost: f.appHost } : {}),
    // Without capture the proxy shares the host with others (the loopback lab): every listener binds the
    // workload's own address. With capture it owns its network namespace, so all addresses are its own.
    admin: { port: adminPort, host: f.adminHost, statusPort, ...(interception === 'NONE' ? { statusHost: f.ip ?? f.adminHost } : {}) },
    gateway: { port: gatewayPort, ...(interception === 'NONE' && f.ip ? { host: f.ip } : {}) },
    ...(xdsTls && caRootPem ? { xdsTls: { rootsPem: caRootPem } } : {}),
  };
  return {
    options,
    dns: { port: dnsPort, upstreams, ...(interception === 'NONE' && f.ip ? { host: f.ip } : {}) },
    token,
    caRootPem,
    caAddress: caAddress ? `${caAddress.host}:${caAddress.port}` : `${discovery!.host}:15012`,
    spiffeId: `spiffe://${f.trustDomain}/ns/${f.namespace}/sa/${f.serviceAccount}`,
  };
}

/** `crossmesh proxy …`: runs a sidecar or east-west gateway until SIGTERM/SIGINT, then drains and exits 0. */
export function registerProxy(program: Command, ctx: CliContext): void {
  program
    .command('proxy')
    .description('run the mesh proxy: a sidecar or an east-west gateway, configured over xDS by the control plane')
    .option('--role <role>', 'sidecar or eastwest-gateway')
    .option('--discovery <host:port>', 'control plane xDS address (15010 plaintext, 15012 TLS)')
    .option('--cluster <id>', 'the cluster this proxy runs in (CLUSTER_ID)')
    .option('--network <name>', 'the network this proxy is on')
    .option('--namespace <ns>', 'the workload namespace')
    .option('--service-account <sa>', 'the workload service account', 'default')
    .option('--labels <k=v,...>', 'workload labels')
    .option('--ip <addr>', 'the workload IP (default: first non-loopback IPv4)')
    .option('--pod <name>', 'workload instance name (default: hostname)')
    .option('--app-port <port>', 'a port the app listens on; repeatable', collect)
    .option('--token <jwt>', 'join token from `crossmesh token create`')
    .option('--token-file <file>', 'file holding the join token')
    .option('--ca-address <host:port>', 'mesh CA (default: the discovery host on 15012)')
    .option('--ca-root <file>', 'mesh root certificate (PEM) that verifies the CA and the control plane')
    .option('--trust-domain <td>', 'SPIFFE trust domain', 'cluster.local')
    .option('--locality <region/zone/subzone>', 'locality of this workload')
    .option('--interception <mode>', 'redirect (iptables capture) or none (explicit)', 'redirect')
    .option('--app-host <host>', 'where the sidecar reaches its app', undefined)
    .option('--admin-port <port>', 'admin API port', '15000')
    .option('--admin-host <addr>', 'admin API bind address', '127.0.0.1')
    .option('--status-port <port>', 'readiness port (/healthz/ready)', '15021')
    .option('--dns-port <port>', 'DNS proxy port (sidecar)', '15053')
    .option('--dns-upstream <ip[:port]>', 'resolver for non-mesh names; repeatable (default: /etc/resolv.conf)', collect)
    .option('--dns-capture <true|false>', 'answer the pod\'s DNS from the mesh name table (Istio\'s ISTIO_META_DNS_CAPTURE); false: no DNS proxy, port 53 not captured', 'true')
    .option('--gateway-port <port>', 'east-west gateway: listen on this port instead of the LDS listeners\' ports (15443 by default)')
    .option('--access-log <file|off>', 'append JSON access log lines here (default: stdout); off: no access log (Istio\'s empty accessLogFile), metrics stay on')
    .option('--capture', 'install iptables capture in this network namespace (root); removed on exit')
    .option('--xds-tls', 'TLS to the control plane even on a port other than 15012')
    .action(async (flags: ProxyFlags) => {
      const parsed = proxyOptionsFromFlags(flags, ctx.cwd);
      const logger = createLogger({ level: 'debug', json: ctx.env.logJson });
      if (parsed.options.dnsCapture !== false && parsed.dns.upstreams.length === 0) {
        try {
          parsed.dns.upstreams.push(...resolvConfNameservers(readFileSync('/etc/resolv.conf', 'utf8')).map(parseUpstream));
        } catch {
          logger.warn('no /etc/resolv.conf; non-mesh DNS names will fail');
        }
      }
      const logOff = flags.accessLog === 'off';
      const stream = flags.accessLog && !logOff ? createWriteStream(resolvePath(ctx.cwd, flags.accessLog), { flags: 'a' }) : undefined;
      // One write per event-loop turn, not per request; flushed below before the stream ends.
      const accessLines = createLineBatcher({ sink: stream ? (chunk) => void stream.write(chunk) : (chunk) => ctx.stdout(chunk) });
      const options: ProxyOptions = {
        ...parsed.options,
        logger,
        logLevel: (['debug', 'info', 'warn', 'error'].includes(ctx.env.logLevel) ? ctx.env.logLevel : 'info') as ProxyOptions['logLevel'],
        ...(logOff ? {} : { accessLog: (line: string) => accessLines.write(line) }),
        dns: parsed.options.role === 'sidecar' && parsed.options.dnsCapture !== false ? { port: parsed.dns.port, upstreams: parsed.dns.upstreams, ...(parsed.dns.host ? { host: parsed.dns.host } : {}) } : false,
        originalDestination: (socket) => {
          const r = originalDestination(socket);
          return r.ok && r.redirected ? { address: r.address, port: r.port } : undefined;
        },
      };
      // Capture first: every socket this process opens from here on (CA, xDS) carries the exempt gid.
      let capture: Capture | undefined;
      if (flags.capture) {
        capture = await installCapture({ proxyGid: PROXY_GID, dnsPort: parsed.dns.port, captureDns: parsed.options.dnsCapture !== false, logger });
        // Our own sockets carry gid 1337 and so escape capture; uid 0 stays, to remove the rules on exit.
        process.setgid?.(PROXY_GID);
      }
      if (parsed.token !== undefined) {
        options.credentials = createWorkloadIdentity({ caAddress: parsed.caAddress, caTrustPem: parsed.caRootPem!, identity: parsed.spiffeId, token: parsed.token, logger });
      } else {
        logger.warn('no join token: running without a workload certificate (mTLS is unavailable)');
      }
      const proxy = createProxy(options);
      try {
        const addresses = await proxy.start();
        logger.info('listening', Object.fromEntries(Object.entries(addresses).map(([k, a]) => [k, `${a.address}:${a.port}`])));
        await ctx.interrupted();
        logger.info('draining');
      } finally {
        try {
          await proxy.close();
          await capture?.remove();
        } finally {
          // The drain above logs the last requests; they must reach the file before it is closed.
          accessLines.flush();
          await new Promise<void>((r) => (stream ? stream.end(r) : r()));
        }
      }
    });
}
