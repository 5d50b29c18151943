/**
 * The cluster key: a file's raw bytes, refused unless it is a regular file of root (or this user)
 * with one link that only its owner can read, of 32 to 4096 bytes, reached through real
 * directories only root (or this user) can write — never through a symbolic link.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileProblem, walkBeneath } from '../util/safe-fs';

/** Shortest key accepted, in bytes. */
export const MIN_KEY_BYTES = 32;
const MAX_KEY_BYTES = 4096;

/** Reads the key file without following a symlink (the file's or a directory's) or blocking on a special file. */
export function loadKey(path: string): Buffer {
  const abs = resolve(path);
  try {
    walkBeneath('/', dirname(abs).slice(1)); // a missing directory: the open below says the file does not exist
  } catch (err) {
    throw new Error(`keyFile ${path}: ${(err as Error).message}`, { cause: err });
  }
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `keyFile ${path}: ${code === 'ELOOP' ? 'is a symlink (refused)' : code === 'ENOENT' ? 'does not exist (make one: head -c 32 /dev/urandom > FILE; chmod 600 FILE)' : code === 'ENXIO' ? 'is a socket or FIFO, not a regular file' : code}`,
      { cause: err },
    );
  }
  try {
    const st = fstatSync(fd);
    const problem = fileProblem(st);
    if (problem) throw new Error(`keyFile ${path}: ${problem.replace(/^is /, '')}`);
    if (st.mode & 0o077)
      throw new Error(`keyFile ${path}: readable or writable by group/others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    if (st.size < MIN_KEY_BYTES) throw new Error(`keyFile ${path}: ${st.size} bytes, needs at least ${MIN_KEY_BYTES}`);
    if (st.size > MAX_KEY_BYTES) throw new Error(`keyFile ${path}: ${st.size} bytes, at most ${MAX_KEY_BYTES}`);
    const key = Buffer.alloc(st.size);
    let off = 0;
    while (off < key.length) {
      const n = readSync(fd, key, off, key.length - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off < MIN_KEY_BYTES) throw new Error(`keyFile ${path}: short read`);
    return key.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}
