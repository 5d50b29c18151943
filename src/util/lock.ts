/** An exclusive advisory lock on a file (flock), with a timeout, serialising ADD/DEL/GC on one node. */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { LOCK_EX, LOCK_NB, LOCK_UN, tryFlock } from '../native/libc';

let sleepCell: Int32Array | undefined;

/** Runs fn while holding an exclusive flock on path; waits at most timeoutMs for the lock. */
export async function withLock<T>(path: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, 'a', 0o600);
  try {
    const deadline = Date.now() + timeoutMs;
    let wait = 1;
    while (!tryFlock(fd, LOCK_EX | LOCK_NB)) {
      if (Date.now() >= deadline) {
        throw Object.assign(new Error(`timed out after ${timeoutMs} ms waiting for lock ${path}`), { code: 'ELOCKTIMEOUT' });
      }
      Atomics.wait((sleepCell ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, wait);
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
