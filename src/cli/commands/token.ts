import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData } from '../output.js';
import { createJoinToken, loadCacerts, parseDurationSeconds, TokenError } from '../../ca/index.js';

export function registerToken(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('join tokens that let a proxy obtain its first workload certificate');
  token
    .command('create')
    .description("create a join token for one namespace/service account, signed with the cluster CA's key")
    .requiredOption('--namespace <ns>', 'namespace of the workload')
    .requiredOption('--service-account <sa>', 'service account of the workload')
    .option('--ttl <duration>', 'how long the token is valid, e.g. 1h, 30m', '1h')
    .option('--cacerts <dir>', "the cluster's cacerts directory (signs with ca-key.pem)")
    .option('--signing-key <file>', 'a PEM private key instead (the CA must be given its public key)')
    .option('--cluster <name>', 'cluster the token is for (default: from the cacerts intermediate)')
    .option('--trust-domain <domain>', 'trust domain (default: from the cacerts, else cluster.local)')
    .option('-o, --output <format>', 'table (the bare token), json or yaml', 'table')
    .action(async (o: { namespace: string; serviceAccount: string; ttl: string; cacerts?: string; signingKey?: string; cluster?: string; trustDomain?: string; output: string }) => {
      const format = parseOutputFormat(o.output);
      const ttlSeconds = parseDurationSeconds(o.ttl, '--ttl');
      if ((o.cacerts === undefined) === (o.signingKey === undefined)) throw new UsageError('give exactly one of --cacerts or --signing-key');
      let signingKey;
      let cluster = o.cluster;
      let trustDomain = o.trustDomain;
      if (o.cacerts !== undefined) {
        const material = await loadCacerts(resolve(ctx.cwd, o.cacerts), Date.now());
        signingKey = material.signer.key.privateKey;
        cluster ??= material.cluster;
        if (trustDomain !== undefined && material.trustDomain !== undefined && trustDomain !== material.trustDomain) {
          throw new UsageError(`--trust-domain: "${trustDomain}" differs from the CA's trust domain "${material.trustDomain}"; its CA would refuse the token`);
        }
        trustDomain ??= material.trustDomain;
      } else {
        const file = resolve(ctx.cwd, o.signingKey!);
        try {
          signingKey = createPrivateKey(readFileSync(file));
        } catch (err) {
          throw new TokenError(`${file}: not a readable PEM private key (${(err as Error).message})`, { cause: err });
        }
      }
      if (cluster === undefined) throw new UsageError('--cluster: required (the signing certificate does not name a cluster)');
      const nowMs = Date.now();
      const jwt = createJoinToken({ signingKey, trustDomain: trustDomain ?? 'cluster.local', namespace: o.namespace, serviceAccount: o.serviceAccount, cluster, ttlSeconds, nowMs });
      const info = {
        token: jwt,
        spiffeId: `spiffe://${trustDomain ?? 'cluster.local'}/ns/${o.namespace}/sa/${o.serviceAccount}`,
        cluster,
        expiresAt: new Date(Math.floor(nowMs / 1000) * 1000 + ttlSeconds * 1000).toISOString(),
      };
      ctx.stdout(renderData(info, format, () => jwt + '\n'));
    });
}
