import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabStatus } from '../../src/lab/state.js';

export const BIN = new URL('../../../bin/crossmesh.js', import.meta.url).pathname;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a process with the lab kept in `labDir`. */
export function crossmesh(labDir: string, args: string[], timeoutMs = 180_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CROSSMESH_LAB_DIR: labDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A lab directory of its own; `cleanup` runs `crossmesh down` and removes it, whatever happened. */
export function labFixture(): { dir: string; cleanup(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'cm-lab-'));
  return {
    dir,
    async cleanup() {
      await crossmesh(dir, ['down'], 60_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function labStatus(dir: string): Promise<LabStatus> {
  const r = await crossmesh(dir, ['lab', 'status', '-o', 'json']);
  if (r.code !== 0) throw new Error(`lab status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as LabStatus;
}

/** Processes whose command line mentions the lab directory (none must be left after `down`). */
export function processesOf(dir: string): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('pgrep', ['-af', dir], (_err, stdout) => resolve(stdout.split('\n').filter((l) => l.trim() && !l.includes('pgrep'))));
  });
}

export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 250): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The JSON lines of an access log once `ready(lines)` holds (or after `timeoutMs`): proxies write their logs
 * asynchronously, so a line may land just after the response did.
 */
export async function accessLog(file: string, ready: (lines: any[]) => boolean, timeoutMs = 5000): Promise<any[]> {
  const read = () => {
    try {
      return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
    } catch {
      return [];
    }
  };
  const deadline = Date.now() + timeoutMs;
  let lines = read();
  while (!ready(lines) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    lines = read();
  }
  return lines;
}
