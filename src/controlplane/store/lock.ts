import { hostname } from 'node:os';
import { open, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreLockedError } from './errors.js';

/** Directories this process holds, so a second store in the same process is refused too. */
const heldHere = new Set<string>();

export interface DirLock {
  release(): Promise<void>;
}

interface LockInfo {
  pid: number;
  host: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `dir/LOCK`. A lock left by a process that is gone (e.g. after kill -9) is taken over; a lock held by a
 * live process, or by another store in this process, is refused with StoreLockedError. Locks from another host
 * (shared filesystems) are always treated as live.
 */
export async function lockDir(dir: string): Promise<DirLock> {
  // The real path, so `./data` and `/abs/data` (or a symlink) are recognised as one directory in this process.
  const path = join(await realpath(dir), 'LOCK');
  if (heldHere.has(path)) throw new StoreLockedError(dir, `another store in this process (pid ${process.pid})`);
  const me: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const body = JSON.stringify(me) + '\n';
  try {
    const fh = await open(path, 'wx');
    await fh.writeFile(body);
    await fh.sync();
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    let holder: LockInfo | undefined;
    try {
      holder = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    } catch {
      holder = undefined; // unreadable: a lock torn by a crash while being written
    }
    const stale =
      holder === undefined ||
      (holder.host === me.host && (holder.pid === process.pid || !alive(holder.pid)));
    if (!stale) throw new StoreLockedError(dir, `process ${holder!.pid} on ${holder!.host} (lock file ${path})`);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, path);
  }
  heldHere.add(path);
  return {
    async release() {
      heldHere.delete(path);
      try {
        const now = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
        if (now.pid === me.pid && now.since === me.since) await unlink(path);
      } catch {
        // already gone or replaced: nothing of ours to remove
      }
    },
  };
}
