/**
 * ctnetlink (NETLINK_NETFILTER, subsystem CTNETLINK) as far as afsteer uses it: a dump of the
 * conntrack entries of one address pair and protocol (filtered in the kernel with CTA_FILTER,
 * Linux ≥ 5.8, and again here), and an update of one entry's TCP flags (IPCTNL_MSG_CT_NEW
 * without NLM_F_CREATE: it changes an entry that exists, never makes one). The socket is raw
 * (koffi), bound to the network namespace of the thread that opened it, every receive bounded by
 * SO_RCVTIMEO. Layouts: linux/netfilter/nfnetlink_conntrack.h, nf_conntrack_tcp.h.
 */
import { closeFd, errnoError, recv, send, setsockopt, socket } from '../native/libc';
import type { Family } from './family';
import { addressBytes, bytesToAddress, canonical, familyOf } from './ip';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_NETFILTER = 12;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_RCVBUF = 8;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_MULTI = 0x2;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;
const NLA_F_NESTED = 0x8000;

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_GET = 1;

const CTA_TUPLE_ORIG = 1;
const CTA_PROTOINFO = 4;
const CTA_ZONE = 18;
const CTA_FILTER = 25;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL = 4;
const CTA_PROTOINFO_TCP_FLAGS_REPLY = 5;
const CTA_FILTER_ORIG_FLAGS = 1;
const CTA_FILTER_REPLY_FLAGS = 2;
const CTA_FILTER_FLAG_IP_SRC = 1 << 0;
const CTA_FILTER_FLAG_IP_DST = 1 << 1;
const CTA_FILTER_FLAG_PROTO_NUM = 1 << 3;

/** IP_CT_TCP_FLAG_BE_LIBERAL: window tracking off for this direction of this one connection. */
export const TCP_FLAG_BE_LIBERAL = 0x08;
/** IPPROTO_TCP. */
export const IPPROTO_TCP = 6;

/** One conntrack entry as a dump names it. */
export interface CtEntry {
  family: Family;
  proto: number;
  /** The original direction's addresses (canonical) and ports (TCP/UDP/SCTP). */
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** The CTA_TUPLE_ORIG attribute as the kernel sent it (names the entry in an update, zone included). */
  tupleAttr: Buffer;
  /** The CTA_ZONE attribute, when the entry is in a zone other than 0. */
  zoneAttr?: Buffer;
  /** TCP: the per-direction flags (IP_CT_TCP_FLAG_*), when the dump carried them. */
  tcpFlags?: { original: number; reply: number };
}

// ---- encoding ----------------------------------------------------------------------------------

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const nested = (type: number, ...children: Buffer[]) => attr(type | NLA_F_NESTED, Buffer.concat(children));
const u8 = (v: number) => Buffer.from([v]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

function message(type: number, flags: number, seq: number, family: Family, attrs: Buffer[]): Buffer {
  const body = Buffer.concat(attrs);
  const m = Buffer.alloc(16 + 4 + body.length);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE((NFNL_SUBSYS_CTNETLINK << 8) | type, 4);
  m.writeUInt16LE(flags, 6);
  m.writeUInt32LE(seq >>> 0, 8);
  m.writeUInt32LE(0, 12);
  m.writeUInt8(family === 4 ? 2 : 10, 16); // nfgen_family: AF_INET / AF_INET6
  m.writeUInt8(0, 17); // NFNETLINK_V0
  m.writeUInt16BE(0, 18); // res_id
  body.copy(m, 20);
  return m;
}

/**
 * A dump request for the family's entries over proto, with the original direction src → dst when
 * given (filtered in the kernel). IPv6 addresses are never put in the kernel filter: Linux's
 * ctnetlink_filter_match_tuple compares them with `!ipv6_addr_cmp()`, which drops the entries
 * whose addresses are equal to the filter's (the ones asked for); IPv6 dumps filter by protocol in
 * the kernel and by address here.
 */
export function encodeDumpRequest(seq: number, family: Family, proto: number, tuple?: { src: string; dst: string }): Buffer {
  if (tuple && (familyOf(canonical(tuple.src)) !== family || familyOf(canonical(tuple.dst)) !== family))
    throw new Error(`not IPv${family} addresses: ${tuple.src} ${tuple.dst}`);
  const byAddress = tuple !== undefined && family === 4;
  const ip = byAddress
    ? [
        nested(
          CTA_TUPLE_IP,
          attr(CTA_IP_V4_SRC, addressBytes(canonical(tuple.src))),
          attr(CTA_IP_V4_DST, addressBytes(canonical(tuple.dst))),
        ),
      ]
    : [];
  const flags = (byAddress ? CTA_FILTER_FLAG_IP_SRC | CTA_FILTER_FLAG_IP_DST : 0) | CTA_FILTER_FLAG_PROTO_NUM;
  return message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, family, [
    nested(CTA_TUPLE_ORIG, ...ip, nested(CTA_TUPLE_PROTO, attr(CTA_PROTO_NUM, u8(proto)))),
    nested(CTA_FILTER, attr(CTA_FILTER_ORIG_FLAGS, u32(flags)), attr(CTA_FILTER_REPLY_FLAGS, u32(0))),
  ]);
}

