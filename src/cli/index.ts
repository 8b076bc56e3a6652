import { Command, CommanderError } from 'commander';
import { CrossmeshError, UsageError, ValidationError, errorMessage, formatProblem } from '../shared/errors.js';
import { readEnvironment } from '../shared/env.js';
import type { CliContext } from './context.js';
import { commands } from './commands/index.js';
import { packageVersion } from './version.js';

export type { CliContext } from './context.js';

/** Exit codes: 0 ok, 1 a failure the user caused (bad input, unreachable server), 2 usage. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function defaultContext(): CliContext {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: readEnvironment(),
    cwd: process.cwd(),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    interrupted: () =>
      new Promise((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      }),
  };
}

export function createProgram(ctx: CliContext): Command {
  const program = new Command('crossmesh')
    .description('crossmesh: a multi-cluster service mesh (Istio-compatible config, xDS, mTLS everywhere)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: ctx.stdout, writeErr: ctx.stderr, outputError: (s, write) => write(s) });
  for (const register of commands) register(program, ctx);
  for (const sub of program.commands) applyDefaults(sub, ctx);
  return program;
}

function applyDefaults(cmd: Command, ctx: CliContext): void {
  cmd.exitOverride().configureOutput({ writeOut: ctx.stdout, writeErr: ctx.stderr, outputError: (s, write) => write(s) });
  for (const sub of cmd.commands) applyDefaults(sub, ctx);
}

/** Runs the CLI and returns the exit code; never throws. */
export async function main(argv: readonly string[], ctx: CliContext = defaultContext()): Promise<number> {
  const program = createProgram(ctx);
  if (argv.length === 0) {
    ctx.stdout(program.helpInformation());
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    return reportError(err, ctx);
  }
}

function reportError(err: unknown, ctx: CliContext): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      return EXIT_OK;
    }
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    ctx.stderr(`crossmesh: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ValidationError) {
    for (const p of err.problems) ctx.stderr(formatProblem(p) + '\n');
    return EXIT_FAILURE;
  }
  if (err instanceof CrossmeshError) {
    for (const line of err.message.split('\n')) ctx.stderr(`crossmesh: ${line}\n`);
    return EXIT_FAILURE;
  }
  ctx.stderr(`crossmesh: internal error: ${errorMessage(err)}\n`);
  if (ctx.env.debug && err instanceof Error && err.stack) ctx.stderr(err.stack + '\n');
  return EXIT_FAILURE;
}
