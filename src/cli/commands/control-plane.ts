import type { Command } from 'commander';
import { resolve } from 'node:path';
import { parseDuration } from '../../api/index.js';
import { startControlPlane } from '../../controlplane/index.js';
import { createLogger } from '../../shared/log.js';
import { UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';

function port(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${name}: must be a port number 0..65535 (got "${v}")`);
    return n;
  };
}

/** Go/Istio duration syntax ("500ms", "30s", "5m"), as the config files use, in milliseconds. */
function duration(name: string) {
  return (v: string): number => {
    try {
      return parseDuration(v);
    } catch {
      throw new UsageError(`${name}: must be a duration like 500ms, 30s, 5m (got "${v}")`);
    }
  };
}

export function registerControlPlane(program: Command, ctx: CliContext): void {
  program
    .command('control-plane')
    .description('run one cluster\'s control plane in universal mode (store, resource API, CA, xDS)')
    .requiredOption('--cluster <name>', 'this cluster\'s id (topology.istio.io/cluster)')
    .requiredOption('--network <name>', 'the network this cluster\'s workloads are on')
    .option('--locality <region/zone/subzone>', 'locality of this cluster\'s workloads')
    .option('--data <dir>', 'data directory (store, admin token)', '.crossmesh/control-plane')
    .option('--cacerts <dir>', 'Istio plug-in CA files (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem)')
    .option('--mesh <file>', 'a file with a MeshConfig resource')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--advertise <addresses>', 'comma-separated IPs/names other hosts use to reach this control plane (TLS SANs)')
    .option('--xds-port <port>', 'plaintext xDS', port('--xds-port'), 15010)
    .option('--xds-tls-port <port>', 'xDS and CA over TLS', port('--xds-tls-port'), 15012)
    .option('--admin-port <port>', '/ready, /metrics, /debug', port('--admin-port'), 15014)
    .option('--api-port <port>', 'resource API (HTTPS)', port('--api-port'), 6443)
    .option('--remote-stale <duration>', 'how long an unreachable remote cluster keeps its endpoints', duration('--remote-stale'), 300_000)
    .option('--ready-timeout <duration>', 'longest wait for remote clusters before reporting ready', duration('--ready-timeout'), 10_000)
    .option('--registration-grace <duration>', 'how long a disconnected proxy stays registered', duration('--registration-grace'), 30_000)
    .action(async (opts) => {
      const logger = createLogger({ level: ctx.env.logLevel, json: ctx.env.logJson });
      const advertised = String(opts.advertise ?? '').split(',').map((s: string) => s.trim()).filter(Boolean);
      const cp = await startControlPlane({
        cluster: opts.cluster,
        network: opts.network,
        ...(opts.locality ? { locality: opts.locality } : {}),
        dataDir: resolve(ctx.cwd, opts.data),
        ...(opts.cacerts ? { cacertsDir: resolve(ctx.cwd, opts.cacerts) } : {}),
        ...(opts.mesh ? { meshFile: resolve(ctx.cwd, opts.mesh) } : {}),
        host: opts.host,
        advertise: {
          ipAddresses: advertised.filter((a: string) => /^[\d.]+$|:/.test(a)),
          dnsNames: advertised.filter((a: string) => !/^[\d.]+$|:/.test(a)),
        },
        ports: { xds: opts.xdsPort, xdsTls: opts.xdsTlsPort, admin: opts.adminPort, api: opts.apiPort },
        remoteStaleMs: opts.remoteStale,
        readyTimeoutMs: opts.readyTimeout,
        registrationGraceMs: opts.registrationGrace,
        logger,
      });
      const a = cp.addresses();
      ctx.stdout(`control plane ${opts.cluster} (network ${opts.network}) up: xds ${a.xds}, xds+ca ${a.xdsTls}, api ${a.api}, admin ${a.admin}\n`);
      await ctx.interrupted();
      logger.info('stopping');
      await cp.stop();
    });
}
