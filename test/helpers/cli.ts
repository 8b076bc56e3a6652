import { main } from '../../src/cli/index.js';
import type { CliContext } from '../../src/cli/index.js';
import { readEnvironment } from '../../src/shared/env.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured output. */
export async function runCli(argv: string[], options: { cwd?: string; stdin?: string } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: readEnvironment({}),
    cwd: options.cwd ?? process.cwd(),
    readStdin: async () => options.stdin ?? '',
    interrupted: () => new Promise(() => {}),
  };
  const code = await main(argv, ctx);
  return { code, stdout, stderr };
}
