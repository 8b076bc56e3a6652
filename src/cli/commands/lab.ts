import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Topology } from '../../api/index.js';
import { loadAndValidate, loadResources, loadTopologyManifests } from '../../api/index.js';
import { createKubeClient } from '../../registry/kube-client/index.js';
import { CrossmeshError, UsageError, ValidationError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { appForImage, createAppServer } from '../../lab/apps/apps.js';
import { runCheck } from '../../lab/checks.js';
import type { CheckResult } from '../../lab/checks.js';
import { startLab } from '../../lab/lab.js';
import { destroyNetnsLab } from '../../lab/hosts.js';
import type { Isolation } from '../../lab/plan.js';
import { planLab } from '../../lab/plan.js';
import type { LabState } from '../../lab/state.js';
import { publicStatus, readLabState } from '../../lab/state.js';
import { isProcessAlive, readProcessState, restartRecordedProcesses, stopRecordedProcesses } from '../../lab/supervisor.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData, renderTable } from '../output.js';

export const DEFAULT_TOPOLOGY = new URL('../../../../examples/default/topology.yaml', import.meta.url).pathname;

function labDir(ctx: CliContext): string {
  return resolve(ctx.cwd, ctx.env.labDir ?? '.crossmesh/lab');
}

function running(ctx: CliContext): LabState {
  const state = readLabState(labDir(ctx));
  if (!state) throw new CrossmeshError('E_NO_LAB', `no lab in ${labDir(ctx)}: start one with \`crossmesh up -d\``);
  return state;
}

function printLab(ctx: CliContext, state: LabState): void {
  ctx.stdout('\nclusters\n' + renderTable(state.clusters, [
    { header: 'name', value: (c) => c.name },
    { header: 'network', value: (c) => c.network },
    { header: 'locality', value: (c) => c.locality },
    { header: 'xds', value: (c) => c.controlPlane.xds },
    { header: 'api', value: (c) => c.controlPlane.api },
  ]));
  if (state.gateways.length) {
    ctx.stdout('\neast-west gateways\n' + renderTable(state.gateways, [
      { header: 'name', value: (g) => g.name },
      { header: 'cluster', value: (g) => g.cluster },
      { header: 'network', value: (g) => g.network },
      { header: 'address', value: (g) => g.address },
    ]));
  }
  ctx.stdout('\npods\n' + renderTable(state.pods, [
    { header: 'cluster', value: (p) => p.cluster },
    { header: 'namespace', value: (p) => p.namespace },
    { header: 'name', value: (p) => p.name },
    { header: 'app', value: (p) => p.app },
    { header: 'version', value: (p) => p.version || '-' },
    { header: 'ip', value: (p) => p.ip },
  ]));
}

function printCheck(ctx: CliContext, r: CheckResult): void {
  ctx.stdout(`\ncheck "${r.check.name}": ${r.check.request.method} ${r.check.request.url} ×${r.check.count} from ${r.pod}\n`);
  for (const reply of r.replies) {
    ctx.stdout(`  ${reply.error ? `error: ${reply.error}` : `${reply.status} ${reply.body.split('\n')[0]}`}${reply.answeredBy ? `   (answered by ${reply.answeredBy})` : ''}\n`);
  }
  ctx.stdout(r.failures.length ? `  FAILED: ${r.failures.join('; ')}\n` : '  ok\n');
}

async function down(ctx: CliContext): Promise<number> {
  const dir = labDir(ctx);
  const state = readLabState(dir);
  const stopped = await stopRecordedProcesses(dir, 3000);
  if (state?.netnsPrefix) await destroyNetnsLab(state.netnsPrefix);
  // Nothing is left behind: certificates, stores, logs and state go too (only what the lab wrote).
  for (const name of ['lab.json', 'stopped.json', 'processes.json', 'processes.json.tmp', 'lab.json.tmp', 'logs', 'pki', 'data']) {
    rmSync(join(dir, name), { recursive: true, force: true });
  }
  const removeIfEmpty = (d: string) => existsSync(d) && readdirSync(d).length === 0 && rmSync(d, { recursive: true });
  removeIfEmpty(dir);
  if (dirname(dir).endsWith('.crossmesh')) removeIfEmpty(dirname(dir));
  return stopped;
}

export function registerLab(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('start a whole multi-cluster mesh on this machine (control planes, gateways, sample apps) and run its checks')
    .option('--topology <file>', 'a Topology file (default: two clusters on two networks, examples/default)')
    .option('--isolation <mode>', 'loopback (any user) or netns (root, Linux)')
    .option('-d, --detach', 'return once the mesh is up; `crossmesh down` stops it', false)
    .action(async (opts: { topology?: string; isolation?: string; detach: boolean }) => {
      const dir = labDir(ctx);
      const existing = readLabState(dir);
      if (existing && isProcessAlive(existing.pid) && existing.pid !== process.pid) throw new CrossmeshError('E_LAB_RUNNING', `a lab is already running from ${dir} (pid ${existing.pid}); stop it with \`crossmesh down\``);
      if (existing) await down(ctx);
      if (opts.isolation && opts.isolation !== 'loopback' && opts.isolation !== 'netns') throw new UsageError(`--isolation: must be loopback or netns (got "${opts.isolation}")`);
      const file = opts.topology ? resolve(ctx.cwd, opts.topology) : DEFAULT_TOPOLOGY;
      const loaded = await loadAndValidate([file], { cwd: ctx.cwd });
      if (loaded.problems.length) throw new ValidationError(loaded.problems);
      const topology = loaded.resources.find((r) => r.kind === 'Topology') as Topology | undefined;
      if (!topology) throw new UsageError(`--topology: ${file} holds no Topology resource`);
      const manifests = await loadTopologyManifests(topology, file, { cwd: ctx.cwd });
      if (manifests.problems.length) throw new ValidationError(manifests.problems);
      const plan = planLab(topology.spec, manifests.clusters, opts.isolation as Isolation | undefined);
      const logger = createLogger({ level: ctx.env.logLevel === 'info' ? 'warn' : ctx.env.logLevel, json: ctx.env.logJson });
      const started = Date.now();
      ctx.stdout(`starting topology "${topology.metadata.name}" (${plan.clusters.length} clusters, ${plan.networks.length} networks, ${plan.isolation} isolation) in ${dir}\n`);
      const lab = await startLab({ plan, dir, logger, progress: (line) => ctx.stdout(`  ${line}\n`) });
      ctx.stdout(`mesh up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      printLab(ctx, lab.state);
      let failed = 0;
      for (const check of plan.checks) {
        const r = await runCheck(lab.state, check);
        printCheck(ctx, r);
        if (r.failures.length) failed++;
      }
      if (opts.detach) {
        lab.supervisor.detach();
        ctx.stdout(`\nthe mesh keeps running; \`crossmesh lab status\`, \`crossmesh lab logs CLUSTER/POD\`, \`crossmesh down\` to stop it\n`);
      } else {
        ctx.stdout('\nthe mesh is running; press Ctrl-C to stop it\n');
        await ctx.interrupted();
        ctx.stdout('stopping…\n');
        await lab.stop();
        await down(ctx);
      }
      if (failed) throw new CrossmeshError('E_LAB_CHECKS', `${failed} of ${plan.checks.length} checks failed`);
    });

  program
    .command('down')
    .description('stop the lab started with `crossmesh up -d`, leaving nothing behind')
    .action(async () => {
      const n = await down(ctx);
      ctx.stdout(n ? `stopped ${n} processes\n` : 'no lab was running\n');
    });

  const lab = program.command('lab').description('look at and change a running lab');

  lab
    .command('status')
    .description('clusters, gateways and pods of the running lab')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action((opts: { output: string }) => {
      const state = running(ctx);
      const format = parseOutputFormat(opts.output);
      if (format === 'table') printLab(ctx, state);
      else ctx.stdout(renderData(publicStatus(state), format, () => ''));
    });

  lab
    .command('logs')
    .description("print a pod's container log (the proxy's includes its access log)")
    .argument('<cluster/pod>', 'e.g. cluster-1/sleep-5f6d8c7b9-abcde, or cluster-1/control-plane')
    .option('--container <name>', 'app or proxy', 'proxy')
    .action((target: string, opts: { container: string }) => {
      const state = running(ctx);
      const [cluster, pod] = target.split('/');
      const base = join(state.dir, 'logs', pod === 'control-plane' ? `${cluster}.control-plane.log` : `${cluster}.${pod}.${opts.container}.log`);
      const files = [base, ...(opts.container === 'proxy' ? [`${base}.access`] : [])].filter((f) => existsSync(f));
      if (!files.length) throw new UsageError(`no log for ${target} (container ${opts.container})`);
      for (const f of files) ctx.stdout(readFileSync(f, 'utf8'));
    });

  lab
    .command('apply')
    .description('apply config to one cluster of the running lab')
    .argument('<cluster>')
    .requiredOption('-f, --filename <path>', 'file, directory or -')
    .action(async (cluster: string, opts: { filename: string }) => {
      const state = running(ctx);
      const c = state.clusters.find((x) => x.name === cluster);
      if (!c) throw new UsageError(`no cluster ${cluster} in the lab (${state.clusters.map((x) => x.name).join(', ')})`);
      const resources = await loadResources([opts.filename], { cwd: ctx.cwd, readStdin: ctx.readStdin });
      const client = createKubeClient({ server: c.controlPlane.api, token: state.tokens[cluster]!, ca: readFileSync(state.rootCert, 'utf8') });
      try {
        const res = await client.apply([...resources]);
        for (const r of res.results) ctx.stdout(`${r.object.kind}/${r.object.metadata.namespace ?? ''}/${r.object.metadata.name} ${r.action}\n`);
      } finally {
        client.close();
      }
    });

  const selectRecords = (state: LabState, target: string) => {
    const [cluster, pod] = target.split('/');
    if (!state.clusters.some((c) => c.name === cluster)) throw new UsageError(`no cluster ${cluster} in the lab`);
    return (name: string) => (pod ? name.startsWith(`${cluster}/${pod}`) : name.startsWith(`${cluster}/`));
  };

  lab
    .command('kill')
    .description('stop a pod, or a whole cluster with its control plane (for failover tests)')
    .argument('<cluster[/pod]>')
    .action(async (target: string) => {
      const state = running(ctx);
      const match = selectRecords(state, target);
      const killed = readProcessState(state.dir).filter((r) => match(r.name));
      if (!killed.length) throw new UsageError(`nothing running matches ${target}`);
      await stopRecordedProcesses(state.dir, 2000, (r) => match(r.name));
      const stopped = JSON.parse(existsSync(join(state.dir, 'stopped.json')) ? readFileSync(join(state.dir, 'stopped.json'), 'utf8') : '[]');
      writeFileSync(join(state.dir, 'stopped.json'), JSON.stringify([...stopped, ...killed.map((r) => r.spec)], null, 2));
      ctx.stdout(`stopped ${killed.map((r) => r.name).join(', ')}\n`);
    });

  lab
    .command('start')
    .description('start again what `lab kill` stopped')
    .argument('<cluster[/pod]>')
    .action(async (target: string) => {
      const state = running(ctx);
      const match = selectRecords(state, target);
      const file = join(state.dir, 'stopped.json');
      const stopped = (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : []) as Array<{ name: string }>;
      const specs = stopped.filter((s) => match(s.name));
      if (!specs.length) throw new UsageError(`nothing stopped matches ${target}`);
      const started = restartRecordedProcesses(state.dir, specs as never);
      writeFileSync(file, JSON.stringify(stopped.filter((s) => !specs.includes(s)), null, 2));
      ctx.stdout(`started ${started.map((r) => r.name).join(', ')}\n`);
    });

  lab
    .command('exec')
    .description("run a command as if inside a pod (loopback: with the pod's sidecar as HTTP proxy)")
    .argument('<cluster/pod>')
    .argument('<command...>')
    .action(async (target: string, command: string[]) => {
      const state = running(ctx);
      const [cluster, pod] = target.split('/');
      const p = state.pods.find((x) => x.cluster === cluster && (x.name === pod || x.name.startsWith(`${pod}-`)));
      if (!p) throw new UsageError(`no pod ${target} in the lab`);
      const proxy = `http://${p.ip}:15001`;
      // netns: the pod's own namespace, where its sidecar captures traffic; loopback: the sidecar as HTTP proxy.
      const [file, args, env] = p.netns
        ? ['ip', ['netns', 'exec', p.netns, ...command], process.env]
        : [command[0]!, command.slice(1), { ...process.env, http_proxy: proxy, HTTP_PROXY: proxy, no_proxy: '', NO_PROXY: '' }];
      const code = await new Promise<number>((resolveExit) => {
        const child = spawn(file, args, { stdio: 'inherit', env });
        child.on('exit', (c) => resolveExit(c ?? 1));
        child.on('error', (err) => {
          ctx.stderr(`crossmesh: ${command[0]}: ${err.message}\n`);
          resolveExit(127);
        });
      });
      if (code !== 0) throw new CrossmeshError('E_EXEC', `${command.join(' ')} exited with ${code}`);
    });

  lab
    .command('run-app', { hidden: true })
    .description('run one sample app (used by the lab for each pod)')
    .requiredOption('--image <image>')
    .requiredOption('--pod <name>')
    .requiredOption('--host <address>')
    .option('--port <port>', 'repeatable', (v: string, prev: number[] = []) => [...prev, Number(v)], [])
    .action(async (opts: { image: string; pod: string; host: string; port: number[] }) => {
      const app = appForImage(opts.image, process.env as Record<string, string>);
      if (!app) throw new UsageError(`--image: no sample app for "${opts.image}"`);
      const server = createAppServer({ app, podName: opts.pod });
      if (!server) {
        await ctx.interrupted();
        return;
      }
      const ports = opts.port.length ? opts.port : [app.defaultPort];
      // One server answers on every container port, as one process listening on several would.
      const servers = [server, ...ports.slice(1).map(() => createAppServer({ app, podName: opts.pod })!)];
      await Promise.all(servers.map((s, i) => new Promise<void>((r) => s.listen(ports[i], opts.host, r))));
      ctx.stdout(`${app.kind} ${app.version} (${opts.pod}) on ${ports.map((p) => `${opts.host}:${p}`).join(', ')}\n`);
      await ctx.interrupted();
      for (const s of servers) s.close();
    });
}
