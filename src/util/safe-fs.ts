/**
 * Opening afsteer's own files without following links planted there or blocking on special
 * files: directories on the way must be owned by root (or this user) and not writable by others
 * (sticky ones such as /tmp excepted); files are opened with O_NOFOLLOW | O_NONBLOCK and must be
 * regular files owned by root (or this user) with one link. Anything else is an UnsafePathError.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, type Stats, statSync } from 'node:fs';

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_APPEND, O_NOFOLLOW, O_NONBLOCK, O_EXCL } = constants;
/** Flags for reading one of afsteer's files. */
export const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
/** Flags for the node lock file (created if missing). */
export const LOCK_FLAGS = O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK;
/** Flags for appending to the log file (created if missing). */
export const APPEND_FLAGS = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK;
/** Flags for a new temporary file (never an existing one). */
export const CREATE_NEW_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK;

/** A path that is not what afsteer needs it to be (a planted link, a FIFO, someone else's file, ...). */
export class UnsafePathError extends Error {
  readonly code = 'EUNSAFEPATH';
  /** path: the offending path; reason: what is wrong with it. */
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path} ${reason}`, options);
    this.name = 'UnsafePathError';
  }
}

const euid = () => process.geteuid?.() ?? 0;
const trustedOwner = (uid: number) => uid === 0 || uid === euid();

/** What kind of file st is, for messages. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}

/** Why a directory with these attributes may not be on afsteer's paths, or undefined (pure). */
export function dirProblem(st: { uid: number; mode: number; isDirectory: boolean }, owner = trustedOwner): string | undefined {
  if (!st.isDirectory) return 'is not a directory';
  if (!owner(st.uid)) return `is owned by uid ${st.uid}, not root`;
  if (st.mode & 0o022 && !(st.mode & 0o1000)) return `is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/**
 * Makes sure dir exists and every directory from / down to it is trusted (dirProblem); creates
 * the missing ones with mode. dir itself must not be a symbolic link; a link on the way must be
 * owned by root and lead to a trusted directory.
 */
export function ensureTrustedDir(dir: string, mode = 0o700): void {
  let cur = '';
  const parts = dir.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    cur += '/' + parts[i];
    const last = i === parts.length - 1;
    let st: Stats;
    try {
      st = lstatSync(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UnsafePathError(cur, 'cannot be examined', { cause: err });
      try {
        mkdirSync(cur, { mode });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UnsafePathError(cur, 'cannot be created', { cause: e });
      }
      st = lstatSync(cur);
    }
    if (st.isSymbolicLink()) {
      if (last) throw new UnsafePathError(cur, 'is a symbolic link; give the directory itself');
      if (!trustedOwner(st.uid)) throw new UnsafePathError(cur, `is a symbolic link owned by uid ${st.uid}, not root`);
      try {
        st = statSync(cur);
      } catch (err) {
        throw new UnsafePathError(cur, 'is a dangling symbolic link', { cause: err });
      }
    }
    const p = dirProblem({ uid: st.uid, mode: st.mode, isDirectory: st.isDirectory() });
    if (p) throw new UnsafePathError(cur, p);
  }
}

/** Why an open file with these attributes may not be used as one of afsteer's files, or undefined (pure). */
export function fileProblem(st: Stats, owner = trustedOwner): string | undefined {
  if (!st.isFile()) return `is ${fileKind(st)}, not a regular file`;
  if (!owner(st.uid)) return `is owned by uid ${st.uid}, not root`;
  if (st.nlink > 1) return `has ${st.nlink} hard links`;
  return undefined;
}

/** Opens path with flags (which include O_NOFOLLOW | O_NONBLOCK) and checks it is one of afsteer's regular files; returns the fd. */
export function openOwnFile(path: string, flags: number, mode = 0o600): number {
  let fd: number;
  try {
    fd = openSync(path, flags, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !(flags & O_CREAT)) throw err;
    if (code === 'ELOOP') throw new UnsafePathError(path, 'is a symbolic link', { cause: err });
    if (code === 'ENXIO') throw new UnsafePathError(path, 'is a FIFO or socket, not a regular file', { cause: err });
    if (code === 'EISDIR') throw new UnsafePathError(path, 'is a directory, not a regular file', { cause: err });
    if (code === 'EEXIST') throw err;
    throw new UnsafePathError(path, `cannot be opened (${code ?? 'error'})`, { cause: err });
  }
  const problem = fileProblem(fstatSync(fd));
  if (problem) {
    closeSync(fd);
    throw new UnsafePathError(path, problem);
  }
  return fd;
}

/** Contents of one of afsteer's files (see openOwnFile); a missing file throws ENOENT as readFileSync does. */
export function readOwnFile(path: string): string {
  const fd = openOwnFile(path, READ_FLAGS);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
