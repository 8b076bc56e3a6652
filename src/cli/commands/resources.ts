import type { Command } from 'commander';
import { loadResources } from '../../api/index.js';
import type { Resource } from '../../api/types.js';
import { resourceRef } from '../../api/types.js';
import { kindForPlural, knownKinds } from '../../controlplane/index.js';
import type { KindInfo } from '../../controlplane/index.js';
import { UsageError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import type { ConnectionOptions } from '../connection.js';
import { addConnectionOptions, connect } from '../connection.js';
import { parseOutputFormat, renderData, renderTable } from '../output.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `services`, `service`, `svc`-less plurals, or the Kind itself (`VirtualService`, `virtualservices`). */
function kindInfo(word: string): KindInfo {
  const lower = word.toLowerCase();
  const found =
    kindForPlural(lower) ??
    knownKinds().find((k) => k.kind.toLowerCase() === lower || `${k.kind.toLowerCase()}s` === lower || k.plural === `${lower}s`);
  if (!found) throw new UsageError(`unknown resource type "${word}"; known: ${knownKinds().map((k) => k.plural).join(', ')}`);
  return found;
}

const apiVersionOf = (k: KindInfo) => (k.group ? `${k.group}/${k.version}` : k.version);

async function load(files: string[], ctx: CliContext): Promise<readonly Resource[]> {
  if (!files.length) throw new UsageError('-f/--filename: required');
  return loadResources(files, { cwd: ctx.cwd, readStdin: ctx.readStdin });
}

export function registerResources(program: Command, ctx: CliContext): void {
  addConnectionOptions(
    program
      .command('apply')
      .description('validate and apply resources to a control plane, all or nothing')
      .option('-f, --filename <path>', 'file, directory or - (repeatable)', collect, [])
      .option('--dry-run', 'validate on the server, store nothing', false),
  ).action(async (opts: ConnectionOptions & { filename: string[]; dryRun: boolean }) => {
    const resources = await load(opts.filename, ctx);
    const client = connect(opts, ctx);
    try {
      const res = await client.apply(resources as Resource[], { dryRun: opts.dryRun });
      for (const r of res.results) ctx.stdout(`${resourceRef(r.object)} ${r.action}${opts.dryRun ? ' (dry run)' : ''}\n`);
    } finally {
      client.close();
    }
  });

  addConnectionOptions(
    program
      .command('get')
      .description('list or show resources of a control plane')
      .argument('<type>', 'resource type: services, workloadentries, virtualservices, …')
      .argument('[name]', 'one resource by name')
      .option('-n, --namespace <ns>', 'namespace (default: all namespaces for lists, "default" for a name)')
      .option('-l, --selector <selector>', 'label selector, e.g. app=helloworld')
      .option('-o, --output <format>', 'table, json or yaml', 'table'),
  ).action(async (type: string, name: string | undefined, opts: ConnectionOptions & { namespace?: string; selector?: string; output: string }) => {
    const format = parseOutputFormat(opts.output);
    const info = kindInfo(type);
    const client = connect(opts, ctx);
    try {
      const ref = { apiVersion: apiVersionOf(info), kind: info.kind };
      let items: Resource[];
      if (name) {
        const one = await client.get({ ...ref, name, ...(info.namespaced ? { namespace: opts.namespace ?? 'default' } : {}) });
        if (!one) throw new UsageError(`${info.kind} ${info.namespaced ? `${opts.namespace ?? 'default'}/` : ''}${name} not found`);
        items = [one];
      } else {
        items = (await client.list(ref, { ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.selector ? { labelSelector: opts.selector } : {}) })).items;
      }
      const data = name ? items[0] : { apiVersion: 'v1', kind: 'List', items };
      ctx.stdout(
        renderData(data, format, () =>
          renderTable(items, [
            ...(info.namespaced ? [{ header: 'namespace', value: (r: Resource) => r.metadata.namespace }] : []),
            { header: 'name', value: (r: Resource) => r.metadata.name },
            { header: 'revision', value: (r: Resource) => r.metadata.resourceVersion },
            { header: 'created', value: (r: Resource) => r.metadata.creationTimestamp },
          ]),
        ),
      );
    } finally {
      client.close();
    }
  });

  addConnectionOptions(
    program
      .command('delete')
      .description('delete resources from a control plane, all in one transaction')
      .argument('[type]', 'resource type (with a name), instead of -f')
      .argument('[name]', 'resource name')
      .option('-f, --filename <path>', 'delete what these files describe (repeatable)', collect, [])
      .option('-n, --namespace <ns>', 'namespace of the named resource', 'default'),
  ).action(async (type: string | undefined, name: string | undefined, opts: ConnectionOptions & { filename: string[]; namespace: string }) => {
    let refs: Array<{ apiVersion: string; kind: string; namespace?: string; name: string }>;
    if (opts.filename.length) {
      refs = (await load(opts.filename, ctx)).map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, name: r.metadata.name, ...(r.metadata.namespace ? { namespace: r.metadata.namespace } : {}) }));
    } else if (type && name) {
      const info = kindInfo(type);
      refs = [{ apiVersion: apiVersionOf(info), kind: info.kind, name, ...(info.namespaced ? { namespace: opts.namespace } : {}) }];
    } else {
      throw new UsageError('give TYPE NAME or -f FILE');
    }
    const client = connect(opts, ctx);
    try {
      const res = await client.delete(refs);
      for (const r of res.deleted) ctx.stdout(`${resourceRef(r)} deleted\n`);
      for (const r of res.notFound) ctx.stdout(`${r} not found\n`);
    } finally {
      client.close();
    }
  });
}

