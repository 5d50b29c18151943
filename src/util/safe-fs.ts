/**
 * Opening afsteer's own files without following links planted there or blocking on special
 * files: directories on the way must be owned by root (or this user) and not writable by others
 * (sticky ones such as /tmp excepted); files are opened with O_NOFOLLOW | O_NONBLOCK and must be
 * regular files owned by root (or this user) with one link. Anything else is an UnsafePathError.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

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

// ─── Paths beneath a root, size-capped reads, exclusive temp files (the installer; loadKey) ───
// `afsteer install --root DIR` writes and removes only beneath DIR: every directory from DIR down
// is a real directory (a symbolic link beneath the root is refused, never followed) that only
// root (or this user) can write, so nobody else can swap a component between the check and the
// use; the last component is never followed either (lstat, O_NOFOLLOW, O_EXCL, and rename(2)
// and unlink(2), which act on the name itself).

/** True for an owner afsteer trusts: root, or the user running it. */
export function trustedUid(uid: number): boolean {
  return trustedOwner(uid);
}

/** Largest file read whole when no other cap applies (conflists, install.json, afsteerd.json). */
export const MAX_OWN_FILE_BYTES = 1 << 20;

/** Why rel is not a plain relative path (no empty, '.' or '..' component, no NUL), or undefined (pure). */
export function relPathProblem(rel: string): string | undefined {
  if (rel === '') return 'is empty';
  if (rel.startsWith('/')) return 'is absolute, not relative to the root';
  if (rel.includes('\0')) return 'contains NUL';
  if (rel.split('/').some((c) => c === '' || c === '.' || c === '..')) return "has an empty, '.' or '..' component";
  return undefined;
}

/** Missing directories for walkBeneath to create: the mode of each (by relative path); those made are appended to made. */
export interface CreateDirs {
  mode: (rel: string) => number;
  made: string[];
}

/**
 * Checks every directory from root/FIRST down to root/relDir ('' is the root itself, which the
 * caller checks with ensureTrustedDir): a real directory, never a symbolic link, owned by root
 * (or this user) and writable by nobody else (sticky ones excepted, as dirProblem). Returns the first
 * missing one (relative), or undefined when all exist; with create, makes the missing ones.
 * Anything else is an UnsafePathError naming the path.
 */
export function walkBeneath(root: string, relDir: string, create?: CreateDirs): string | undefined {
  if (relDir === '' || relDir === '.') return undefined;
  const bad = relPathProblem(relDir);
  if (bad) throw new UnsafePathError(join(root, relDir), bad);
  const parts = relDir.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join('/');
    const abs = join(root, rel);
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UnsafePathError(abs, 'cannot be examined', { cause: err });
      if (!create) return rel;
      try {
        mkdirSync(abs, { mode: create.mode(rel) });
      } catch (e) {
        throw new UnsafePathError(abs, 'cannot be created', { cause: e });
      }
      create.made.push(rel);
      st = lstatSync(abs);
    }
    if (st.isSymbolicLink()) throw new UnsafePathError(abs, 'is a symbolic link: refused, never followed (make it a real directory)');
    if (!st.isDirectory()) throw new UnsafePathError(abs, `is ${fileKind(st)}, not a directory`);
    const p = dirProblem({ uid: st.uid, mode: st.mode, isDirectory: true });
    if (p) throw new UnsafePathError(abs, p);
  }
  return undefined;
}

/** The directory part of a relative path ('' for a name at the root). */
const relDirOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');

/** lstat of root/rel once walkBeneath has checked its directories; undefined when it (or a directory on the way) is missing. */
export function lstatBeneath(root: string, rel: string): Stats | undefined {
  const bad = relPathProblem(rel);
  if (bad) throw new UnsafePathError(join(root, rel), bad);
  if (walkBeneath(root, relDirOf(rel)) !== undefined) return undefined;
  try {
    return lstatSync(join(root, rel));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UnsafePathError(join(root, rel), 'cannot be examined', { cause: err });
  }
}

/**
 * One of afsteer's files, whole (openOwnFile: never through a link, never blocking on a FIFO, a
 * regular file of root or this user with one link), refused when larger than maxBytes.
 */
export function readOwnFileCapped(path: string, maxBytes = MAX_OWN_FILE_BYTES): Buffer {
  const fd = openOwnFile(path, READ_FLAGS);
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) throw new UnsafePathError(path, `is ${size} bytes, more than the ${maxBytes} accepted`);
    const buf = Buffer.alloc(maxBytes + 1);
    let off = 0;
    for (let n = 0; off < buf.length && (n = readSync(fd, buf, off, buf.length - off, off)) > 0; ) off += n;
    if (off > maxBytes) throw new UnsafePathError(path, `grew past the ${maxBytes} bytes accepted while being read`);
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/**
 * root/rel whole (readOwnFileCapped) once lstatBeneath found a regular file there — a FIFO,
 * device or socket is refused without being opened; undefined when it is missing.
 */
export function readBeneath(root: string, rel: string, maxBytes = MAX_OWN_FILE_BYTES): Buffer | undefined {
  const st = lstatBeneath(root, rel);
  if (!st) return undefined;
  if (!st.isFile()) throw new UnsafePathError(join(root, rel), `is ${fileKind(st)}, not a regular file`);
  return readOwnFileCapped(join(root, rel), maxBytes);
}

/** A fresh hidden name beside path: .NAME.TAG.RANDOM.tmp (16 random hex digits, never a pid another run could predict). */
export function tempNameBeside(path: string, tag: string): string {
  return join(dirname(path), `.${basename(path)}.${tag}.${randomBytes(8).toString('hex')}.tmp`);
}

