import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { parseOutputFormat, renderData } from '../output.js';
import { packageVersion } from '../version.js';

export function registerVersion(program: Command, ctx: CliContext): void {
  program
    .command('version')
    .description('print the crossmesh version')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action((opts: { output: string }) => {
      const info = { crossmesh: packageVersion(), node: process.versions.node, platform: `${process.platform}/${process.arch}` };
      ctx.stdout(
        renderData(info, parseOutputFormat(opts.output), () => `crossmesh ${info.crossmesh} (node ${info.node}, ${info.platform})\n`),
      );
    });
}
