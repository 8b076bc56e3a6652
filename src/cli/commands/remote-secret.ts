import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import type { Resource } from '../../api/types.js';
import { ANNOTATION_CLUSTER, LABEL_API_TOKEN, LABEL_MULTICLUSTER, SYSTEM_NAMESPACE } from '../../controlplane/index.js';
import { buildKubeconfig } from '../../registry/kube-client/index.js';
import { UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import type { ConnectionOptions } from '../connection.js';
import { addConnectionOptions, connect, connectionTarget } from '../connection.js';

/**
 * The Secret another cluster's control plane needs to watch this one, in Istio's format: label
 * istio/multiCluster=true, annotation networking.istio.io/cluster, one key (the cluster id) holding a
 * kubeconfig with the server, its CA and a read-only token.
 */
export function remoteSecret(cluster: string, kubeconfig: Record<string, unknown>): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: `istio-remote-secret-${cluster}`,
      namespace: SYSTEM_NAMESPACE,
      labels: { [LABEL_MULTICLUSTER]: 'true' },
      annotations: { [ANNOTATION_CLUSTER]: cluster },
    },
    stringData: { [cluster]: toYaml(kubeconfig) },
  } as Resource;
}

export function registerRemoteSecret(program: Command, ctx: CliContext): void {
  addConnectionOptions(
    program
      .command('create-remote-secret')
      .description('print a remote secret that lets other clusters\' control planes watch this one')
      .requiredOption('--name <cluster>', 'this cluster\'s id, as the other control planes will know it')
      .option('--remote-server <url>', 'the API address other clusters should dial, when it differs from --server (private clusters, NAT)')
      .option('--out <file>', 'write to a file instead of stdout'),
  ).action(async (opts: ConnectionOptions & { name: string; remoteServer?: string; out?: string }) => {
    const target = connectionTarget(opts, ctx);
    if (!target.ca && !target.insecureSkipTlsVerify) {
      throw new UsageError('--ca-file: required so that the remote secret carries the CA other clusters must trust');
    }
    // A read-only credential of its own, so it can be revoked without touching anyone else's.
    const token = randomBytes(24).toString('base64url');
    const tokenSecret: Resource = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `remote-reader-${randomBytes(4).toString('hex')}`, namespace: SYSTEM_NAMESPACE, labels: { [LABEL_API_TOKEN]: 'true' } },
      stringData: { token, role: 'read' },
    } as Resource;
    const client = connect(opts, ctx);
    try {
      await client.apply([tokenSecret]);
    } finally {
      client.close();
    }
    const kubeconfig = buildKubeconfig(
      { server: opts.remoteServer ?? target.server, token, ...(target.ca ? { ca: target.ca } : {}), ...(target.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}) },
      opts.name,
    );
    const text = toYaml(remoteSecret(opts.name, kubeconfig));
    if (opts.out) writeFileSync(resolve(ctx.cwd, opts.out), text, { mode: 0o600 });
    else ctx.stdout(text);
  });
}