/**
 * A new file beside path (tempNameBeside), created exclusively (O_EXCL | O_NOFOLLOW: never an
 * existing file or a link planted there), holding data or what fill writes to its fd, with mode;
 * returns its path (removed again when writing fails).
 */
export function writeExclusiveTemp(path: string, tag: string, mode: number, data: Uint8Array | ((fd: number) => void)): string {
  const tmp = tempNameBeside(path, tag);
  const fd = openSync(tmp, CREATE_NEW_FLAGS, mode);
  try {
    if (typeof data === 'function') data(fd);
    else for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
    fchmodSync(fd, mode);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  return tmp;
}

// --- daemon files: afsteerd's stateDir, pins and TLS files, and the control socket as its clients check it ---

/** Why a directory afsteer creates files in by name may not be used (dirProblem, and no exception for sticky ones), or undefined (pure). */
export function privateDirProblem(st: { uid: number; mode: number; isDirectory: boolean }, owner = trustedOwner): string | undefined {
  return dirProblem(st, owner) ?? (st.mode & 0o022 ? `is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})` : undefined);
}

/**
 * ensureTrustedDir, and dir itself writable by root (or this user) only, sticky or not: the
 * directories where afsteerd creates and reads files by name (stateDir, the control socket's).
 */
export function ensurePrivateDir(dir: string, mode = 0o700): void {
  ensureTrustedDir(dir, mode);
  const st = lstatSync(dir);
  const p = privateDirProblem({ uid: st.uid, mode: st.mode, isDirectory: st.isDirectory() });
  if (p) throw new UnsafePathError(dir, p);
}

/**
 * path with its symbolic links resolved, refusing (UnsafePathError naming the first culprit) a
 * directory on the way that dirCheck refuses (default dirProblem: root's or this user's, not
 * writable by others unless sticky) and a link not owned by root (or this user). The result names
 * no link, so opening it with O_NOFOLLOW opens what was checked. A missing component throws
 * ENOENT as lstat does.
 */
export function resolveTrustedPath(path: string, dirCheck: typeof dirProblem = dirProblem): string {
  const todo = path.split('/').reverse();
  let cur = '';
  let links = 0;
  while (todo.length) {
    const part = todo.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      cur = cur.slice(0, cur.lastIndexOf('/'));
      continue;
    }
    const next = `${cur}/${part}`;
    const st = lstatSync(next);
    if (st.isSymbolicLink()) {
      if (++links > 40) throw new UnsafePathError(path, 'goes through more than 40 symbolic links');
      if (!trustedOwner(st.uid)) throw new UnsafePathError(next, `is a symbolic link owned by uid ${st.uid}, not root`);
      const target = readlinkSync(next);
      if (target.startsWith('/')) cur = '';
      todo.push(...target.split('/').reverse());
      continue;
    }
    if (todo.some((t) => t !== '' && t !== '.')) {
      const p = dirCheck({ uid: st.uid, mode: st.mode, isDirectory: st.isDirectory() });
      if (p) throw new UnsafePathError(next, p);
    }
    cur = next;
  }
  return cur || '/';
}

/**
/** Why a directory may not be on the way to a file a config names (pure): it must be root's (or this user's); it may be writable by others. */
export function ownerDirProblem(st: { uid: number; mode: number; isDirectory: boolean }, owner = trustedOwner): string | undefined {
  if (!st.isDirectory) return 'is not a directory';
  return owner(st.uid) ? undefined : `is owned by uid ${st.uid}, not root`;
}

/**
 * A file a config or the command line names (the daemon config, etcd TLS files): its links
 * resolved (resolveTrustedPath) through directories of root (or this user) — writable by others
 * or not: a Kubernetes ConfigMap or Secret volume is a 0777 or 1777 directory only its container
 * reaches — each link and the file itself owned by root (or this user), so nothing another user
 * put there is read; then read whole (readOwnFileCapped). privateFile: also refused when group or
 * others may read or write it (a private key).
 */
export function readConfiguredFile(path: string, maxBytes = MAX_OWN_FILE_BYTES, privateFile = false): Buffer {
  const real = resolveTrustedPath(path, ownerDirProblem);
  if (privateFile) {
    const mode = lstatSync(real).mode;
    if (mode & 0o077)
      throw new UnsafePathError(real, `is readable or writable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return readOwnFileCapped(real, maxBytes);
}

/**
 * Checks that afsteerd's control socket at path may be talked to before connecting: its directory
 * trusted all the way (resolveTrustedPath) and itself writable by root (or this user) only, the
 * socket a socket (not a link) owned by root (or this user). Returns the path to connect to (its
 * directory's links resolved); a missing socket is left to connect() to report. Throws UnsafePathError.
 */
export function checkDaemonSocket(path: string): string {
  let dir: string;
  try {
    dir = resolveTrustedPath(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path;
    throw err;
  }
  const dst = lstatSync(dir);
  const dp = privateDirProblem({ uid: dst.uid, mode: dst.mode, isDirectory: dst.isDirectory() });
  if (dp) throw new UnsafePathError(dir, dp);
  const sock = `${dir === '/' ? '' : dir}/${basename(path)}`;
  let st: Stats;
  try {
    st = lstatSync(sock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return sock;
    throw new UnsafePathError(sock, 'cannot be examined', { cause: err });
  }
  if (st.isSymbolicLink()) throw new UnsafePathError(sock, 'is a symbolic link, not a socket');
  if (!st.isSocket()) throw new UnsafePathError(sock, `is ${fileKind(st)}, not a socket`);
  if (!trustedOwner(st.uid)) throw new UnsafePathError(sock, `is owned by uid ${st.uid}, not root`);
  return sock;
}
