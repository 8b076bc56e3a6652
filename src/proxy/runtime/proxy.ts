/**
 * The proxy process core: identity, xDS, and the role's data path wired together. A sidecar hands the
 * full xDS state to the sidecar data path and answers DNS from NDS; an east-west gateway feeds LDS
 * server_names and EDS into the SNI passthrough gateway. Both serve admin (15000) and readiness (15021).
 */
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { CONTROL_PLANE_SERVER_NAME, hostOf } from '../../ca/index.js';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, Registry } from 'prom-client';
import { systemClock } from '../../shared/index.js';
import type { Clock, Logger } from '../../shared/index.js';
import { TYPE_URLS, createAdsClient } from '../../xds/index.js';
import type { AdsClient, AdsClientStatus, BackoffOptions, XdsNode } from '../../xds/index.js';
import { createAdminServer, buildConfigDump } from '../admin/index.js';
import type { AdminLogLevel, AdminServer } from '../admin/index.js';
import { createDnsProxy, createNameTableLookup } from '../dns/index.js';
import type { DnsProxy, MeshLookup, NameTable, UpstreamServer } from '../dns/index.js';
import { createSniPassthroughGateway } from '../gateway/index.js';
import type { GatewayTcpEvent } from '../gateway/index.js';
import { createAccessLogger, createMeshMetrics } from '../telemetry/index.js';
import type { AccessLogRecord, MeshMetrics } from '../telemetry/index.js';
import { createGatewayListeners } from './gateway-listeners.js';
import type { GatewayListeners } from './gateway-listeners.js';
import { gatewayResolver } from './gateway-routes.js';
import { createLevelLogger } from './level-logger.js';
import { buildProxyNode, istioProxyType } from './node.js';
import type { ProxyIdentityInfo } from './node.js';
import type { ClusterStatus, ProxyXdsState, SidecarCredentials, SidecarHandle, SidecarFactory, SidecarOptions, SidecarProblem } from './sidecar-contract.js';
import { createSidecar } from '../sidecar/index.js';
import { createXdsState } from './xds-state.js';
import type { TypeVersion, XdsState } from './xds-state.js';

/** Obtains and rotates the workload certificate (src/ca's createWorkloadIdentity satisfies it). */
export interface CredentialProvider {
  ready(): Promise<SidecarCredentials>;
  current(): SidecarCredentials;
  onRotate(cb: (creds: SidecarCredentials) => void): () => void;
  close(): void;
}

export interface ProxyOptions extends ProxyIdentityInfo {
  /** `host:port` of the control plane's xDS (15010 plaintext, 15012 TLS). */
  discoveryAddress: string;
  /** TLS to the xDS server trusting the mesh root; the client certificate is the workload's. */
  xdsTls?: { rootsPem: string; serverName?: string };
  /** Where the certificate comes from (closed with the proxy); without one the proxy runs without credentials. */
  credentials?: CredentialProvider;
  /** The sidecar data path; default src/proxy/sidecar's createSidecar (tests pass a fake). */
  createSidecar?: SidecarFactory;
  /** false disables admin and readiness (library use). */
  admin?: { port?: number; host?: string; statusPort?: number | false; statusHost?: string } | false;
  /** Where the sidecar's DNS proxy listens; false: no DNS listener (the name table is still followed unless dnsCapture is false). */
  dns?: { port?: number; host?: string; upstreams: readonly UpstreamServer[]; searchDomains?: readonly string[] } | false;
  /**
   * Gateway listeners bind `host` (default 0.0.0.0) on the ports of the LDS listeners (Istio's
   * AUTO_PASSTHROUGH server, 15443 by default). `port` pins one port instead, bound at start (0: a free one).
   */
  gateway?: { port?: number | undefined; host?: string; drainTimeoutMs?: number };
  /** One JSON access-log line per request/connection; default none. */
  accessLog?: (line: string) => void;
  originalDestination?: SidecarOptions['originalDestination'];
  logger?: Logger;
  logLevel?: AdminLogLevel;
  clock?: Clock;
  backoff?: BackoffOptions;
}

