import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';
import { silentLogger } from '../shared/log.js';

/** One process the lab runs: a control plane, a proxy, an app. */
export interface ProcessSpec {
  /** Unique within the lab, e.g. `cluster-1/helloworld-v1-abc12/proxy`. */
  name: string;
  command: string;
  args: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
}

export interface ProcessRecord {
  name: string;
  pid: number;
  logFile: string;
  netns?: string;
  startedAt: string;
  /** Enough to start the process again from another process (`crossmesh lab start`). */
  spec: ProcessSpec;
}

export interface ManagedProcess {
  readonly record: ProcessRecord;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
}

/**
 * Starts and stops the lab's processes. Each runs in its own process group so that stopping it stops
 * whatever it started too. The list of running processes is kept in `stateDir/processes.json`, so a
 * later `crossmesh down` (another process) can stop a lab started with `up -d`.
 */
export interface Supervisor {
  start(spec: ProcessSpec): ManagedProcess;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(name: string, graceMs?: number): Promise<void>;
  stopAll(graceMs?: number): Promise<void>;
  list(): ProcessRecord[];
  /** Lets this process exit while the children keep running (`crossmesh up -d`). */
  detach(): void;
}

const STATE_FILE = 'processes.json';

export function createSupervisor(options: { stateDir: string; logger?: Logger }): Supervisor {
  const logger = options.logger ?? silentLogger;
  mkdirSync(options.stateDir, { recursive: true });
  const running = new Map<string, { child: ChildProcess; record: ProcessRecord; exited: Promise<number | string> }>();

  const ours = new Set<number>();
  // Other processes (`crossmesh lab start`) may add records to the same file: keep theirs while alive.
  const save = () =>
    writeState(options.stateDir, [
      ...readProcessState(options.stateDir).filter((r) => !ours.has(r.pid) && isProcessAlive(r.pid)),
      ...[...running.values()].map((r) => r.record),
    ]);

  return {
    start(spec) {
      if (running.has(spec.name)) throw new Error(`supervisor: ${spec.name} is already running`);
      const fd = openSync(spec.logFile, 'a');
      const [file, args] = spec.netns ? ['ip', ['netns', 'exec', spec.netns, spec.command, ...spec.args]] : [spec.command, [...spec.args]];
      const child = spawn(file, args as string[], {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...spec.env },
      });
      closeSync(fd);
      const record: ProcessRecord = {
        name: spec.name,
        pid: child.pid ?? -1,
        logFile: spec.logFile,
        ...(spec.netns ? { netns: spec.netns } : {}),
        startedAt: new Date().toISOString(),
        spec,
      };
      const exited = new Promise<number | string>((resolve) => {
        child.on('exit', (code, signal) => {
          if (running.get(spec.name)?.child === child) {
            running.delete(spec.name);
            save();
          }
          logger.debug('process exited', { name: spec.name, code, signal });
          resolve(code ?? signal ?? 'unknown');
        });
        child.on('error', (err) => {
          logger.error('process failed to start', { name: spec.name, error: err.message });
          resolve('spawn-error');
        });
      });
      ours.add(record.pid);
      running.set(spec.name, { child, record, exited });
      save();
      return { record, exited };
    },
    async stop(name, graceMs = 3000) {
      const entry = running.get(name);
      if (!entry) return;
      await terminateGroup(entry.record.pid, entry.exited, graceMs);
    },
    async stopAll(graceMs = 3000) {
      await Promise.all([...running.keys()].map((name) => this.stop(name, graceMs)));
    },
    list: () => [...running.values()].map((r) => r.record),
    detach() {
      for (const r of running.values()) r.child.unref();
    },
  };
}

async function terminateGroup(pid: number, exited: Promise<unknown>, graceMs: number): Promise<void> {
  signalGroup(pid, 'SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), delay(graceMs).then(() => true)]);
  if (timedOut) {
    signalGroup(pid, 'SIGKILL');
    await Promise.race([exited, delay(1000)]);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

// Not unref'd: `crossmesh down` has nothing else keeping it alive while it waits for processes to exit.
function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function writeState(dir: string, records: ProcessRecord[]): void {
  const tmp = join(dir, `${STATE_FILE}.tmp`);
  writeFileSync(tmp, JSON.stringify(records, null, 2));
  renameSync(tmp, join(dir, STATE_FILE));
}

/** The processes a (possibly other) supervisor recorded in `stateDir`. */
export function readProcessState(stateDir: string): ProcessRecord[] {
  const file = join(stateDir, STATE_FILE);
  if (!existsSync(file)) return [];
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ProcessRecord[];
  } catch {
    return [];
  }
}

/**
 * Stops processes recorded in `stateDir` from outside the supervisor that started them (`crossmesh down`,
 * `crossmesh lab kill`): SIGTERM to each group, then SIGKILL to whatever is left after `graceMs`. With
 * `match`, only the records it accepts are stopped and the others stay recorded.
 */
export async function stopRecordedProcesses(stateDir: string, graceMs = 3000, match: (r: ProcessRecord) => boolean = () => true): Promise<number> {
  const all = readProcessState(stateDir);
  const records = all.filter(match);
  const alive = records.filter((r) => signalGroup(r.pid, 'SIGTERM'));
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && alive.some((r) => isProcessAlive(r.pid))) await delay(50);
  for (const r of alive) if (isProcessAlive(r.pid)) signalGroup(r.pid, 'SIGKILL');
  if (existsSync(stateDir)) writeState(stateDir, all.filter((r) => !records.includes(r)));
  return alive.length;
}

/** Starts recorded processes again, detached, and records their new pids (`crossmesh lab start`). */
export function restartRecordedProcesses(stateDir: string, specs: readonly ProcessSpec[]): ProcessRecord[] {
  const records = readProcessState(stateDir).filter((r) => !specs.some((s) => s.name === r.name));
  const started: ProcessRecord[] = [];
  for (const spec of specs) {
    const fd = openSync(spec.logFile, 'a');
    const [file, args] = spec.netns ? ['ip', ['netns', 'exec', spec.netns, spec.command, ...spec.args]] : [spec.command, [...spec.args]];
    const child = spawn(file, args as string[], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...spec.env } });
    closeSync(fd);
    child.unref();
    started.push({ name: spec.name, pid: child.pid ?? -1, logFile: spec.logFile, ...(spec.netns ? { netns: spec.netns } : {}), startedAt: new Date().toISOString(), spec });
  }
  writeState(stateDir, [...records, ...started]);
  return started;
}

/** Alive and not a zombie: an orphan's zombie lingers where PID 1 does not reap (containers). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return process.platform !== 'linux';
  }
}
