/** An exclusive advisory lock on a file (flock), with a timeout, serialising ADD/DEL/GC on one node. */
import { closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { LOCK_EX, LOCK_NB, LOCK_UN, tryFlock } from '../native/libc';
import { ensureTrustedDir, LOCK_FLAGS, openOwnFile } from './safe-fs';

/**
 * Runs fn while holding an exclusive flock on path; waits at most timeoutMs for the lock. The
 * directory must be trusted and the lock a regular file (never a link, FIFO or someone else's
 * file): an UnsafePathError otherwise, before anything is locked.
 */
export async function withLock<T>(path: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  ensureTrustedDir(dirname(path));
  const fd = openOwnFile(path, LOCK_FLAGS);
  try {
    const deadline = Date.now() + timeoutMs;
    let wait = 1;
    while (!tryFlock(fd, LOCK_EX | LOCK_NB)) {
      if (Date.now() >= deadline) {
        throw Object.assign(new Error(`timed out after ${timeoutMs} ms waiting for lock ${path}`), { code: 'ELOCKTIMEOUT' });
      }
      // A timer, not a blocking wait: afsteerd runs handed-over ADDs on its event loop.
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 20);
    }
    try {
      return await fn();
    } finally {
      tryFlock(fd, LOCK_UN);
    }
  } finally {
    closeSync(fd);
  }
}
