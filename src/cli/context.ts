import type { Environment } from '../shared/env.js';

/** What a command needs from the process; tests pass their own to capture output. */
export interface CliContext {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Environment;
  /** Directory relative paths are resolved against. */
  cwd: string;
  /** Read all of standard input (for `-f -`). */
  readStdin: () => Promise<string>;
  /** Resolves when the user asks the command to stop (Ctrl-C); long-running commands await it. */
  interrupted: () => Promise<void>;
}