/** An update setting (flags & mask) in both directions' TCP flags of the entry; it changes only an entry that exists. */
export function encodeTcpFlagsUpdate(seq: number, e: CtEntry, flags: number, mask: number): Buffer {
  const fm = Buffer.from([flags, mask]);
  return message(IPCTNL_MSG_CT_NEW, NLM_F_REQUEST | NLM_F_ACK, seq, e.family, [
    e.tupleAttr,
    ...(e.zoneAttr ? [e.zoneAttr] : []),
    nested(CTA_PROTOINFO, nested(CTA_PROTOINFO_TCP, attr(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, fm), attr(CTA_PROTOINFO_TCP_FLAGS_REPLY, fm))),
  ]);
}

// ---- decoding ----------------------------------------------------------------------------------

/** One netlink message of a reply. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** After the netlink header (for ctnetlink: nfgenmsg, then attributes). */
  payload: Buffer;
}

/** Splits a datagram into netlink messages; a truncated one ends the list. */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      payload: buf.subarray(off + 16, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

/** Attributes of a block by type (NLA_F_NESTED and byte-order bits masked off), each with its raw bytes. */
function attrs(buf: Buffer): Map<number, { value: Buffer; raw: Buffer }> {
  const out = new Map<number, { value: Buffer; raw: Buffer }>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & 0x3fff, { value: buf.subarray(off + 4, off + len), raw: buf.subarray(off, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

/** A ctnetlink entry message (after the netlink header) decoded, or undefined when it lacks an original tuple. */
export function decodeEntry(payload: Buffer): CtEntry | undefined {
  if (payload.length < 4) return undefined;
  const family: Family | undefined = payload[0] === 2 ? 4 : payload[0] === 10 ? 6 : undefined;
  if (!family) return undefined;
  const top = attrs(payload.subarray(4));
  const tuple = top.get(CTA_TUPLE_ORIG);
  if (!tuple) return undefined;
  const t = attrs(tuple.value);
  const ip = t.get(CTA_TUPLE_IP) && attrs(t.get(CTA_TUPLE_IP)!.value);
  const proto = t.get(CTA_TUPLE_PROTO) && attrs(t.get(CTA_TUPLE_PROTO)!.value);
  const [s, d] = family === 4 ? [CTA_IP_V4_SRC, CTA_IP_V4_DST] : [CTA_IP_V6_SRC, CTA_IP_V6_DST];
  const src = ip?.get(s)?.value;
  const dst = ip?.get(d)?.value;
  const num = proto?.get(CTA_PROTO_NUM)?.value;
  if (!src || !dst || !num || num.length < 1 || src.length !== (family === 4 ? 4 : 16) || dst.length !== src.length) return undefined;
  const e: CtEntry = {
    family,
    proto: num[0]!,
    src: bytesToAddress(src),
    dst: bytesToAddress(dst),
    tupleAttr: Buffer.from(tuple.raw),
  };
  const sp = proto?.get(CTA_PROTO_SRC_PORT)?.value;
  const dp = proto?.get(CTA_PROTO_DST_PORT)?.value;
  if (sp?.length === 2) e.sport = sp.readUInt16BE(0);
  if (dp?.length === 2) e.dport = dp.readUInt16BE(0);
  const zone = top.get(CTA_ZONE);
  if (zone && zone.value.length >= 2 && zone.value.readUInt16BE(0) !== 0) e.zoneAttr = Buffer.from(zone.raw);
  const info = top.get(CTA_PROTOINFO);
  const tcp = info && attrs(info.value).get(CTA_PROTOINFO_TCP);
  if (tcp) {
    const f = attrs(tcp.value);
    const o = f.get(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL)?.value;
    const r = f.get(CTA_PROTOINFO_TCP_FLAGS_REPLY)?.value;
    if (o && r && o.length >= 1 && r.length >= 1) e.tcpFlags = { original: o[0]!, reply: r[0]! };
  }
  return e;
}

// ---- the socket --------------------------------------------------------------------------------

/** ctnetlink refused or could not answer in time; errno set when the kernel said why. */
export class CtnetlinkError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CtnetlinkError';
  }
}

const ENOENT = 2;

/** A ctnetlink socket in the network namespace of the thread that opened it. */
export class ConntrackSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.alloc(256 * 1024);

  private constructor(
    private fd: number,
    private readonly timeoutMs: number,
  ) {}

  /** Opens a socket in this thread's network namespace; each receive waits at most timeoutMs. */
  static open(timeoutMs = 1000): ConntrackSocket {
    const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    try {
      const tv = Buffer.alloc(16);
      tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
      tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv);
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, u32(1 << 20));
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return new ConntrackSocket(fd, timeoutMs);
  }

  /** The family's entries over proto whose original direction matches one of the tuples (none given: all of them). */
  dump(family: Family, proto: number, tuples?: { src: string; dst: string }[]): CtEntry[] {
    const want = tuples && new Set(tuples.map((t) => `${canonical(t.src)}|${canonical(t.dst)}`));
    // IPv4: one kernel-filtered dump per tuple; IPv6 (see encodeDumpRequest) and no tuples: one dump.
    const requests = family === 4 && tuples ? tuples.map((t) => encodeDumpRequest(0, 4, proto, t)) : [encodeDumpRequest(0, family, proto)];
    const out: CtEntry[] = [];
    for (const req of requests) {
      const seq = this.nextSeq();
      req.writeUInt32LE(seq, 8);
      send(this.live(), req);
      this.receive(seq, 'dump', (m) => {
        if (m.type !== ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW)) return;
        const e = decodeEntry(m.payload);
        // Filtered here too: IPv6, and kernels before 5.8 that ignore CTA_FILTER.
        if (e && e.family === family && e.proto === proto && (!want || want.has(`${e.src}|${e.dst}`))) out.push(e);
      });
    }
    return out;
  }

  /** Sets (flags & mask) in both directions of the entry; 'gone' when it no longer exists (it expired or was deleted meanwhile). */
  setTcpFlags(e: CtEntry, flags: number, mask: number): 'set' | 'gone' {
    const seq = this.nextSeq();
    send(this.live(), encodeTcpFlagsUpdate(seq, e, flags, mask));
    try {
      this.receive(seq, 'update', () => undefined);
    } catch (err) {
      if (err instanceof CtnetlinkError && err.errno === ENOENT) return 'gone';
      throw err;
    }
    return 'set';
  }

  /** Closes the socket. */
  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  private live(): number {
    if (this.fd < 0) throw new CtnetlinkError('the conntrack socket is closed');
    return this.fd;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) & 0x7fffffff;
    return this.seq;
  }

  /** Reads until the reply to seq ends (NLMSG_DONE, an ack, or an error), within the deadline. */
  private receive(seq: number, what: string, each: (m: NlMessage) => void): void {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      if (Date.now() > deadline) throw new CtnetlinkError(`ctnetlink ${what}: no complete reply within ${this.timeoutMs} ms`);
      let n: number;
      try {
        n = recv(this.fd, this.buf);
      } catch (err) {
        const e = (err as NodeJS.ErrnoException).errno;
        if (e === 11) throw new CtnetlinkError(`ctnetlink ${what}: no reply within ${this.timeoutMs} ms`, e, { cause: err });
        throw new CtnetlinkError(`ctnetlink ${what}: receive failed`, e, { cause: err });
      }
      for (const m of splitMessages(this.buf.subarray(0, n))) {
        if (m.seq !== seq) continue; // a late reply to an earlier request
        if (m.type === NLMSG_DONE) return;
        if (m.type === NLMSG_ERROR) {
          const code = m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0;
          if (code === 0) return;
          const cause = errnoError(`ctnetlink ${what}`, code);
          throw new CtnetlinkError(cause.message, code, { cause });
        }
        each(m);
        if (!(m.flags & NLM_F_MULTI)) return;
      }
    }
  }
}
