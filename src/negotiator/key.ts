/** The cluster key: a file's raw bytes, refused unless it is a regular file only its owner can read, of ≥ 32 bytes. */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Shortest key accepted, in bytes. */
export const MIN_KEY_BYTES = 32;
const MAX_KEY_BYTES = 4096;

/** Reads the key file without following a symlink or blocking on a special file. */
export function loadKey(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `keyFile ${path}: ${code === 'ELOOP' ? 'is a symlink (refused)' : code === 'ENOENT' ? 'does not exist (make one: head -c 32 /dev/urandom > FILE; chmod 600 FILE)' : code}`,
      { cause: err },
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`keyFile ${path}: not a regular file`);
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