/** Where a started proxy listens. */
export interface ProxyAddresses {
  admin?: AddressInfo;
  status?: AddressInfo;
  dns?: AddressInfo;
  gateway?: AddressInfo;
}

/** A running proxy. It keeps serving the last accepted config while the control plane is away. */
export interface Proxy {
  readonly node: XdsNode;
  start(): Promise<ProxyAddresses>;
  /** Certificate obtained (when a provider is configured) and the first full xDS push applied. */
  isReady(): boolean;
  whenReady(): Promise<void>;
  state(): ProxyXdsState;
  nameTable(): NameTable | undefined;
  versions(): ReadonlyMap<string, TypeVersion>;
  xdsStatus(): AdsClientStatus | undefined;
  configDump(): object;
  clusterStatus(): ClusterStatus[];
  /** Stops accepting, closes xDS, the data path and admin; resolves when all are closed. */
  close(): Promise<void>;
}

export function createProxy(options: ProxyOptions): Proxy {
  const clock = options.clock ?? systemClock;
  const level = { current: options.logLevel ?? 'info' };
  const logger = createLevelLogger(options.logger, () => level.current).child({ role: options.role, pod: `${options.podName}.${options.namespace}` });
  const node = buildProxyNode(options);
  const registry = new Registry();
  const metrics: MeshMetrics = createMeshMetrics(registry);
  const accessLogger = options.accessLog ? createAccessLogger({ write: options.accessLog }) : undefined;
  const gatewayRole = options.role === 'eastwest-gateway';
  // As Istio's agent: without DNS capture there is no DNS proxy, so the name table (NDS) is not asked for.
  const dnsCapture = !gatewayRole && options.dnsCapture !== false;

  let creds: SidecarCredentials | undefined;
  let rotatedAt: number | undefined;
  let sidecar: SidecarHandle | undefined;
  let ads: AdsClient | undefined;
  let xds: XdsState | undefined;
  let admin: AdminServer | undefined;
  let dns: DnsProxy | undefined;
  /** The same DNS proxy on [::1], where ip6tables capture sends the pod's IPv6 DNS. */
  let dns6: DnsProxy | undefined;
  let gateways: GatewayListeners | undefined;
  let addresses: ProxyAddresses = {};
  let resolveSni: (sni: string) => ReturnType<ReturnType<typeof gatewayResolver>> = () => undefined;
  let lookup: MeshLookup = () => undefined;
  let unsubscribeRotation: (() => void) | undefined;
  let closed = false;
  let readyWaiters: Array<() => void> = [];
  // Listener binds the sidecar started and has not finished: not ready until the ports are open.
  let bindsPending = 0;

  const rejections = new Counter({ name: 'crossmesh_proxy_xds_rejections_total', help: 'xDS updates this proxy NACKed.', labelNames: ['type_url'], registers: [registry] });
  const accepted = new Counter({ name: 'crossmesh_proxy_xds_updates_total', help: 'xDS updates this proxy applied.', labelNames: ['type_url'], registers: [registry] });
  new Gauge({
    name: 'crossmesh_proxy_xds_connected',
    help: '1 while the xDS stream is connected.',
    registers: [registry],
    collect() {
      this.set(ads?.status().connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'crossmesh_proxy_ready',
    help: '1 once the certificate and the first full xDS push are applied.',
    registers: [registry],
    collect() {
      this.set(isReady() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'crossmesh_proxy_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the workload certificate in use.',
    registers: [registry],
    collect() {
      const notAfter = (creds as { notAfter?: Date } | undefined)?.notAfter;
      if (notAfter instanceof Date) this.set(notAfter.getTime() / 1000);
    },
  });

  function isReady(): boolean {
    return !closed && (options.credentials === undefined || creds !== undefined) && xds !== undefined && xds.initialPushApplied() && bindsPending === 0;
  }
  let announcedReady = false;
  function checkReady(): void {
    if (!isReady()) return;
    // The control plane keeps this workload's endpoint unhealthy until now (the client repeats it per stream).
    ads?.reportHealth(true);
    if (!announcedReady) {
      announcedReady = true;
      logger.info('proxy ready', { versions: Object.fromEntries([...(xds?.versions() ?? [])].map(([t, v]) => [t.slice(t.lastIndexOf('.') + 1), v.version])) });
    }
    const waiters = readyWaiters;
    readyWaiters = [];
    for (const w of waiters) w();
  }

  function logRecord(record: AccessLogRecord): void {
    accessLogger?.log(record);
  }

  function gatewayProblems(state: ProxyXdsState): SidecarProblem[] {
    // The passthrough gateway only understands SNI chains that forward to a cluster.
    const problems: SidecarProblem[] = [];
    for (const l of state.listeners.values()) {
      for (const chain of l.filter_chains ?? []) {
        const names = chain.filter_chain_match?.server_names ?? [];
        const cluster = chain.filters?.map((f) => (f.typed_config as { cluster?: string } | undefined)?.cluster).find(Boolean);
        if (names.length > 0 && !cluster) {
          problems.push({ typeUrl: TYPE_URLS.listener, name: l.name, message: `filter chain ${chain.name ?? names[0]} has server_names but no tcp_proxy cluster` });
        }
      }
    }
    return problems;
  }

  function onStateChange(typeUrl: string): void {
    accepted.inc({ type_url: typeUrl });
    if (gatewayRole && xds) resolveSni = gatewayResolver(xds.current());
    if (typeUrl === TYPE_URLS.listener && gateways && xds && options.gateway?.port === undefined) {
      const g = gateways;
      bindsPending++;
      void g.sync(xds.current().listeners).then(() => {
        bindsPending--;
        const bound = g.addresses()[0];
        if (bound) addresses.gateway = bound;
        else delete addresses.gateway;
        checkReady();
      });
    }
    if (typeUrl === TYPE_URLS.listener && sidecar) {
      bindsPending++;
      sidecar.listening().then(
        () => {
          bindsPending--;
          checkReady();
        },
        (err: unknown) => {
          bindsPending--;
          logger.error('sidecar listeners failed to bind', { error: String(err) });
          checkReady();
        },
      );
    }
    if (typeUrl === TYPE_URLS.nameTable) {
      const table = xds?.nameTable();
      lookup = table ? createNameTableLookup(table) : () => undefined;
    }
    checkReady();
  }

  function clusterStatus(): ClusterStatus[] {
    if (sidecar) return sidecar.clusterStatus();
    // The gateway has no sidecar: report EDS as received.
    const state = xds?.current();
    if (!state) return [];
    return [...state.endpoints.values()].map((cla) => ({
      name: cla.cluster_name,
      endpoints: (cla.endpoints ?? []).flatMap((group) =>
        (group.lb_endpoints ?? []).map((lb) => ({
          address: lb.endpoint?.address?.socket_address?.address ?? '',
          port: lb.endpoint?.address?.socket_address?.port_value ?? 0,
          health: lb.health_status ?? 'UNKNOWN',
          ejected: false,
          activeRequests: 0,
          locality: [group.locality?.region ?? '', group.locality?.zone ?? '', group.locality?.sub_zone ?? ''].join('/'),
          priority: group.priority ?? 0,
        })),
      ),
    }));
  }

  function configDump(): object {
    const empty: ProxyXdsState = { listeners: new Map(), clusters: new Map(), routes: new Map(), endpoints: new Map() };
    return buildConfigDump({
      state: xds?.current() ?? empty,
      versions: xds?.versions() ?? new Map(),
      typeUrls: { cluster: TYPE_URLS.cluster, endpoint: TYPE_URLS.endpoint, listener: TYPE_URLS.listener, route: TYPE_URLS.route, nameTable: TYPE_URLS.nameTable },
      node,
      ...(creds ? { credentials: { ...creds, ...(rotatedAt !== undefined ? { rotatedAt } : {}) } } : {}),
      ...(xds?.nameTable() ? { nameTable: xds.nameTable()! } : {}),
    });
  }

  function channelCredentials(): grpc.ChannelCredentials {
    if (!options.xdsTls) return grpc.credentials.createInsecure();
    return grpc.credentials.createSsl(
      Buffer.from(options.xdsTls.rootsPem),
      creds ? Buffer.from(creds.keyPem) : null,
      creds ? Buffer.from(creds.certChainPem) : null,
    );
  }

  /** TLS forbids an IP as SNI: dialling an IP, verify the name every control plane certificate carries. */
  function xdsServerName(): string | undefined {
    if (!options.xdsTls) return undefined;
    return options.xdsTls.serverName ?? (isIP(hostOf(options.discoveryAddress)) ? CONTROL_PLANE_SERVER_NAME : undefined);
  }

  function connectAds(): AdsClient {
    const client = createAdsClient({
      address: options.discoveryAddress,
      credentials: channelCredentials(),
      ...(xdsServerName() ? { channelOptions: { 'grpc.ssl_target_name_override': xdsServerName()! } } : {}),
      node,
      logger: logger.child({ component: 'xds' }),
      clock,
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    client.onStatusChange((s) => logger.info(s.connected ? 'xds connected' : 'xds disconnected; serving the last accepted config', { streams: s.streams, error: s.lastError }));
    return client;
  }

  /**
   * grpc-js fixes a channel's client certificate when the channel is made, so after a rotation the xDS
   * connection is remade with the new one (before the old one expires); the state in force is kept.
   */
  function reconnectWithNewCertificate(): void {
    if (!options.xdsTls || !ads || !xds || closed) return;
    const old = ads;
    ads = connectAds();
    if (announcedReady) ads.reportHealth(true);
    xds.rebind(ads);
    old.close();
    logger.info('xds reconnected with the rotated certificate');
  }

  async function start(): Promise<ProxyAddresses> {
    addresses = {};
    try {
      if (options.admin !== false) {
        admin = createAdminServer({
          ...(options.admin ?? {}),
          configDump,
          clusters: clusterStatus,
          registry,
          ready: isReady,
          logLevel: () => level.current,
          setLogLevel: (l) => {
            level.current = l;
            logger.info('log level changed', { level: l });
          },
        });
        Object.assign(addresses, await admin.listen());
      }
      if (options.credentials) {
        const provider = options.credentials;
        unsubscribeRotation = provider.onRotate((next) => {
          creds = next;
          rotatedAt = clock.now();
          logger.info('certificate rotated', { spiffeId: next.spiffeId });
          sidecar?.credentialsChanged();
          reconnectWithNewCertificate();
        });
        // TLS to xDS presents the workload certificate, so it must exist first; plaintext xDS need not wait.
        const first = provider.ready().then((c) => {
          if (creds === undefined) {
            creds = c;
            rotatedAt = clock.now();
            sidecar?.credentialsChanged();
          }
          checkReady();
        });
        first.catch((err: unknown) => {
          if (!closed) logger.error('could not obtain a certificate', { error: String(err) });
        });
        if (options.xdsTls) await first;
      }
      if (!gatewayRole) {
        const factory = options.createSidecar ?? createSidecar;
        sidecar = factory({
          credentials: () => creds,
          identity: { cluster: options.cluster, namespace: options.namespace, workload: options.podName, network: options.network },
          accessLog: logRecord,
          metrics,
          logger: logger.child({ component: 'sidecar' }),
          clock,
          ...(options.originalDestination ? { originalDestination: options.originalDestination } : {}),
        });
      } else {
        const onTcp = (e: GatewayTcpEvent): void => {
          const labels = { reporter: 'destination', destination_service: e.sni?.split('_.').pop(), destination_cluster: options.cluster, response_flags: e.responseFlags };
          if (e.phase === 'opened') metrics.tcpOpened(labels);
          else if (e.phase === 'closed') metrics.tcpClosed(labels);
          else if (e.sent > 0 || e.received > 0) metrics.tcpBytes(labels, { sent: e.sent, received: e.received });
        };
        gateways = createGatewayListeners({
          pinnedPort: options.gateway?.port,
          logger: logger.child({ component: 'gateway' }),
          create: (port) =>
            createSniPassthroughGateway({
              port,
              host: options.gateway?.host ?? '0.0.0.0',
              resolve: (target) => resolveSni(target.sni),
              onLog: logRecord,
              onTcp,
              logger: logger.child({ component: 'gateway' }),
              clock,
              ...(options.gateway?.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.gateway.drainTimeoutMs } : {}),
            }),
        });
        if (options.gateway?.port !== undefined) {
          await gateways.sync(new Map());
          addresses.gateway = gateways.addresses()[0];
        }
      }
      if (dnsCapture && options.dns) {
        const suffix = options.domainSuffix ?? 'cluster.local';
        const dnsOptions = {
          port: options.dns.port ?? 15053,
          lookup: (name: string, type: Parameters<MeshLookup>[1]) => lookup(name, type),
          searchDomains: options.dns.searchDomains ?? [`${options.namespace}.svc.${suffix}`, `svc.${suffix}`, suffix],
          upstreams: options.dns.upstreams,
          logger: logger.child({ component: 'dns' }),
          clock,
        };
        dns = createDnsProxy({ ...dnsOptions, host: options.dns.host ?? '127.0.0.1' });
        addresses.dns = await dns.listen();
        if (options.dns.host === undefined) {
          dns6 = createDnsProxy({ ...dnsOptions, host: '::1' });
          // Without IPv6 (EADDRNOTAVAIL, EAFNOSUPPORT) there is no IPv6 DNS to capture either.
          await dns6.listen().catch((err: NodeJS.ErrnoException) => {
            logger.info('DNS proxy not listening on [::1]', { error: err.code ?? err.message });
            dns6 = undefined;
          });
        }
      }
      ads = connectAds();
      xds = createXdsState({
        ads,
        routes: !gatewayRole,
        nameTable: dnsCapture,
        validate: (state, typeUrl) => {
          const problems = sidecar ? sidecar.apply(state).problems : gatewayProblems(state);
          if (problems.some((p) => p.typeUrl === typeUrl)) rejections.inc({ type_url: typeUrl });
          return problems;
        },
        restore: (state) => {
          sidecar?.apply(state);
        },
        onChange: onStateChange,
        logger,
        now: () => clock.now(),
      });
      logger.info('proxy started', { node: node.id, type: istioProxyType(options.role), discovery: options.discoveryAddress });
      return addresses;
    } catch (err) {
      await close();
      throw err;
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    unsubscribeRotation?.();
    options.credentials?.close();
    ads?.close();
    await Promise.allSettled([gateways?.close(), dns?.close(), dns6?.close(), sidecar?.close(), admin?.close()]);
    logger.info('proxy stopped');
  }

  return {
    node,
    start,
    isReady,
    whenReady: () =>
      isReady()
        ? Promise.resolve()
        : new Promise((resolve) => {
            readyWaiters.push(resolve);
          }),
    state: () => xds?.current() ?? { listeners: new Map(), clusters: new Map(), routes: new Map(), endpoints: new Map() },
    nameTable: () => xds?.nameTable(),
    versions: () => xds?.versions() ?? new Map(),
    xdsStatus: () => ads?.status(),
    configDump,
    clusterStatus,
    close,
  };
}

