import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** Whether this process may create network namespaces (root on Linux with `ip`); tests skip otherwise. */
export function canUseNetns(): boolean {
  return process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0;
}

/** A short unique prefix for one test's namespaces. */
export function testPrefix(tag: string): string {
  return `cmt${tag}${process.pid.toString(36).slice(-3)}${Math.floor(Math.random() * 36 ** 2).toString(36)}`;
}

/** Runs a node script inside a namespace; resolves with its stdout once it exits. */
export function nodeIn(namespace: string, script: string, timeoutMs = 5000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Starts a long-running node script inside a namespace; resolves once it prints `ready`. */
export function startNodeIn(namespace: string, script: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code} before ready`)));
  });
}

/** Node one-liner: connect to host:port, print "ok" or the error code. */
export function connectScript(host: string, port: number, timeoutMs = 1500): string {
  return `const s=require('net').connect(${port},'${host}');s.setTimeout(${timeoutMs},()=>{console.log('ETIMEDOUT');process.exit(0)});s.on('connect',()=>{console.log('ok');s.destroy()});s.on('error',e=>{console.log(e.code);process.exit(0)})`;
}
