import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { ClusterInput, Finding } from '../../analyze/index.js';
import { analyze, formatFinding, servicePortConflicts } from '../../analyze/index.js';
import { loadAndValidate } from '../../api/index.js';
import type { Resource } from '../../api/types.js';
import { resourceRef } from '../../api/types.js';
import { readLabState } from '../../lab/state.js';
import { createKubeClient } from '../../registry/kube-client/index.js';
import { CrossmeshError, UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData } from '../output.js';
import { ANALYZED_KINDS, analyzedServers, serverClusters } from './analyze-servers.js';

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
      for (const k of ANALYZED_KINDS) resources.push(...(await client.list(k)).items);
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
    .option('--server <[name=]url>', 'a cluster\'s resource API, read live; NAME is its cluster id (default: the URL\'s host:port) (repeatable)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--token <token>', 'bearer token for --server: once for all servers, or once per --server in the same order (env CROSSMESH_TOKEN)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--ca-file <file>', 'CA bundle for --server (its root is compared across clusters): once, or once per --server (env CROSSMESH_CA_FILE)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--insecure-skip-tls-verify', 'do not verify the servers\' certificates (lab use only; roots are then not compared)', false)
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .addHelpText(
      'after',
      [
        '\nLive clusters, one --server each (the token and CA file pair with the servers in order):',
        '  crossmesh analyze --server cluster-1=https://127.1.1.1:6443 --token T1 --ca-file c1/root-cert.pem \\',
        '                    --server cluster-2=https://127.2.1.1:6443 --token T2 --ca-file c2/root-cert.pem',
        '-f files join the cluster --cluster names, live or not. Exit codes: 0 no errors, 1 errors found or a server',
        'could not be read (each failed server named), 2 usage.',
      ].join('\n'),
    )
    .action(async (opts: { filename: string[]; cluster: string; network?: string; cacerts: string[]; lab: boolean; server: string[]; token: string[]; caFile: string[]; insecureSkipTlsVerify: boolean; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if (!opts.lab && opts.filename.length === 0 && opts.cacerts.length === 0 && opts.server.length === 0) throw new UsageError('give -f FILE…, --server [NAME=]URL…, --cacerts NAME=DIR… or --lab');
      if (opts.server.length === 0 && (opts.token.length || opts.caFile.length)) throw new UsageError('--token and --ca-file go with --server');
      const servers = analyzedServers(opts, { token: ctx.env.token, caFile: ctx.env.caFile }, ctx.cwd);
      const findings: Finding[] = [];
      const clusters: ClusterInput[] = opts.lab ? await labClusters(ctx) : [];
      if (servers.length) {
        for (const c of await serverClusters(servers)) {
          if (clusters.some((x) => x.name === c.name)) throw new UsageError(`--server ${c.name}: the lab has a cluster of that name already`);
          clusters.push(c);
        }
      }
      if (opts.filename.length) {
        const loaded = await loadAndValidate(opts.filename, { cwd: ctx.cwd, readStdin: ctx.readStdin });
        for (const p of loaded.problems) {
          findings.push({ code: 'IST0106', level: 'Error', resource: p.resource ?? p.file ?? '-', cluster: opts.cluster, message: `Schema validation error: ${[p.path, p.message].filter(Boolean).join(': ')}` });
        }
        const files = loaded.resources as readonly Resource[];
        const live = clusters.findIndex((x) => x.name === opts.cluster);
        if (live >= 0) {
          // The files join that cluster's live config, replacing live resources of the same name (istioctl analyze -f).
          const replaced = new Set(files.map(resourceRef));
          const c = clusters[live]!;
          clusters[live] = { ...c, ...(opts.network ? { network: opts.network } : {}), resources: [...c.resources.filter((r) => !replaced.has(resourceRef(r))), ...files] };
        } else {
          clusters.push({ name: opts.cluster, ...(opts.network ? { network: opts.network } : {}), resources: files });
        }
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
      // The lab's control planes report port conflicts themselves; for the other clusters, compare their Services.
      const conflicts = servicePortConflicts(clusters.filter((c) => !c.portConflicts));
      for (const c of clusters) if (conflicts.has(c.name)) c.portConflicts = conflicts.get(c.name)!;
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
