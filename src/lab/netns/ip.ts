import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CrossmeshError } from '../../shared/errors.js';

const run = promisify(execFile);

/** A system command the lab needs failed; the message says which and why. */
export class LabNetworkError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_LAB_NETWORK', message, options);
  }
}

/** Runs `ip` (and friends) commands; injectable so planning can be tested without root. */
export interface CommandRunner {
  run(file: string, args: readonly string[], options?: { input?: string }): Promise<string>;
}

export const systemRunner: CommandRunner = {
  async run(file, args, options) {
    try {
      if (options?.input !== undefined) {
        return await new Promise<string>((resolve, reject) => {
          const child = execFile(file, [...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
            if (err) reject(Object.assign(err, { stderr }));
            else resolve(stdout);
          });
          child.stdin!.end(options.input);
        });
      }
      const { stdout } = await run(file, [...args], { maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
      throw new LabNetworkError(`${file} ${args.join(' ')}: ${stderr || (err as Error).message}`, { cause: err });
    }
  },
};

/** Checks for root and the tools netns isolation needs, naming what is missing. */
export async function checkNetnsSupport(runner: CommandRunner = systemRunner): Promise<string | undefined> {
  if (process.platform !== 'linux') return `netns isolation needs Linux (this is ${process.platform}); use --isolation loopback`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'netns isolation needs root (network namespaces and iptables); run as root or use --isolation loopback';
  for (const [tool, flag, pkg] of [['ip', '-V', 'iproute2'], ['iptables', '--version', 'iptables']] as const) {
    try {
      await runner.run(tool, [flag]);
    } catch {
      return `netns isolation needs \`${tool}\` (Debian package ${pkg}); install it or use --isolation loopback`;
    }
  }
  return undefined;
}
