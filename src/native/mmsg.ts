/**
 * A nonblocking UDP socket driven through koffi with batched I/O: datagrams queued into memory laid
 * out as `struct mmsghdr` arrays and sent with one sendmmsg(2), every waiting datagram taken with
 * recvmmsg(2) in bursts, each with the kernel's receive timestamp (SO_TIMESTAMPNS), so a reader
 * that takes them late still knows when they came. Node's dgram has no batched calls and costs
 * one event-loop wakeup, one callback and several allocations per datagram. Linux, 64-bit (LP64
 * struct layouts).
 */
import { ffi } from './koffi';
import { errnoError } from './libc';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SO_TIMESTAMPNS = 35;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;
const CLOCK_REALTIME = 0;

/** sizeof(struct mmsghdr) on LP64: msghdr (56) + msg_len (4) + padding. */
const MMSG = 64;
/** sizeof(struct iovec). */
const IOV = 16;
/** Room for a sockaddr_in6 (28). */
const NAME = 32;
/** Room for one SCM_TIMESTAMPNS control message: cmsghdr (16) + timespec (16), and spare. */
const CTRL = 64;

let fns: ReturnType<typeof bind> | undefined;
function bind() {
  const libc = ffi.load('libc.so.6');
  return {
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)'),
    bind: libc.func('int bind(int fd, void *addr, uint32_t len)'),
    sendmmsg: libc.func('int sendmmsg(int fd, void *msgvec, uint32_t vlen, int flags)'),
    recvmmsg: libc.func('int recvmmsg(int fd, void *msgvec, uint32_t vlen, int flags, void *timeout)'),
    close: libc.func('int close(int fd)'),
    clockGettime: libc.func('int clock_gettime(int clock, void *ts)'),
    malloc: libc.func('void *malloc(size_t size)'),
    free: libc.func('void free(void *ptr)'),
  };
}
/** libc, bound on first use (never at module load). */
function libc(): ReturnType<typeof bind> {
  return (fns ??= bind());
}

/** One region of native memory laid out for a batch of `slots` datagrams of up to `room` bytes. */
class Batch {
  readonly ptr: unknown;
  readonly dv: DataView;
  readonly u8: Uint8Array;
  readonly ab: ArrayBuffer;
  readonly names: number;
  readonly iovs: number;
  readonly data: number;
  readonly ctrls: number;

  constructor(
    readonly slots: number,
    readonly room: number,
  ) {
    this.iovs = slots * MMSG;
    this.names = this.iovs + slots * IOV;
    this.ctrls = this.names + slots * NAME;
    this.data = this.ctrls + slots * CTRL;
    const size = this.data + slots * room;
    this.ptr = libc().malloc(size);
    if (!this.ptr) throw new Error(`cannot allocate ${size} bytes for a datagram batch`);
    this.ab = ffi.view(this.ptr, size);
    this.dv = new DataView(this.ab);
    this.u8 = new Uint8Array(this.ab);
    // Headers, vectors, names and control space zeroed; the datagram slots are written before use
    // (left untouched, their pages are not resident until a burst needs them).
    this.u8.fill(0, 0, this.data);
    const base = ffi.address(this.ptr);
    for (let i = 0; i < slots; i++) {
      const h = i * MMSG;
      this.dv.setBigUint64(h, base + BigInt(this.names + i * NAME), true); // msg_name
      this.dv.setBigUint64(h + 16, base + BigInt(this.iovs + i * IOV), true); // msg_iov
      this.dv.setBigUint64(h + 24, 1n, true); // msg_iovlen
      this.dv.setBigUint64(this.iovs + i * IOV, base + BigInt(this.data + i * room), true); // iov_base
    }
  }

  /** Slot i's mmsghdr onwards, as a pointer argument (a view into the region: koffi passes its address). */
  from(i: number): Uint8Array {
    return this.u8.subarray(i * MMSG);
  }

  free(): void {
    libc().free(this.ptr);
  }
}

/** What one flush did. */
export interface FlushResult {
  sent: number;
  /** Datagrams the kernel refused (an unreachable network, a full buffer): dropped. */
  failed: number;
  /** sendmmsg calls made. */
  calls: number;
}

/** Receives one datagram: its bytes (valid only during the call), source address bytes (4 or 16, also only during the call), port, and how long ago the kernel took it in (ms; 0 when it gave no timestamp). */
export type BatchReceiver = (data: Buffer, address: Uint8Array, port: number, agoMs: number) => void;

