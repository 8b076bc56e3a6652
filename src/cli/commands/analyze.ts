import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { ClusterInput, Finding } from '../../analyze/index.js';
import { analyze, formatFinding } from '../../analyze/index.js';
import { loadAndValidate } from '../../api/index.js';
import type { Resource } from '../../api/types.js';
import { readLabState } from '../../lab/state.js';
import { createKubeClient } from '../../registry/kube-client/index.js';
import { CrossmeshError, UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData } from '../output.js';

const KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'v1', kind: 'Namespace' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService' },
  { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule' },
  { apiVersion: 'networking.istio.io/v1', kind: 'Gateway' },
  { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry' },
];

/** Every cluster of the running lab: its stored resources, network, root CA and the port conflicts its control plane saw. */
async function labClusters(ctx: CliContext): Promise<ClusterInput[]> {
  const dir = resolve(ctx.cwd, ctx.env.labDir ?? '.crossmesh/lab');
  const state = readLabState(dir);
  if (!state) throw new CrossmeshError('E_NO_LAB', `--lab: no lab in ${dir}`);
  const ca = readFileSync(state.rootCert, 'utf8');
  const out: ClusterInput[] = [];
  for (const c of state.clusters) {
    const client = createKubeClient({ server: c.controlPlane.api, token: state.tokens[c.name]!, ca });
    try {
      const resources: Resource[] = [];
      for (const k of KINDS) resources.push(...(await client.list(k)).items);
      const conflicts = await fetch(`${c.controlPlane.admin}/debug/config-conflicts`).then((r) => r.json() as Promise<ClusterInput['portConflicts']>, () => []);
      const remotes = await fetch(`${c.controlPlane.admin}/debug/remote-clusters`).then((r) => r.json() as Promise<NonNullable<ClusterInput['remoteErrors']>>, () => []);
      const root = join(state.dir, 'pki', c.name, 'root-cert.pem');
      out.push({ name: c.name, network: c.network, resources, ...(existsSync(root) ? { rootCertPem: readFileSync(root, 'utf8') } : {}), ...(conflicts ? { portConflicts: conflicts } : {}), remoteErrors: remotes.filter((r) => r.status !== 'synced') });
    } finally {
      client.close();
    }
  }
  return out;
}

export function registerAnalyze(program: Command, ctx: CliContext): void {
  program
    .command('analyze')
    .description('find config mistakes before traffic does (Istio-style codes); exits 1 when any is an error')
    .option('-f, --filename <path>', 'files or directories of one cluster\'s config (repeatable)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--cluster <name>', 'the cluster the files describe', 'cluster-1')
    .option('--network <name>', 'that cluster\'s network')
    .option('--cacerts <name=dir>', 'a cluster\'s cacerts (or root) directory, to compare roots (repeatable)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--lab', 'analyze every cluster of the running lab', false)
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action(async (opts: { filename: string[]; cluster: string; network?: string; cacerts: string[]; lab: boolean; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if (!opts.lab && opts.filename.length === 0 && opts.cacerts.length === 0) throw new UsageError('give -f FILE…, --cacerts NAME=DIR… or --lab');
      const findings: Finding[] = [];
      const clusters: ClusterInput[] = opts.lab ? await labClusters(ctx) : [];
      if (opts.filename.length) {
        const loaded = await loadAndValidate(opts.filename, { cwd: ctx.cwd, readStdin: ctx.readStdin });
        for (const p of loaded.problems) {
          findings.push({ code: 'IST0106', level: 'Error', resource: p.resource ?? p.file ?? '-', cluster: opts.cluster, message: `Schema validation error: ${[p.path, p.message].filter(Boolean).join(': ')}` });
        }
        clusters.push({ name: opts.cluster, ...(opts.network ? { network: opts.network } : {}), resources: loaded.resources as readonly Resource[] });
      }
      for (const spec of opts.cacerts) {
        const [name, dir] = spec.split('=');
        if (!name || !dir) throw new UsageError(`--cacerts: expected NAME=DIR (got "${spec}")`);
        const file = join(resolve(ctx.cwd, dir), 'root-cert.pem');
        if (!existsSync(file)) throw new UsageError(`--cacerts: ${file} does not exist`);
        const pem = readFileSync(file, 'utf8');
        const existing = clusters.find((c) => c.name === name);
        if (existing) existing.rootCertPem = pem;
        else clusters.push({ name, resources: [], rootCertPem: pem });
      }
      findings.push(...analyze(clusters));
      ctx.stdout(
        renderData(findings, format, () =>
          findings.length === 0
            ? `no problems found in ${clusters.length} cluster${clusters.length === 1 ? '' : 's'}\n`
            : findings.map(formatFinding).join('\n') + '\n',
        ),
      );
      const errors = findings.filter((f) => f.level === 'Error').length;
      if (errors) throw new CrossmeshError('E_ANALYZE', `${errors} error${errors === 1 ? '' : 's'} found`);
    });
}
