/** Network namespace files: proving a path is one (without blocking on anything else), and entering one for a synchronous section. */
import { closeSync, constants, fstatSync, openSync, readlinkSync, statfsSync, statSync } from 'node:fs';
import { CLONE_NEWNET, setns } from '../native/libc';

/** statfs f_type of nsfs, where namespace files live (as containernetworking's pkg/ns checks). */
export const NSFS_MAGIC = 0x6e736673;

/** Identity of a namespace file: st_dev and st_ino of the namespace inode. */
export interface NetnsId {
  dev: number;
  ino: number;
}

/** A network namespace file held open; enter it through path (/proc/self/fd/N), so it cannot be swapped underneath. */
export interface NetnsHandle extends NetnsId {
  fd: number;
  path: string;
  close(): void;
}

/** The path is not a network namespace (a regular file, FIFO, directory, another namespace type, missing). */
export class NotANetnsError extends Error {
  /** path: what was given; reason: what it is instead. */
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path} is not a network namespace: ${reason}`, options);
    this.name = 'NotANetnsError';
  }
}

/**
 * Opens the network namespace at path. statfs first (it opens nothing, so a FIFO or device is
 * never opened), then open O_RDONLY | O_NONBLOCK and prove from the fd that it is a network
 * namespace: /proc/self/fd/N reads "net:[inode]" for a /proc namespace file; a bind mount
 * (/run/netns/...) reads as its path, so the kernel decides: setns(CLONE_NEWNET) into it and
 * straight back. Links are followed (/var/run/netns, /proc/PID/ns/net).
 */
export function openNetns(path: string): NetnsHandle {
  let magic: number;
  try {
    magic = Number(statfsSync(path).type);
  } catch (err) {
    throw new NotANetnsError(
      path,
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : `cannot examine it (${(err as NodeJS.ErrnoException).code})`,
      { cause: err },
    );
  }
  if (magic !== NSFS_MAGIC) throw new NotANetnsError(path, 'it is not on nsfs (not a namespace file or a bind mount of one)');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new NotANetnsError(path, `cannot open it (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
  try {
    const proc = `/proc/self/fd/${fd}`;
    const link = readlinkSync(proc);
    const type = /^([a-z_]+):\[\d+\]$/.exec(link)?.[1];
    if (type !== undefined && type !== 'net') throw new NotANetnsError(path, `it is a ${type} namespace`);
    if (type === undefined) {
      try {
        inNetns(proc, () => undefined);
      } catch (err) {
        throw new NotANetnsError(path, `the kernel refuses it as one (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
          cause: err,
        });
      }
    }
    const st = fstatSync(fd);
    return { fd, path: proc, dev: st.dev, ino: st.ino, close: () => closeSync(fd) };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Identities of the host's network namespace (pid 1's, when readable) and of this thread's own. */
export function ownAndHostNetns(): NetnsId[] {
  const out: NetnsId[] = [];
  for (const p of ['/proc/thread-self/ns/net', '/proc/1/ns/net']) {
    try {
      const st = statSync(p);
      out.push({ dev: st.dev, ino: st.ino });
    } catch {
      // /proc/1 may be hidden (no CAP_SYS_PTRACE, other pid namespace): the own namespace still counts.
    }
  }
  return out;
}

/** True when two namespace identities are the same namespace. */
export function sameNetns(a: NetnsId, b: NetnsId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Runs fn with the calling thread in the network namespace at nsPath and always returns to
 * the original one. fn must be synchronous: sockets it creates stay bound to nsPath's
 * namespace afterwards, which is how netlink sockets for a pod are made.
 */
export function inNetns<T>(nsPath: string, fn: () => T): T {
  const self = openSync('/proc/thread-self/ns/net', 'r');
  let target: number;
  try {
    target = openSync(nsPath, 'r');
  } catch (err) {
    closeSync(self);
    throw err;
  }
  try {
    setns(target, CLONE_NEWNET);
    try {
      return fn();
    } finally {
      setns(self, CLONE_NEWNET);
    }
  } finally {
    closeSync(target);
    closeSync(self);
  }
}
