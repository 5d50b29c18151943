/**
 * Packet building for the data-plane tests and the bench: Ethernet, IPv4 (options, fragments),
 * IPv6 (fragment header), UDP, TCP, ICMP/ICMPv6, SCTP, each with its own checksum code
 * (one's-complement sum, CRC32c). Independent of src/ on purpose: a test must not check the
 * program's bytes with the program's own codecs.
 */

// ---------------------------------------------------------------------------------------------
// Checksums (own implementations)
// ---------------------------------------------------------------------------------------------

/** Adds the big-endian 16-bit words of buf to acc (an odd last byte is padded with zero). */
export function sum16(buf: Uint8Array, acc = 0): number {
  for (let i = 0; i + 1 < buf.length; i += 2) acc += (buf[i]! << 8) | buf[i + 1]!;
  if (buf.length % 2) acc += buf[buf.length - 1]! << 8;
  return acc;
}

/** RFC 1071 Internet checksum of the concatenation of parts (each part but the last of even length). */
export function inetChecksum(...parts: Uint8Array[]): number {
  let acc = 0;
  for (const p of parts) acc = sum16(p, acc);
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

/** CRC32c (Castagnoli, reflected polynomial 0x82f63b78), as SCTP uses it. */
export function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Addresses and header builders (own implementations)
// ---------------------------------------------------------------------------------------------

/** An IPv4 address as 4 bytes. */
export function v4(a: string): Buffer {
  const parts = a.split('.').map(Number);
  if (parts.length !== 4) throw new Error(`bad IPv4 ${a}`);
  return Buffer.from(parts);
}

/** An IPv6 address (with "::" shortening) as 16 bytes. */
export function v6(a: string): Buffer {
  const [h, t] = a.split('::') as [string, string | undefined];
  const head = h ? h.split(':') : [];
  const tail = t ? t.split(':') : [];
  const groups = t === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  if (groups.length !== 8) throw new Error(`bad IPv6 ${a}`);
  const b = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) b.writeUInt16BE(parseInt(g, 16), i * 2);
  return b;
}

/** EtherType of IPv4. */
export const ETH_P_IP = 0x0800;
/** EtherType of IPv6. */
export const ETH_P_IPV6 = 0x86dd;
/** IP protocol numbers used by the frames. */
export const IPPROTO = { icmp: 1, ipip: 4, tcp: 6, udp: 17, ipv6: 41, frag: 44, icmpv6: 58, sctp: 132 } as const;

/** The pod's MAC (the crafted frames' source). */
export const POD_MAC = Buffer.from('02a0f5000001', 'hex');
/** The host veth's MAC (the crafted frames' destination). */
export const GW_MAC = Buffer.from('02a0f50000fe', 'hex');

/** An Ethernet frame (destination GW_MAC, source POD_MAC unless macs are given) around payload. */
export function eth(type: number, payload: Buffer, macs: { dst: Buffer; src: Buffer } = { dst: GW_MAC, src: POD_MAC }): Buffer {
  const h = Buffer.alloc(14);
  macs.dst.copy(h, 0);
  macs.src.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

/** Fields of ipv4(). */
export interface Ipv4Opts {
  src: string;
  dst: string;
  proto: number;
  payload: Buffer;
  tos?: number;
  ttl?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (multiple of 8). */
  fragOffset?: number;
  /** IP options, a multiple of 4 bytes. */
  options?: Buffer;
}

/** An IPv4 packet with a correct header checksum. */
export function ipv4(o: Ipv4Opts): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  if (opts.length % 4) throw new Error('IPv4 options must be padded to 4 bytes');
  const hl = 20 + opts.length;
  const h = Buffer.alloc(hl);
  h[0] = 0x40 | (hl / 4);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(hl + o.payload.length, 2);
  h.writeUInt16BE(o.id ?? 0, 4);
  h.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) / 8), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  v4(o.src).copy(h, 12);
  v4(o.dst).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, o.payload]);
}

