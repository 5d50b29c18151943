/** libc calls Node has no API for: setns(2), flock(2), mount(2), mmap(2) and raw netlink sockets (socket, setsockopt, send, recv), through koffi. */
import { ffi } from './koffi';

let fns: ReturnType<typeof bind> | undefined;
function bind() {
  const libc = ffi.load('libc.so.6');
  return {
    setns: libc.func('int setns(int fd, int nstype)'),
    flock: libc.func('int flock(int fd, int operation)'),
    mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
    recv: libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
    close: libc.func('int close(int fd)'),
    mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
  };
}
/** libc functions, bound on first use (never at module load, so the build-time preload and VERSION stay native-free). */
function libc(): ReturnType<typeof bind> {
  return (fns ??= bind());
}

/** CLONE_NEWNET: the network namespace type for setns. */
export const CLONE_NEWNET = 0x40000000;
/** flock operations. */
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

/** Last errno set by a koffi call. */
export function errno(): number {
  return ffi.errno();
}

/** Moves the calling thread into the namespace open at fd; throws with errno on failure. */
export function setns(fd: number, nstype: number): void {
  if (libc().setns(fd, nstype) !== 0) throw errnoError('setns', errno());
}

/** socket(2); throws with errno on failure. */
export function socket(domain: number, type: number, protocol: number): number {
  const fd = libc().socket(domain, type, protocol) as number;
  if (fd < 0) throw errnoError('socket', errno());
  return fd;
}

/** setsockopt(2) with a value in a buffer; throws with errno on failure. */
export function setsockopt(fd: number, level: number, name: number, value: Buffer): void {
  if (libc().setsockopt(fd, level, name, value, value.length) !== 0) throw errnoError('setsockopt', errno());
}

/** send(2) of the whole buffer (a datagram socket sends it whole or not at all); throws with errno on failure. */
export function send(fd: number, buf: Buffer): void {
  for (;;) {
    if (Number(libc().send(fd, buf, buf.length, 0)) >= 0) return;
    const e = errno();
    if (e !== EINTR) throw errnoError('send', e);
  }
}

/** recv(2) into buf; returns the length read, throws with errno (EAGAIN: the socket's receive timeout ran out). */
export function recv(fd: number, buf: Buffer): number {
  for (;;) {
    const n = Number(libc().recv(fd, buf, buf.length, 0));
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) throw errnoError('recv', e);
  }
}

/** close(2) of a descriptor made by socket(). */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** Mounts a filesystem (mount(2)); throws with errno on failure. */
export function mount(source: string, target: string, fstype: string, data: string): void {
  if (libc().mount(source, target, fstype, 0, data) !== 0) throw errnoError(`mount ${fstype} on ${target}`, errno());
}

/** Maps length bytes of fd shared and read-only (e.g. a BPF_F_MMAPABLE map); the memory stays mapped for the process's life. Throws with errno. */
export function mmapReadOnly(fd: number, length: number): ArrayBuffer {
  const PROT_READ = 1;
  const MAP_SHARED = 1;
  const ptr = libc().mmap(null, length, PROT_READ, MAP_SHARED, fd, 0);
  // MAP_FAILED is (void *) -1.
  if (!ptr || ffi.address(ptr) === 0xffffffffffffffffn) throw errnoError('mmap', errno());
  return ffi.view(ptr, length);
}

/** Tries flock(fd, op); returns false when it would block, throws on other errors. */
export function tryFlock(fd: number, op: number): boolean {
  for (;;) {
    if (libc().flock(fd, op) === 0) return true;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EWOULDBLOCK) return false;
    throw errnoError('flock', e);
  }
}

/** An Error carrying an errno value and the name of the call that failed. */
export function errnoError(call: string, e: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${call} failed: errno ${e} (${errnoName(e)})`);
  err.errno = e;
  err.syscall = call;
  err.code = errnoName(e);
  return err;
}

const names: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  9: 'EBADF',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  24: 'EMFILE',
  28: 'ENOSPC',
  95: 'EOPNOTSUPP',
  7: 'E2BIG',
  38: 'ENOSYS',
  524: 'ENOTSUPP',
  93: 'EPROTONOSUPPORT',
  105: 'ENOBUFS',
};

/** Symbolic name of an errno value, for messages. */
export function errnoName(e: number): string {
  return names[e] ?? `errno${e}`;
}
