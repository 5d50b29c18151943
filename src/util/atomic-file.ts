/**
 * Atomic file writes: write a temporary file, rename it over the target, so readers see the old
 * or the new file, never a torn one. No fsync: afsteer's state describes kernel objects (filters,
 * bpffs pins) that do not survive a reboot either, so durability across power loss buys nothing.
 */
import { closeSync, openSync, renameSync, writeSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** Writes data to path atomically (readers see the old or the new file, never a torn one). */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
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