/** Fields of ipv6(). */
export interface Ipv6Opts {
  src: string;
  dst: string;
  nh: number;
  payload: Buffer;
  tc?: number;
  flow?: number;
  hop?: number;
}

/** An IPv6 packet (40-byte header, no extension headers unless in payload). */
export function ipv6(o: Ipv6Opts): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((6 << 28) | ((o.tc ?? 0) << 20) | (o.flow ?? 0)) >>> 0, 0);
  h.writeUInt16BE(o.payload.length, 4);
  h[6] = o.nh;
  h[7] = o.hop ?? 64;
  v6(o.src).copy(h, 8);
  v6(o.dst).copy(h, 24);
  return Buffer.concat([h, o.payload]);
}

/** IPv6 fragment extension header (8 bytes). */
export function fragHeader6(nh: number, offset: number, more: boolean, id: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = nh;
  h.writeUInt16BE(offset | (more ? 1 : 0), 2);
  h.writeUInt32BE(id >>> 0, 4);
  return h;
}

/** The IPv4 (12-byte) or IPv6 (40-byte) pseudo-header of an upper-layer checksum. */
export function pseudoHeader(src: Buffer, dst: Buffer, proto: number, len: number): Buffer {
  if (src.length === 4) {
    const p = Buffer.alloc(12);
    src.copy(p, 0);
    dst.copy(p, 4);
    p[9] = proto;
    p.writeUInt16BE(len, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  src.copy(p, 0);
  dst.copy(p, 16);
  p.writeUInt32BE(len, 32);
  p[39] = proto;
  return p;
}

/** L4 endpoints of a packet, for pseudo-header checksums. */
export interface Flow {
  family: 4 | 6;
  src: string;
  dst: string;
}

/** An address of either family as bytes. */
export const ipBytes = (a: string) => (a.includes(':') ? v6(a) : v4(a));
/** The pseudo-header of flow f for an upper-layer checksum. */
export const pseudo = (f: Flow, proto: number, len: number) => pseudoHeader(ipBytes(f.src), ipBytes(f.dst), proto, len);

/** A UDP datagram; checksum over the pseudo-header, or 0 ("none", IPv4 only) when noChecksum. */
export function udp(f: Flow, sport: number, dport: number, data: Buffer, noChecksum = false): Buffer {
  const u = Buffer.alloc(8 + data.length);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(u.length, 4);
  data.copy(u, 8);
  if (!noChecksum) u.writeUInt16BE(inetChecksum(pseudo(f, IPPROTO.udp, u.length), u) || 0xffff, 6);
  return u;
}

/** A TCP segment (20-byte header plus options) with a correct checksum. */
export function tcp(
  f: Flow,
  o: { sport: number; dport: number; seq: number; ack: number; flags: number; window: number; options?: Buffer; data?: Buffer },
): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const data = o.data ?? Buffer.alloc(0);
  const hl = 20 + opts.length;
  const t = Buffer.alloc(hl + data.length);
  t.writeUInt16BE(o.sport, 0);
  t.writeUInt16BE(o.dport, 2);
  t.writeUInt32BE(o.seq >>> 0, 4);
  t.writeUInt32BE(o.ack >>> 0, 8);
  t[12] = (hl / 4) << 4;
  t[13] = o.flags;
  t.writeUInt16BE(o.window, 14);
  opts.copy(t, 20);
  data.copy(t, hl);
  t.writeUInt16BE(inetChecksum(pseudo(f, IPPROTO.tcp, t.length), t), 16);
  return t;
}

/** ICMP (v4) echo request; checksum over the message only. */
export function icmpEcho(id: number, seq: number, data: Buffer): Buffer {
  const m = Buffer.alloc(8 + data.length);
  m[0] = 8;
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(seq, 6);
  data.copy(m, 8);
  m.writeUInt16BE(inetChecksum(m), 2);
  return m;
}

/** ICMPv6 echo request; checksum over the IPv6 pseudo-header and the message. */
export function icmp6Echo(f: Flow, id: number, seq: number, data: Buffer): Buffer {
  const m = Buffer.alloc(8 + data.length);
  m[0] = 128;
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(seq, 6);
  data.copy(m, 8);
  m.writeUInt16BE(inetChecksum(pseudo(f, IPPROTO.icmpv6, m.length), m), 2);
  return m;
}

/** An SCTP packet with one DATA chunk and a CRC32c checksum (stored little-endian, as Linux does). */
export function sctpData(sport: number, dport: number, vtag: number, tsn: number, data: Buffer): Buffer {
  const chunkLen = 16 + data.length;
  const p = Buffer.alloc(12 + Math.ceil(chunkLen / 4) * 4);
  p.writeUInt16BE(sport, 0);
  p.writeUInt16BE(dport, 2);
  p.writeUInt32BE(vtag >>> 0, 4);
  const c = 12;
  p[c] = 0; // DATA
  p[c + 1] = 0x03; // B|E: unfragmented user message
  p.writeUInt16BE(chunkLen, c + 2);
  p.writeUInt32BE(tsn >>> 0, c + 4);
  p.writeUInt16BE(1, c + 8); // stream id
  p.writeUInt16BE(0, c + 10); // stream seq
  p.writeUInt32BE(46, c + 12); // PPID
  data.copy(p, c + 16);
  p.writeUInt32LE(crc32c(p), 8);
  return p;
}

/** SCTP chunk types the tests build. */
export const SCTP_CHUNK = { data: 0, init: 1, initAck: 2, heartbeat: 4, heartbeatAck: 5, cookieEcho: 10, cookieAck: 11 } as const;

/** One SCTP chunk: its type, flags and value (padded to 4 bytes in the packet). */
export interface SctpChunk {
  type: number;
  flags?: number;
  value?: Buffer;
}

/** An SCTP TLV parameter (padded to 4 bytes). */
export function sctpParam(type: number, value: Buffer): Buffer {
  const p = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  p.writeUInt16BE(type, 0);
  p.writeUInt16BE(4 + value.length, 2);
  value.copy(p, 4);
  return p;
}

/** The value of an INIT or INIT ACK chunk: initiate tag, a_rwnd 65,536, 1 stream each way, the initial TSN, then params. */
export function sctpInitValue(initTag: number, tsn: number, params: Buffer = Buffer.alloc(0)): Buffer {
  const v = Buffer.alloc(16);
  v.writeUInt32BE(initTag >>> 0, 0);
  v.writeUInt32BE(65536, 4);
  v.writeUInt16BE(1, 8);
  v.writeUInt16BE(1, 10);
  v.writeUInt32BE(tsn >>> 0, 12);
  return Buffer.concat([v, params]);
}

/** The value of a DATA chunk: TSN, stream 1, sequence 0, PPID 46, then the user data. */
export function sctpDataValue(tsn: number, data: Buffer): Buffer {
  const v = Buffer.alloc(12);
  v.writeUInt32BE(tsn >>> 0, 0);
  v.writeUInt16BE(1, 4);
  v.writeUInt32BE(46, 8);
  return Buffer.concat([v, data]);
}

/** An SCTP packet of chunks, with a CRC32c checksum (stored little-endian, as Linux does). */
export function sctpPacket(sport: number, dport: number, vtag: number, chunks: SctpChunk[]): Buffer {
  const parts = chunks.map((c) => {
    const value = c.value ?? Buffer.alloc(0);
    const b = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
    b[0] = c.type;
    b[1] = c.flags ?? 0;
    b.writeUInt16BE(4 + value.length, 2);
    value.copy(b, 4);
    return b;
  });
  const h = Buffer.alloc(12);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(vtag >>> 0, 4);
  const p = Buffer.concat([h, ...parts]);
  p.writeUInt32LE(crc32c(p), 8);
  return p;
}

/** A deterministic payload. */
export function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 17) & 0xff;
  return b;
}
