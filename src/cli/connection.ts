import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { KubeClient, KubeTarget } from '../registry/kube-client/index.js';
import { createKubeClient, parseKubeconfig } from '../registry/kube-client/index.js';
import { UsageError } from '../shared/errors.js';
import type { CliContext } from './context.js';

export interface ConnectionOptions {
  server?: string;
  token?: string;
  caFile?: string;
  kubeconfig?: string;
  insecureSkipTlsVerify?: boolean;
}

/** The options every command that talks to a control plane's resource API takes. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'resource API of the control plane (env CROSSMESH_SERVER)')
    .option('--token <token>', 'bearer token (env CROSSMESH_TOKEN; the control plane writes its admin token to <data>/admin-token)')
    .option('--ca-file <file>', 'CA bundle the server certificate chains to, e.g. root-cert.pem (env CROSSMESH_CA_FILE)')
    .option('--kubeconfig <file>', 'take server, CA and token from a kubeconfig instead')
    .option('--insecure-skip-tls-verify', 'do not verify the server certificate (lab use only)', false);
}

export function connectionTarget(opts: ConnectionOptions, ctx: CliContext): KubeTarget {
  if (opts.kubeconfig) return parseKubeconfig(readFileSync(resolve(ctx.cwd, opts.kubeconfig), 'utf8'), opts.server ? { server: opts.server } : {});
  const server = opts.server ?? ctx.env.server;
  if (!server) throw new UsageError('--server: required (or --kubeconfig, or env CROSSMESH_SERVER)');
  const caFile = opts.caFile ?? ctx.env.caFile;
  const token = opts.token ?? ctx.env.token;
  return {
    server,
    ...(token ? { token } : {}),
    ...(caFile ? { ca: readFileSync(resolve(ctx.cwd, caFile), 'utf8') } : {}),
    ...(opts.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
  };
}

export function connect(opts: ConnectionOptions, ctx: CliContext): KubeClient {
  return createKubeClient(connectionTarget(opts, ctx));
}
