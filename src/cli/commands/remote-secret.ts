import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { createRemoteSecret } from '../../controlplane/index.js';
import { UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import type { ConnectionOptions } from '../connection.js';
import { addConnectionOptions, connect, connectionTarget } from '../connection.js';

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
    const client = connect(opts, ctx);
    let secret;
    try {
      secret = await createRemoteSecret(client, {
        cluster: opts.name,
        server: opts.remoteServer ?? target.server,
        ...(target.ca ? { caPem: target.ca } : {}),
        ...(target.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
      });
    } finally {
      client.close();
    }
    const text = toYaml(secret);
    if (opts.out) writeFileSync(resolve(ctx.cwd, opts.out), text, { mode: 0o600 });
    else ctx.stdout(text);
  });
}