/** A nonblocking UDP socket of one family with batched send and receive. */
export class BatchSocket {
  private readonly tx: Batch;
  private readonly rx: Batch;
  private readonly lens: Int32Array;
  private queued = 0;
  private closed = false;
  private readonly ts = Buffer.alloc(16);
  /** sendmmsg and recvmmsg calls made (for tests and metrics). */
  readonly calls = { send: 0, recv: 0 };
  /** Datagrams the kernel refused since the socket was opened (dropped), and datagrams sent. */
  failedTotal = 0;
  sentTotal = 0;

  private constructor(
    readonly fd: number,
    readonly family: 4 | 6,
    txSlots: number,
    rxSlots: number,
  ) {
    this.tx = new Batch(txSlots, 1280);
    this.rx = new Batch(rxSlots, 2048);
    this.lens = new Int32Array(txSlots);
    for (let i = 0; i < rxSlots; i++) {
      this.rx.dv.setBigUint64(i * MMSG + 32, ffi.address(this.rx.ptr) + BigInt(this.rx.ctrls + i * CTRL), true); // msg_control
      this.rx.dv.setBigUint64(this.rx.iovs + i * IOV + 8, 2048n, true); // iov_len
    }
  }

  /**
   * Opens and binds a socket of family to address (bytes) and port, nonblocking, with SO_REUSEADDR,
   * receive timestamps and buffers of bufferBytes (forced past the sysctl limits where allowed).
   * Throws an errno error (its code, e.g. EADDRNOTAVAIL, says why).
   */
  static open(family: 4 | 6, address: Uint8Array, port: number, bufferBytes = 4 << 20, txSlots = 512, rxSlots = 256): BatchSocket {
    const c = libc();
    const fd = c.socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw errnoError('socket', ffi.errno());
    try {
      const int = (v: number) => {
        const b = Buffer.alloc(4);
        b.writeInt32LE(v);
        return b;
      };
      const opt = (level: number, name: number, v: number) => c.setsockopt(fd, level, name, int(v), 4) === 0;
      if (!opt(SOL_SOCKET, SO_REUSEADDR, 1)) throw errnoError('setsockopt SO_REUSEADDR', ffi.errno());
      if (!opt(SOL_SOCKET, SO_TIMESTAMPNS, 1)) throw errnoError('setsockopt SO_TIMESTAMPNS', ffi.errno());
      if (!opt(SOL_SOCKET, SO_RCVBUFFORCE, bufferBytes)) opt(SOL_SOCKET, SO_RCVBUF, bufferBytes);
      if (!opt(SOL_SOCKET, SO_SNDBUFFORCE, bufferBytes)) opt(SOL_SOCKET, SO_SNDBUF, bufferBytes);
      if (family === 6 && !opt(IPPROTO_IPV6, IPV6_V6ONLY, 1)) throw errnoError('setsockopt IPV6_V6ONLY', ffi.errno());
      const sa = Buffer.alloc(NAME);
      const len = writeSockaddr(sa, 0, family, address, port);
      if (c.bind(fd, sa, len) !== 0) throw errnoError('bind', ffi.errno());
      return new BatchSocket(fd, family, txSlots, rxSlots);
    } catch (err) {
      c.close(fd);
      throw err;
    }
  }

  /** Datagrams queued and not yet flushed. */
  get pending(): number {
    return this.queued;
  }

  /** Queues one datagram to address (bytes of this socket's family) and port; flushes first when the batch is full. False: too long for a slot (not queued). */
  queue(address: Uint8Array, port: number, data: Uint8Array): boolean {
    if (this.closed || data.length > this.tx.room) return false;
    if (this.queued === this.tx.slots) this.flush();
    const i = this.queued++;
    const t = this.tx;
    t.dv.setUint32(i * MMSG + 8, writeSockaddr(t.u8, t.names + i * NAME, this.family, address, port), true); // msg_namelen
    t.u8.set(data, t.data + i * t.room);
    this.lens[i] = data.length;
    return true;
  }

