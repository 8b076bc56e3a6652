import type { Command } from 'commander';
import { loadAndValidate } from '../../api/index.js';
import { UsageError, ValidationError } from '../../shared/errors.js';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData } from '../output.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `crossmesh validate -f PATH…`: checks resources as `apply` would, without applying them. */
export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .description('check resource files (YAML or JSON, files, directories or - for stdin) without applying them')
    .option('-f, --filename <path>', 'file, directory (searched recursively) or - for stdin; repeatable', collect)
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .addHelpText(
      'after',
      '\nExit codes: 0 all valid, 1 problems found (one per line on stderr: FILE: Kind/namespace/name: field.path: reason), 2 usage.',
    )
    .action(async (opts: { filename?: string[]; output: string }) => {
      const format = parseOutputFormat(opts.output);
      if (!opts.filename || opts.filename.length === 0) throw new UsageError('validate: at least one -f/--filename is required');
      const result = await loadAndValidate(opts.filename, { cwd: ctx.cwd, readStdin: ctx.readStdin });
      const problems = [...result.problems];
      if (problems.length === 0 && result.resources.length === 0) {
        problems.push({ message: 'no resources found in the input' });
      }
      const valid = problems.length === 0;
      if (format === 'table') {
        if (valid) {
          const n = result.resources.length;
          ctx.stdout(`${plural(n, 'resource')} in ${plural(result.files.length, 'file')} ${n === 1 ? 'is' : 'are'} valid\n`);
        }
      } else {
        const data = {
          valid,
          files: result.files,
          resources: result.items.map((i) => ({
            file: i.file,
            apiVersion: i.resource.apiVersion,
            kind: i.resource.kind,
            namespace: i.resource.metadata.namespace,
            name: i.resource.metadata.name,
          })),
          problems,
        };
        ctx.stdout(renderData(data, format, () => ''));
      }
      // The CLI prints a ValidationError's problems one per line on stderr and exits 1.
      if (!valid) throw new ValidationError(problems);
    });
}
