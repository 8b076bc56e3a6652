import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData } from '../output.js';
import {
  generateIntermediateCa,
  generateRootCa,
  generateWorkloadCert,
  inspectPaths,
  isKeyType,
  keyTypes,
  loadCacerts,
  parseDurationSeconds,
  readRootCa,
  renderInspectReport,
  RootMismatchError,
  writeCacerts,
  writeRootCa,
  writeWorkloadCert,
} from '../../ca/index.js';
import type { KeyType } from '../../ca/index.js';

function positiveInt(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${option}: must be a positive whole number (got "${value}")`);
  return n;
}

function keyType(value: string): KeyType {
  if (!isKeyType(value)) throw new UsageError(`--key-type: must be one of ${keyTypes.join(', ')} (got "${value}")`);
  return value;
}

export function registerCa(program: Command, ctx: CliContext): void {
  const ca = program.command('ca').description('mesh identity: make a shared root, per-cluster intermediates, workload certs; inspect them');
  const path = (p: string) => resolve(ctx.cwd, p);
  const wrote = (files: string[]) => ctx.stdout(files.map((f) => `wrote ${f}\n`).join(''));

  ca.command('root')
    .description('make a self-signed mesh root: root-cert.pem and root-key.pem (keep the key offline)')
    .requiredOption('--out <dir>', 'directory to write into')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--days <n>', 'validity in days', '3650')
    .option('--key-type <type>', keyTypes.join(' | '), 'ec-p256')
    .option('--force', 'overwrite existing files', false)
    .action(async (o: { out: string; trustDomain: string; days: string; keyType: string; force: boolean }) => {
      const root = await generateRootCa({ trustDomain: o.trustDomain, days: positiveInt(o.days, '--days'), keyType: keyType(o.keyType) });
      wrote(writeRootCa(path(o.out), root, o.force));
    });

  ca.command('intermediate')
    .description("make a cluster's intermediate CA signed by the root: Istio plug-in files ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem")
    .requiredOption('--root <dir>', 'directory holding root-cert.pem and root-key.pem')
    .requiredOption('--cluster <name>', 'cluster name (goes into the certificate subject)')
    .requiredOption('--out <dir>', 'directory to write into (the cluster\'s cacerts)')
    .option('--days <n>', 'validity in days (capped at the root\'s expiry)', '730')
    .option('--key-type <type>', keyTypes.join(' | '), 'ec-p256')
    .option('--force', 'overwrite existing files', false)
    .action(async (o: { root: string; cluster: string; out: string; days: string; keyType: string; force: boolean }) => {
      const pem = await generateIntermediateCa({ root: readRootCa(path(o.root)), cluster: o.cluster, days: positiveInt(o.days, '--days'), keyType: keyType(o.keyType) });
      wrote(writeCacerts(path(o.out), pem, o.force));
    });

  ca.command('workload')
    .description('issue a workload certificate offline (tests, VMs, debugging): cert.pem, key.pem, cert-chain.pem, root-cert.pem')
    .requiredOption('--cacerts <dir>', "the cluster's cacerts directory")
    .requiredOption('--spiffe <id>', 'spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>')
    .requiredOption('--out <dir>', 'directory to write into')
    .option('--ttl <duration>', 'validity, e.g. 24h, 30m', '24h')
    .option('--key-type <type>', keyTypes.join(' | '), 'ec-p256')
    .option('--force', 'overwrite existing files', false)
    .action(async (o: { cacerts: string; spiffe: string; out: string; ttl: string; keyType: string; force: boolean }) => {
      const ttlSeconds = parseDurationSeconds(o.ttl, '--ttl');
      const material = await loadCacerts(path(o.cacerts), Date.now());
      const pem = await generateWorkloadCert({ material, spiffeId: o.spiffe, ttlSeconds, keyType: keyType(o.keyType) });
      wrote(writeWorkloadCert(path(o.out), pem, o.force));
    });

  ca.command('inspect')
    .description('print subject, SANs, issuer chain, validity and SPIFFE IDs of certificates; say whether cacerts dirs share a root')
    .argument('<paths...>', 'PEM files or directories (cacerts dirs are validated)')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--check-shared-root', 'exit non-zero unless all given cacerts dirs (two or more) chain to one root', false)
    .action(async (paths: string[], o: { output: string; checkSharedRoot: boolean }) => {
      const format = parseOutputFormat(o.output);
      const report = await inspectPaths(paths.map(path));
      ctx.stdout(renderData(report, format, () => renderInspectReport(report)));
      if (o.checkSharedRoot) {
        if (report.cacerts.length < 2) throw new UsageError('--check-shared-root: give at least two cacerts directories');
        if (!report.sharedRoot) {
          const bad = report.cacerts.filter((c) => c.problems.length > 0).map((c) => `${c.dir}: ${c.problems.join('; ')}`);
          throw new RootMismatchError(
            `the cacerts directories do not share one root (${report.cacerts.map((c) => `${c.cluster ?? c.dir}: ${c.rootSha256[0]?.slice(0, 23) ?? '?'}`).join(', ')})${bad.length ? '\n' + bad.join('\n') : ''}`,
          );
        }
      }
    });
}