  /** Sends every queued datagram in as few sendmmsg calls as it takes; a datagram the kernel refuses is dropped and counted. */
  flush(): FlushResult {
    const r: FlushResult = { sent: 0, failed: 0, calls: 0 };
    const n = this.queued;
    this.queued = 0;
    if (n === 0 || this.closed) return r;
    const t = this.tx;
    for (let i = 0; i < n; i++) t.dv.setUint32(t.iovs + i * IOV + 8, this.lens[i]!, true); // iov_len (high half stays 0)
    let at = 0;
    let again = 0;
    while (at < n) {
      const k = libc().sendmmsg(this.fd, at === 0 ? t.ptr : t.from(at), n - at, 0);
      r.calls++;
      this.calls.send++;
      if (k > 0) {
        r.sent += k;
        this.sentTotal += k;
        at += k;
        continue;
      }
      const e = ffi.errno();
      if (e === EINTR) continue;
      // A full buffer: tried once more, then the rest is dropped (a datagram service: best effort, counted).
      if (e === EAGAIN && again++ < 1) continue;
      // The first datagram is refused (e.g. ENETUNREACH while a family is down): dropped, the others go on.
      r.failed++;
      this.failedTotal++;
      at++;
    }
    return r;
  }

  /** Takes every datagram waiting (recvmmsg until the socket is empty, at most maxBursts calls), each handed to fn. Returns how many. */
  drain(fn: BatchReceiver, maxBursts = 64): number {
    if (this.closed) return 0;
    const x = this.rx;
    let total = 0;
    // Each datagram's age is taken when it is handed over: the realtime clock read once, then the
    // monotonic time spent since (handling a burst of thousands takes tens of ms).
    const now = this.realtimeNs();
    const t0 = performance.now();
    for (let burst = 0; burst < maxBursts; burst++) {
      for (let i = 0; i < x.slots; i++) {
        x.dv.setUint32(i * MMSG + 8, NAME, true); // msg_namelen
        x.dv.setUint32(i * MMSG + 40, CTRL, true); // msg_controllen (high half stays 0)
      }
      const k = libc().recvmmsg(this.fd, x.ptr, x.slots, MSG_DONTWAIT, null);
      this.calls.recv++;
      if (k <= 0) {
        if (k < 0 && ffi.errno() === EINTR) continue;
        break;
      }
      for (let i = 0; i < k; i++) {
        const h = i * MMSG;
        const truncated = (x.dv.getInt32(h + 48, true) & MSG_TRUNC) !== 0;
        const len = truncated ? x.room : x.dv.getUint32(h + 56, true);
        const name = x.names + i * NAME;
        const port = x.dv.getUint16(name + 2, false);
        const addr = this.family === 4 ? x.u8.subarray(name + 4, name + 8) : x.u8.subarray(name + 8, name + 24);
        fn(Buffer.from(x.ab, x.data + i * x.room, len), addr, port, this.ageMs(x, i, now) + (performance.now() - t0));
      }
      total += k;
      if (k < x.slots) break;
    }
    return total;
  }

  /** Closes the socket and frees its memory. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc().close(this.fd);
    this.tx.free();
    this.rx.free();
  }

  /** CLOCK_REALTIME in ns (as a double: sub-µs precision is not needed), the clock of SO_TIMESTAMPNS. */
  private realtimeNs(): number {
    libc().clockGettime(CLOCK_REALTIME, this.ts);
    return Number(this.ts.readBigInt64LE(0)) * 1e9 + Number(this.ts.readBigInt64LE(8));
  }

  /** How long before nowNs the kernel received message i (ms), from its SCM_TIMESTAMPNS; 0 without one (then only the time since nowNs counts). */
  private ageMs(x: Batch, i: number, nowNs: number): number {
    const c = x.ctrls + i * CTRL;
    const clen = x.dv.getUint32(i * MMSG + 40, true);
    if (clen < 32 || x.dv.getInt32(c + 8, true) !== SOL_SOCKET || x.dv.getInt32(c + 12, true) !== SO_TIMESTAMPNS) return 0;
    const at = Number(x.dv.getBigInt64(c + 16, true)) * 1e9 + Number(x.dv.getBigInt64(c + 24, true));
    return Math.max(0, (nowNs - at) / 1e6);
  }
}

/** Writes a sockaddr_in / sockaddr_in6 at off; returns its length. */
function writeSockaddr(b: Uint8Array, off: number, family: 4 | 6, address: Uint8Array, port: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (family === 4) {
    dv.setUint16(off, AF_INET, true);
    dv.setUint16(off + 2, port, false);
    b.set(address.subarray(0, 4), off + 4);
    dv.setBigUint64(off + 8, 0n);
    return 16;
  }
  dv.setUint16(off, AF_INET6, true);
  dv.setUint16(off + 2, port, false);
  dv.setUint32(off + 4, 0);
  b.set(address.subarray(0, 16), off + 8);
  dv.setUint32(off + 24, 0);
  return 28;
}
