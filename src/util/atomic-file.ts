/**
 * Atomic file writes: write a temporary file, rename it over the target, so readers see the old
 * or the new file, never a torn one. No fsync: afsteer's state describes kernel objects (filters,
 * bpffs pins) that do not survive a reboot either, so durability across power loss buys nothing.
 */
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CREATE_NEW_FLAGS } from './safe-fs';

/**
 * Writes data to path atomically (readers see the old or the new file, never a torn one). The
 * directory must exist (the caller checks it); the temporary file is always a new file
 * (O_EXCL | O_NOFOLLOW), so nothing planted under its name is written through.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, CREATE_NEW_FLAGS, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    unlinkSync(tmp); // left by a crashed run with our pid, or planted: removes the name, never its target
    fd = openSync(tmp, CREATE_NEW_FLAGS, mode);
  }
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
