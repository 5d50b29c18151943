/**
 * The tc programs of bpf/afsteer.bpf.c under BPF_PROG_TEST_RUN: crafted frames in, expected bytes out.
 *
 * Every expected frame is built by the tests, independently of src/ (own header builders, own
 * one's-complement checksum, own CRC32c: test/support/frames.ts). Without a ctx, BPF_PROG_TEST_RUN runs on the loopback device, so
 * skb->ifindex is 1: the "local pod" is always the endpoint registered under ifindex 1. To look at
 * the far end of a tunnel the maps are re-pointed (configure()): the destination pod becomes the
 * local endpoint and the source pod a registered remote.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteEndpoint, localEndpointByAddress, putEndpoint, readCounters } from '../../../src/bpf/endpoint-map';
import { closeFds } from '../../../src/bpf/libbpf';
import type { PairCounters, Stat, WireName } from '../../../src/bpf/maps-layout';
import { ensurePrograms, type ProgramFds } from '../../../src/bpf/programs';
import { listPairs, readStats, registerRemote, setSteering, unregisterRemote } from '../../../src/bpf/steering';
import { progTestRun, SKB_CTX_SIZE, SkbCtx, type TestRunResult } from '../../../src/bpf/test-run';
import { addressOf } from '../../../src/net/family';
import {
  crc32c,
  ETH_P_IP,
  ETH_P_IPV6,
  eth,
  type Flow,
  fragHeader6,
  IPPROTO,
  type Ipv4Opts,
  type Ipv6Opts,
  icmp6Echo,
  icmpEcho,
  inetChecksum,
  ipv4,
  ipv6,
  pattern,
  pseudoHeader,
  sctpData,
  tcp,
  udp,
  v4,
} from '../../support/frames';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('BPF program test runs (afsteer_from_pod / afsteer_to_pod)');

// ---------------------------------------------------------------------------------------------
// Parsing and verification of crafted / produced packets (own implementation)
// ---------------------------------------------------------------------------------------------

interface ParsedIp {
  family: 4 | 6;
  src: Buffer;
  dst: Buffer;
  /** The upper-layer protocol (after an IPv6 fragment header). */
  proto: number;
  /** The upper-layer bytes this packet carries (one fragment's worth if fragmented). */
  body: Buffer;
  frag?: { id: number; offset: number; more: boolean };
}

/** Parses an IPv4 or IPv6 packet, checking its IPv4 header checksum and lengths. */
function parseIp(pkt: Buffer): ParsedIp {
  const version = pkt[0]! >> 4;
  if (version === 4) {
    const hl = (pkt[0]! & 0xf) * 4;
    expect(inetChecksum(pkt.subarray(0, hl)), 'IPv4 header checksum').toBe(0);
    const total = pkt.readUInt16BE(2);
    expect(total, 'IPv4 total length').toBe(pkt.length);
    const ff = pkt.readUInt16BE(6);
    const offset = (ff & 0x1fff) * 8;
    const more = (ff & 0x2000) !== 0;
    return {
      family: 4,
      src: pkt.subarray(12, 16),
      dst: pkt.subarray(16, 20),
      proto: pkt[9]!,
      body: pkt.subarray(hl, total),
      ...(offset || more ? { frag: { id: pkt.readUInt16BE(4), offset, more } } : {}),
    };
  }
  expect(version, 'IP version').toBe(6);
  expect(pkt.readUInt16BE(4), 'IPv6 payload length').toBe(pkt.length - 40);
  const p: ParsedIp = { family: 6, src: pkt.subarray(8, 24), dst: pkt.subarray(24, 40), proto: pkt[6]!, body: pkt.subarray(40) };
  if (p.proto === IPPROTO.frag) {
    const f = p.body;
    return {
      ...p,
      proto: f[0]!,
      body: f.subarray(8),
      frag: { id: f.readUInt32BE(4), offset: f.readUInt16BE(2) & 0xfff8, more: (f[3]! & 1) === 1 },
    };
  }
  return p;
}

/**
 * Checks the upper-layer checksum of the datagram carried by packets (one packet, or the fragments
 * of one datagram, reassembled here) and returns what it found, e.g. "tcp ok" or "udp none".
 */
function verifyL4(packets: Buffer[]): string {
  const parsed = packets.map(parseIp);
  const first = parsed[0]!;
  let seg: Buffer;
  if (first.frag) {
    const frags = [...parsed].sort((a, b) => a.frag!.offset - b.frag!.offset);
    let next = 0;
    for (const f of frags) {
      expect(f.frag, 'every packet of a fragmented datagram is a fragment').toBeDefined();
      expect(f.frag!.id).toBe(first.frag.id);
      expect(f.frag!.offset, 'fragments are contiguous').toBe(next);
      next += f.body.length;
    }
    expect(frags.at(-1)!.frag!.more, 'last fragment has MF clear').toBe(false);
    seg = Buffer.concat(frags.map((f) => f.body));
  } else {
    expect(parsed.length).toBe(1);
    seg = first.body;
  }
  const ph = (proto: number) => pseudoHeader(first.src, first.dst, proto, seg.length);
  switch (first.proto) {
    case IPPROTO.tcp:
      expect(inetChecksum(ph(IPPROTO.tcp), seg), 'TCP checksum').toBe(0);
      return 'tcp ok';
    case IPPROTO.udp:
      expect(seg.readUInt16BE(4), 'UDP length').toBe(seg.length);
      if (seg.readUInt16BE(6) === 0) {
        expect(first.family, 'UDP checksum 0 is only allowed over IPv4').toBe(4);
        return 'udp none';
      }
      expect(inetChecksum(ph(IPPROTO.udp), seg), 'UDP checksum').toBe(0);
      return 'udp ok';
    case IPPROTO.icmp:
      expect(inetChecksum(seg), 'ICMP checksum').toBe(0);
      return 'icmp ok';
    case IPPROTO.icmpv6:
      expect(inetChecksum(ph(IPPROTO.icmpv6), seg), 'ICMPv6 checksum').toBe(0);
      return 'icmpv6 ok';
    case IPPROTO.sctp: {
      const z = Buffer.from(seg);
      z.writeUInt32LE(0, 8);
      expect(crc32c(z), 'SCTP CRC32c').toBe(seg.readUInt32LE(8));
      return 'sctp ok';
    }
    default:
      throw new Error(`no checksum check for protocol ${first.proto}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Expected encapsulation (built from the RFCs and the program's documented choices)
// ---------------------------------------------------------------------------------------------

/** IPv4 frame → Ethernet(0x86dd) / IPv6(nh 4, tc = TOS, hop = TTL, flow 0) / the untouched IPv4 packet. */
function expectedIpv4InIpv6(frame: Buffer, src6: string, dst6: string): Buffer {
  const inner = frame.subarray(14);
  expect(frame.readUInt16BE(12)).toBe(ETH_P_IP);
  return eth(ETH_P_IPV6, ipv6({ src: src6, dst: dst6, nh: IPPROTO.ipip, payload: inner, tc: inner[1]!, hop: inner[8]!, flow: 0 }));
}

/** IPv6 frame → Ethernet(0x0800) / IPv4(proto 41, DF, id 0, tos = traffic class, ttl = hop limit) / the untouched IPv6 packet. */
function expectedIpv6InIpv4(frame: Buffer, src4: string, dst4: string): Buffer {
  const inner = frame.subarray(14);
  expect(frame.readUInt16BE(12)).toBe(ETH_P_IPV6);
  const tclass = ((inner[0]! & 0x0f) << 4) | (inner[1]! >> 4);
  return eth(ETH_P_IP, ipv4({ src: src4, dst: dst4, proto: IPPROTO.ipv6, payload: inner, tos: tclass, ttl: inner[7]!, id: 0, df: true }));
}

/** The inner IP packet of an encapsulated frame, after checking the outer header's shape. */
function innerOf(frame: Buffer): Buffer {
  const type = frame.readUInt16BE(12);
  const outer = frame.subarray(14);
  if (type === ETH_P_IPV6) {
    expect(outer[6], 'outer next header').toBe(IPPROTO.ipip);
    return outer.subarray(40);
  }
  expect(type).toBe(ETH_P_IP);
  expect(outer[9], 'outer protocol').toBe(IPPROTO.ipv6);
  expect(inetChecksum(outer.subarray(0, 20)), 'outer IPv4 header checksum').toBe(0);
  return outer.subarray((outer[0]! & 0xf) * 4);
}

const hex = (b: Buffer) => b.toString('hex');

// ---------------------------------------------------------------------------------------------
// The pods
// ---------------------------------------------------------------------------------------------

interface Pod {
  name: string;
  ipv4: string;
  ipv6: string;
}

/** The pod under test (local at first). */
const A: Pod = { name: 'A', ipv4: '10.61.0.2', ipv6: 'fd00:61::2' };
/** Remote, wire ipv6: A's IPv4 packets to B go as IPv4-in-IPv6. */
const B: Pod = { name: 'B', ipv4: '10.62.0.3', ipv6: 'fd00:62::3' };
/** Remote, wire ipv4: A's IPv6 packets to C go as IPv6-in-IPv4. */
const C: Pod = { name: 'C', ipv4: '10.63.0.4', ipv6: 'fd00:63::4' };
/** Remote with a steering entry of wire 'native'. */
const D: Pod = { name: 'D', ipv4: '10.64.0.5', ipv6: 'fd00:64::5' };
/** Registered remote without a steering entry. */
const E: Pod = { name: 'E', ipv4: '10.65.0.6', ipv6: 'fd00:65::6' };
/** Never registered. */
const U: Pod = { name: 'U', ipv4: '10.66.0.7', ipv6: 'fd00:66::7' };
/** Addresses in A's subnet that are not A's. */
const FOREIGN = { ipv4: '10.61.0.99', ipv6: 'fd00:61::99' };
const ALL_PODS = [A, B, C, D, E];

/** BPF_PROG_TEST_RUN without a ctx (or with ifindex 1) runs on loopback: skb->ifindex = 1. */
const IFINDEX = 1;
const GENERATION = 7;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

const flowOf = (family: 4 | 6, src: Pod | { ipv4: string; ipv6: string }, dst: Pod | { ipv4: string; ipv6: string }): Flow => ({
  family,
  src: addressOf(src, family)!,
  dst: addressOf(dst, family)!,
});

/** A UDP frame from src to dst in the given family. */
function udpFrame(family: 4 | 6, src: { ipv4: string; ipv6: string }, dst: { ipv4: string; ipv6: string }, data = pattern(32)): Buffer {
  const f = flowOf(family, src, dst);
  const u = udp(f, 40000, 5001, data);
  return family === 4
    ? eth(ETH_P_IP, ipv4({ src: f.src, dst: f.dst, proto: IPPROTO.udp, payload: u, id: 0x1111, df: true }))
    : eth(ETH_P_IPV6, ipv6({ src: f.src, dst: f.dst, nh: IPPROTO.udp, payload: u }));
}

// ---------------------------------------------------------------------------------------------
// The crafted packets of the encapsulation cases: A → B over IPv6 (IPv4 packets), A → C over IPv4 (IPv6 packets)
// ---------------------------------------------------------------------------------------------

interface EncapCase {
  name: string;
  family: 4 | 6;
  /** Ethernet frames; several when they are the fragments of one datagram. */
  frames: Buffer[];
  /** What verifyL4 reports for the datagram. */
  l4: string;
}

function encapCases(): EncapCase[] {
  const f4 = flowOf(4, A, B);
  const f6 = flowOf(6, A, C);
  const ip4 = (o: Omit<Ipv4Opts, 'src' | 'dst'>) => eth(ETH_P_IP, ipv4({ src: A.ipv4, dst: B.ipv4, ...o }));
  const ip6 = (o: Omit<Ipv6Opts, 'src' | 'dst'>) => eth(ETH_P_IPV6, ipv6({ src: A.ipv6, dst: C.ipv6, ...o }));
  const mssWs = Buffer.from([2, 4, 0x05, 0xb4, 1, 3, 3, 7]); // MSS 1460, NOP, window scale 7

  // An IPv4 UDP datagram split in two fragments (64 + rest bytes of UDP).
  const udp4Big = udp(f4, 33000, 4789, pattern(100, 3));
  // An IPv6 UDP datagram split in two fragments with a fragment header (96 + rest bytes of UDP).
  const udp6Big = udp(f6, 33001, 4790, pattern(150, 4));

  return [
    {
      name: 'IPv4 TCP (PSH|ACK with data, DSCP EF + ECT(1), DF)',
      family: 4,
      frames: [
        ip4({
          proto: IPPROTO.tcp,
          tos: 0xb9,
          ttl: 61,
          id: 0x1c46,
          df: true,
          payload: tcp(f4, {
            sport: 43512,
            dport: 80,
            seq: 0x01020304,
            ack: 0xa0b0c0d0,
            flags: 0x18,
            window: 502,
            data: Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n'),
          }),
        }),
      ],
      l4: 'tcp ok',
    },
    {
      name: 'IPv4 TCP SYN with options',
      family: 4,
      frames: [
        ip4({
          proto: IPPROTO.tcp,
          ttl: 64,
          id: 1,
          df: true,
          payload: tcp(f4, { sport: 43513, dport: 443, seq: 0xfffffff0, ack: 0, flags: 0x02, window: 64240, options: mssWs }),
        }),
      ],
      l4: 'tcp ok',
    },
    {
      name: 'IPv4 UDP',
      family: 4,
      frames: [ip4({ proto: IPPROTO.udp, tos: 0x28, ttl: 3, id: 0x2222, payload: udp(f4, 5353, 53, pattern(45, 2)) })],
      l4: 'udp ok',
    },
    {
      name: 'IPv4 UDP with checksum 0',
      family: 4,
      frames: [ip4({ proto: IPPROTO.udp, ttl: 255, id: 0x3333, payload: udp(f4, 7, 9, pattern(19, 5), true) })],
      l4: 'udp none',
    },
    {
      name: 'IPv4 ICMP echo request',
      family: 4,
      frames: [ip4({ proto: IPPROTO.icmp, ttl: 64, id: 0x4444, df: true, payload: icmpEcho(0x1234, 1, pattern(56, 6)) })],
      l4: 'icmp ok',
    },
    {
      name: 'IPv4 SCTP DATA chunk (CRC32c)',
      family: 4,
      frames: [
        ip4({
          proto: IPPROTO.sctp,
          tos: 0x10,
          ttl: 64,
          id: 0x5555,
          df: true,
          payload: sctpData(36412, 36412, 0xcafef00d, 17, pattern(37, 7)),
        }),
      ],
      l4: 'sctp ok',
    },
    {
      name: 'IPv4 UDP in two fragments (MF, then offset 64)',
      family: 4,
      frames: [
        ip4({ proto: IPPROTO.udp, ttl: 64, id: 0x6666, mf: true, fragOffset: 0, payload: udp4Big.subarray(0, 64) }),
        ip4({ proto: IPPROTO.udp, ttl: 64, id: 0x6666, mf: false, fragOffset: 64, payload: udp4Big.subarray(64) }),
      ],
      l4: 'udp ok',
    },
    {
      name: 'IPv4 with IP options (ihl 6: NOP NOP NOP EOL) carrying UDP',
      family: 4,
      frames: [
        ip4({ proto: IPPROTO.udp, ttl: 9, id: 0x7777, options: Buffer.from([1, 1, 1, 0]), payload: udp(f4, 6000, 6001, pattern(24, 8)) }),
      ],
      l4: 'udp ok',
    },
    {
      name: 'IPv6 TCP (traffic class 0x2d, flow label 0x12345)',
      family: 6,
      frames: [
        ip6({
          nh: IPPROTO.tcp,
          tc: 0x2d,
          flow: 0x12345,
          hop: 63,
          payload: tcp(f6, { sport: 50000, dport: 8443, seq: 42, ack: 4242, flags: 0x18, window: 1000, data: pattern(77, 9) }),
        }),
      ],
      l4: 'tcp ok',
    },
    {
      name: 'IPv6 UDP',
      family: 6,
      frames: [ip6({ nh: IPPROTO.udp, tc: 0xb8, hop: 1, payload: udp(f6, 5060, 5060, pattern(61, 10)) })],
      l4: 'udp ok',
    },
    {
      name: 'ICMPv6 echo request',
      family: 6,
      frames: [ip6({ nh: IPPROTO.icmpv6, hop: 64, payload: icmp6Echo(f6, 0x0bad, 3, pattern(56, 11)) })],
      l4: 'icmpv6 ok',
    },
    {
      name: 'IPv6 UDP in two fragments (fragment header, nh 44)',
      family: 6,
      frames: [
        ip6({
          nh: IPPROTO.frag,
          hop: 64,
          payload: Buffer.concat([fragHeader6(IPPROTO.udp, 0, true, 0xdeadbeef), udp6Big.subarray(0, 96)]),
        }),
        ip6({ nh: IPPROTO.frag, hop: 64, payload: Buffer.concat([fragHeader6(IPPROTO.udp, 96, false, 0xdeadbeef), udp6Big.subarray(96)]) }),
      ],
      l4: 'udp ok',
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

type StatName = keyof typeof Stat;
type Flat = Record<string, bigint>;

/** Per-pair counters as flat named numbers ("encapPackets4", "dropSpoof"...). */
function flat(c: PairCounters | undefined): Flat {
  const out: Flat = {};
  if (!c) return out;
  for (const [k, v] of Object.entries(c) as [string, bigint | [bigint, bigint]][]) {
    if (Array.isArray(v)) {
      out[`${k}4`] = v[0];
      out[`${k}6`] = v[1];
    } else out[k] = v;
  }
  return out;
}

/** Non-zero differences b - a. */
function diff(a: Flat, b: Flat): Flat {
  const out: Flat = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0n) - (a[k] ?? 0n);
    if (d !== 0n) out[k] = d;
  }
  return out;
}

describe.skipIf(!IS_ROOT)('afsteer tc programs under BPF_PROG_TEST_RUN', () => {
  const pinDir = `/sys/fs/bpf/afsteer-progtest-${randomBytes(4).toString('hex')}`;
  let fds: ProgramFds | undefined;

  const cleanup = () => {
    if (fds) closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
    fds = undefined;
    rmSync(pinDir, { recursive: true, force: true });
  };

  /**
   * Points the maps at one node's view: local is the pod on ifindex 1, remotes are registered
   * (with a steering entry when a wire is given). Pair and endpoint counters start from zero.
   */
  function configure(local: Pod, remotes: [Pod, WireName | null][]): void {
    for (const p of [...ALL_PODS, U]) unregisterRemote(pinDir, p.ipv6); // also clears their pairs
    expect(listPairs(pinDir)).toEqual([]);
    deleteEndpoint(pinDir, IFINDEX); // and its counters
    putEndpoint(pinDir, IFINDEX, { ipv4: local.ipv4, ipv6: local.ipv6, podIfindex: 2 });
    for (const [pod, wire] of remotes) {
      registerRemote(pinDir, pod);
      if (wire) setSteering(pinDir, IFINDEX, pod.ipv6, wire, GENERATION);
    }
  }

  /** The view from A's node: B steered over IPv6, C over IPv4, D native, E registered only. */
  const configureA = () =>
    configure(A, [
      [B, 'ipv6'],
      [C, 'ipv4'],
      [D, 'native'],
      [E, null],
    ]);

  /** Node-wide stats and the pairs of ifindex 1, as flat records. */
  function snapshot(): { stats: Flat; pairs: Map<string, Flat> } {
    return {
      stats: { ...readStats(pinDir) },
      pairs: new Map(
        listPairs(pinDir)
          .filter((p) => p.ifindex === IFINDEX)
          .map((p) => [p.remoteIpv6, flat(p.counters)]),
      ),
    };
  }

  /** Runs fn and returns its result with every counter that changed (stats; pairs by remote pod name). */
  function measure<T>(fn: () => T): { result: T; stats: Partial<Record<StatName, bigint>>; pairs: Record<string, Flat> } {
    const before = snapshot();
    const result = fn();
    const after = snapshot();
    const pairs: Record<string, Flat> = {};
    for (const remote6 of new Set([...before.pairs.keys(), ...after.pairs.keys()])) {
      const d = diff(before.pairs.get(remote6) ?? {}, after.pairs.get(remote6) ?? {});
      const name = [...ALL_PODS, U].find((p) => p.ipv6 === remote6)?.name ?? remote6;
      if (Object.keys(d).length) pairs[name] = d;
    }
    return { result, stats: diff(before.stats, after.stats), pairs };
  }

  const fromPod = (frame: Buffer, ctx?: Buffer): TestRunResult => progTestRun(fds!.fromPod, frame, ctx ? { ctx } : {});
  const toPod = (frame: Buffer, ctx?: Buffer): TestRunResult => progTestRun(fds!.toPod, frame, ctx ? { ctx } : {});

  /** Asserts a run left the frame exactly as it was, with TC_ACT_OK. */
  function expectUntouched(r: TestRunResult, frame: Buffer): void {
    expect(r.retval, 'TC_ACT_OK').toBe(TC_ACT_OK);
    expect(hex(r.data)).toBe(hex(frame));
  }

  beforeAll(() => {
    try {
      fds = ensurePrograms(pinDir);
      configureA();
    } catch (err) {
      cleanup();
      throw err;
    }
  });
  afterAll(() => cleanup());

  it('own checksum helpers match known vectors', () => {
    // RFC 1071 section 3 example; the classic IPv4 header example; the CRC32c check value.
    expect(inetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex'))).toBe(~0xddf2 & 0xffff);
    expect(inetChecksum(Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex'))).toBe(0xb861);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    // Odd length pads with zero.
    expect(inetChecksum(Buffer.from([0x12, 0x34, 0x56]))).toBe(~(0x1234 + 0x5600) & 0xffff);
  });

  describe('1. encapsulation: crafted packet in, expected bytes out', () => {
    for (const c of encapCases()) {
      it(c.name, () => {
        const innerPackets = c.frames.map((f) => f.subarray(14));
        expect(verifyL4(innerPackets), 'crafted packet is valid').toBe(c.l4);

        const outs: Buffer[] = [];
        const m = measure(() => {
          for (const frame of c.frames) {
            const r = fromPod(frame);
            expect(r.retval, 'TC_ACT_OK').toBe(TC_ACT_OK);
            const want = c.family === 4 ? expectedIpv4InIpv6(frame, A.ipv6, B.ipv6) : expectedIpv6InIpv4(frame, A.ipv4, C.ipv4);
            expect(hex(r.data), 'encapsulated frame').toBe(hex(want));
            expect(r.data.readUInt16BE(12)).toBe(c.family === 4 ? ETH_P_IPV6 : ETH_P_IP);
            expect(r.data.length).toBe(frame.length + (c.family === 4 ? 40 : 20));
            outs.push(r.data);
          }
        });

        // The inner packet is the original, and its checksums still verify.
        const after = outs.map(innerOf);
        after.forEach((inner, i) => expect(hex(inner), 'inner packet untouched').toBe(hex(innerPackets[i]!)));
        expect(verifyL4(after), 'inner packet after encapsulation is valid').toBe(c.l4);

        const n = BigInt(c.frames.length);
        const bytes = BigInt(c.frames.reduce((s, f) => s + f.length, 0));
        const fam = c.family;
        expect(m.stats).toEqual({ encap: n });
        expect(m.pairs).toEqual({ [fam === 4 ? 'B' : 'C']: { [`encapPackets${fam}`]: n, [`encapBytes${fam}`]: bytes } });
      });
    }
  });

  it('2. encapsulate then decapsulate at the far end gives back the original frame, byte for byte', () => {
    const cases = encapCases();
    const tunnelled: { c: EncapCase; frame: Buffer; wire: Buffer }[] = [];
    for (const c of cases) {
      for (const frame of c.frames) {
        const r = fromPod(frame);
        expect(r.retval).toBe(TC_ACT_OK);
        expect(r.data.readUInt16BE(12)).not.toBe(frame.readUInt16BE(12));
        tunnelled.push({ c, frame, wire: r.data });
      }
    }
    try {
      for (const [local, wire, family] of [
        [B, 'ipv6', 4],
        [C, 'ipv4', 6],
      ] as const) {
        // The far end: the destination pod is local, A is the remote.
        configure(local, [[A, wire]]);
        const mine = tunnelled.filter((t) => t.c.family === family);
        expect(mine.length).toBeGreaterThan(4);
        const m = measure(() => {
          for (const t of mine) {
            const r = toPod(t.wire);
            expect(r.retval, `${t.c.name}: TC_ACT_OK`).toBe(TC_ACT_OK);
            expect(hex(r.data), `${t.c.name}: decapsulated frame is the original`).toBe(hex(t.frame));
            expect(r.data.readUInt16BE(12), 'Ethernet type restored').toBe(family === 4 ? ETH_P_IP : ETH_P_IPV6);
          }
        });
        const bytes = BigInt(mine.reduce((s, t) => s + t.frame.length, 0));
        expect(m.stats).toEqual({ decap: BigInt(mine.length) });
        expect(m.pairs).toEqual({ A: { [`decapPackets${family}`]: BigInt(mine.length), [`decapBytes${family}`]: bytes } });
        // Delivered-traffic counters see the inner family and length.
        expect(readCounters(pinDir, IFINDEX)).toEqual([
          { ifindex: IFINDEX, family: family === 4 ? 0 : 1, direction: 1, packets: BigInt(mine.length), bytes },
        ]);
      }
    } finally {
      configureA();
    }
  });

  // BPF_PROG_TEST_RUN sets gso_size/gso_segs from the ctx but no GSO type, so the kernel treats the
  // packet as a GSO type it will not resize: the fallback path. Real UDP_SEGMENT packets (GSO type
  // UDP_L4) are encapsulated whole: steering.test.ts sends them between two nodes.
  it('3. a GSO packet the kernel will not resize: encapsulated, or sent natively and counted as encap_fail', () => {
    const outcomes: string[] = [];
    for (const family of [4, 6] as const) {
      const dst = family === 4 ? B : C;
      const frame = udpFrame(family, A, dst, pattern(3 * 1000, 12));
      const ctx = Buffer.alloc(SKB_CTX_SIZE);
      ctx.writeUInt32LE(IFINDEX, SkbCtx.ifindex);
      ctx.writeUInt32LE(3, SkbCtx.gsoSegs);
      ctx.writeUInt32LE(1000, SkbCtx.gsoSize);
      const m = measure(() => fromPod(frame, ctx));
      const r = m.result;
      expect(r.retval, 'TC_ACT_OK (never dropped)').toBe(TC_ACT_OK);
      const name = dst.name;
      const len = BigInt(frame.length);
      if (hex(r.data) === hex(frame)) {
        outcomes.push(`IPv${family}: passed natively (encap_fail)`);
        expect(m.stats).toEqual({ encapFail: 1n });
        expect(m.pairs).toEqual({ [name]: { encapFail: 1n, [`nativePackets${family}`]: 1n, [`nativeBytes${family}`]: len } });
      } else {
        outcomes.push(`IPv${family}: encapsulated`);
        const want = family === 4 ? expectedIpv4InIpv6(frame, A.ipv6, B.ipv6) : expectedIpv6InIpv4(frame, A.ipv4, C.ipv4);
        expect(hex(r.data)).toBe(hex(want));
        expect(m.stats).toEqual({ encap: 1n });
        expect(m.pairs).toEqual({ [name]: { [`encapPackets${family}`]: 1n, [`encapBytes${family}`]: len } });
      }
      // The kernel reports the skb's GSO fields back in the ctx.
      expect(r.ctx?.readUInt32LE(SkbCtx.gsoSize)).toBe(1000);
    }
    console.info(`UDP GSO outcome: ${outcomes.join('; ')}`);
  });

  describe('4. anti-spoofing: ready-made tunnel packets from the pod', () => {
    /** A tunnel packet the pod crafted itself: outer from A to dst in outerFamily, inner from FOREIGN. */
    function tunnelFrame(outerFamily: 4 | 6, dst: Pod, proto: 4 | 41): Buffer {
      const inner =
        proto === IPPROTO.ipip
          ? ipv4({ src: FOREIGN.ipv4, dst: dst.ipv4, proto: IPPROTO.udp, payload: udp(flowOf(4, FOREIGN, dst), 1, 2, pattern(8)) })
          : ipv6({ src: FOREIGN.ipv6, dst: dst.ipv6, nh: IPPROTO.udp, payload: udp(flowOf(6, FOREIGN, dst), 1, 2, pattern(8)) });
      return outerFamily === 4
        ? eth(ETH_P_IP, ipv4({ src: A.ipv4, dst: dst.ipv4, proto, payload: inner }))
        : eth(ETH_P_IPV6, ipv6({ src: A.ipv6, dst: dst.ipv6, nh: proto, payload: inner }));
    }

    const steered: [string, 4 | 6, Pod, 4 | 41][] = [
      ['IPv6 nh 4 to C (wire ipv4)', 6, C, 4],
      ['IPv6 nh 41 to C (wire ipv4)', 6, C, 41],
      ['IPv4 proto 41 to B (wire ipv6)', 4, B, 41],
      ['IPv4 proto 4 to B (wire ipv6)', 4, B, 4],
      // The pair's own family: still a steered pair, still dropped.
      ['IPv6 nh 4 to B (wire ipv6: IPv6 itself stays native)', 6, B, 4],
      ['IPv4 proto 41 to C (wire ipv4: IPv4 itself stays native)', 4, C, 41],
      // A steering entry of wire 'native' is a steering entry too.
      ['IPv6 nh 4 to D (wire native)', 6, D, 4],
    ];
    for (const [name, family, dst, proto] of steered) {
      it(`${name} is dropped and counted as drop_spoof`, () => {
        const frame = tunnelFrame(family, dst, proto);
        const m = measure(() => fromPod(frame));
        expect(m.result.retval, 'TC_ACT_SHOT').toBe(TC_ACT_SHOT);
        expect(m.stats).toEqual({ dropSpoof: 1n });
        expect(m.pairs).toEqual({ [dst.name]: { dropSpoof: 1n } });
      });
    }

    /** IPv6 destination-options header (8 bytes, PadN) announcing nh. */
    const dstOpts = (nh: number) => Buffer.from([nh, 0, 1, 4, 0, 0, 0, 0]);
    for (const [name, chain, proto] of [
      ['IPv6 dst-options then nh 4 to C', [60], 4],
      ['IPv6 single-fragment header then nh 4 to C', [44], 4],
      ['IPv6 dst-options, dst-options then nh 41 to C', [60, 60], 41],
    ] as const) {
      it(`${name} (tunnel hidden behind extension headers) is dropped as drop_spoof`, () => {
        const inner =
          proto === IPPROTO.ipip
            ? ipv4({ src: FOREIGN.ipv4, dst: C.ipv4, proto: IPPROTO.udp, payload: udp(flowOf(4, FOREIGN, C), 1, 2, pattern(8)) })
            : ipv6({ src: FOREIGN.ipv6, dst: C.ipv6, nh: IPPROTO.udp, payload: udp(flowOf(6, FOREIGN, C), 1, 2, pattern(8)) });
        let payload = inner;
        let nh: number = proto;
        for (const h of [...chain].reverse()) {
          payload = Buffer.concat([h === 44 ? fragHeader6(nh, 0, false, 0x1234) : dstOpts(nh), payload]);
          nh = h;
        }
        const frame = eth(ETH_P_IPV6, ipv6({ src: A.ipv6, dst: C.ipv6, nh, payload }));
        const m = measure(() => fromPod(frame));
        expect(m.result.retval, 'TC_ACT_SHOT').toBe(TC_ACT_SHOT);
        expect(m.stats).toEqual({ dropSpoof: 1n });
        expect(m.pairs).toEqual({ C: { dropSpoof: 1n } });
      });
    }

    for (const [name, family, dst, proto] of [
      ['IPv6 nh 4 to E (registered, no steering entry)', 6, E, 4],
      ['IPv4 proto 41 to E (registered, no steering entry)', 4, E, 41],
      ['IPv6 nh 41 to U (unknown)', 6, U, 41],
      ['IPv4 proto 4 to U (unknown)', 4, U, 4],
    ] as const) {
      it(`${name} passes untouched`, () => {
        const frame = tunnelFrame(family, dst, proto);
        const m = measure(() => fromPod(frame));
        expectUntouched(m.result, frame);
        expect(m.stats).toEqual({});
        expect(m.pairs).toEqual({});
      });
    }
  });

  describe('5. tunnelled packets at the receiver that do not match', () => {
    // B's node: A is a steered remote (so its pair has counters), C a registered remote.
    beforeAll(() =>
      configure(B, [
        [A, 'ipv6'],
        [C, null],
      ]),
    );
    afterAll(() => configureA());

    const in6 = (outerSrc: string, outerDst: string, inner: Buffer) =>
      eth(ETH_P_IPV6, ipv6({ src: outerSrc, dst: outerDst, nh: IPPROTO.ipip, payload: inner }));
    const in4 = (outerSrc: string, outerDst: string, inner: Buffer, o: Partial<Ipv4Opts> = {}) =>
      eth(ETH_P_IP, ipv4({ src: outerSrc, dst: outerDst, proto: IPPROTO.ipv6, payload: inner, df: true, ...o }));
    const inner4 = (src: string, dst: string) =>
      ipv4({ src, dst, proto: IPPROTO.udp, payload: udp({ family: 4, src, dst }, 1000, 2000, pattern(20)) });
    const inner6 = (src: string, dst: string) =>
      ipv6({ src, dst, nh: IPPROTO.udp, payload: udp({ family: 6, src, dst }, 1000, 2000, pattern(20)) });

    it('sanity: the matching tunnel packets are decapsulated', () => {
      const good4 = inner4(A.ipv4, B.ipv4);
      const good6 = inner6(A.ipv6, B.ipv6);
      const m = measure(() => [toPod(in6(A.ipv6, B.ipv6, good4)), toPod(in4(A.ipv4, B.ipv4, good6))]);
      expect(m.result.map((r) => r.retval)).toEqual([TC_ACT_OK, TC_ACT_OK]);
      expect(hex(m.result[0]!.data)).toBe(hex(eth(ETH_P_IP, good4)));
      expect(hex(m.result[1]!.data)).toBe(hex(eth(ETH_P_IPV6, good6)));
      expect(m.stats).toEqual({ decap: 2n });
      expect(m.pairs).toEqual({
        A: { decapPackets4: 1n, decapBytes4: BigInt(14 + good4.length), decapPackets6: 1n, decapBytes6: BigInt(14 + good6.length) },
      });
    });

    it('outer src is a known remote (A) but the inner src is another pod (C) or a random address: dropped', () => {
      const frames = [
        in6(A.ipv6, B.ipv6, inner4(C.ipv4, B.ipv4)),
        in6(A.ipv6, B.ipv6, inner4('192.0.2.1', B.ipv4)),
        in4(A.ipv4, B.ipv4, inner6(C.ipv6, B.ipv6)),
        in4(A.ipv4, B.ipv4, inner6('2001:db8::1', B.ipv6)),
      ];
      const m = measure(() => frames.map((f) => toPod(f)));
      expect(m.result.map((r) => r.retval)).toEqual([TC_ACT_SHOT, TC_ACT_SHOT, TC_ACT_SHOT, TC_ACT_SHOT]);
      expect(m.stats).toEqual({ dropMismatch: 4n });
      expect(m.pairs).toEqual({ A: { dropMismatch: 4n } });
    });

    it('outer src is an unknown address but the inner dst is the local pod: dropped', () => {
      const frames = [in6(U.ipv6, B.ipv6, inner4(U.ipv4, B.ipv4)), in4(U.ipv4, B.ipv4, inner6(U.ipv6, B.ipv6))];
      const m = measure(() => frames.map((f) => toPod(f)));
      expect(m.result.map((r) => r.retval)).toEqual([TC_ACT_SHOT, TC_ACT_SHOT]);
      expect(m.stats).toEqual({ dropMismatch: 2n });
      expect(m.pairs).toEqual({});
    });

    it('IPv4 hidden behind an IPv6 extension header, addressed to the local pod: dropped (afsteer never sends that)', () => {
      const inner = inner4(A.ipv4, B.ipv4);
      const frame = eth(
        ETH_P_IPV6,
        ipv6({ src: A.ipv6, dst: B.ipv6, nh: 60, payload: Buffer.concat([Buffer.from([IPPROTO.ipip, 0, 1, 4, 0, 0, 0, 0]), inner]) }),
      );
      const m = measure(() => toPod(frame));
      expect(m.result.retval).toBe(TC_ACT_SHOT);
      expect(m.stats).toEqual({ dropMismatch: 1n });
    });

    it('tunnel packet whose inner dst is not the local pod (or whose outer dst is not): passes untouched', () => {
      const frames = [
        in6(A.ipv6, B.ipv6, inner4(A.ipv4, '10.62.0.77')),
        in4(A.ipv4, B.ipv4, inner6(A.ipv6, 'fd00:62::77')),
        in6(A.ipv6, 'fd00:62::77', inner4(A.ipv4, B.ipv4)),
        in4(A.ipv4, '10.62.0.77', inner6(A.ipv6, B.ipv6)),
      ];
      const m = measure(() => frames.map((f) => toPod(f)));
      m.result.forEach((r, i) => expectUntouched(r, frames[i]!));
      expect(m.stats).toEqual({});
      expect(m.pairs).toEqual({});
    });

    it('outer IPv4 fragment (MF, or an offset) with protocol 41 from the right remote: passes untouched, decap_fail counted', () => {
      const good6 = inner6(A.ipv6, B.ipv6);
      const frames = [
        in4(A.ipv4, B.ipv4, good6, { df: false, mf: true, id: 0x99 }),
        in4(A.ipv4, B.ipv4, good6, { df: false, mf: false, fragOffset: 1480, id: 0x99 }),
      ];
      const m = measure(() => frames.map((f) => toPod(f)));
      m.result.forEach((r, i) => expectUntouched(r, frames[i]!));
      expect(m.stats).toEqual({ decapFail: 2n });
      expect(m.pairs).toEqual({ A: { decapFail: 2n } });
    });
  });

  describe('6. packets that stay native', () => {
    it('no steering entry (E): untouched, nothing counted per pair', () => {
      const frames = [udpFrame(4, A, E), udpFrame(6, A, E)];
      const m = measure(() => frames.map((f) => fromPod(f)));
      m.result.forEach((r, i) => expectUntouched(r, frames[i]!));
      expect(m.stats).toEqual({});
      expect(m.pairs).toEqual({});
    });

    it("steering 'native' (D): untouched, native packets counted", () => {
      const f4 = udpFrame(4, A, D);
      const f6 = udpFrame(6, A, D, pattern(50));
      const m = measure(() => [fromPod(f4), fromPod(f6)]);
      expectUntouched(m.result[0]!, f4);
      expectUntouched(m.result[1]!, f6);
      expect(m.stats).toEqual({});
      expect(m.pairs).toEqual({
        D: { nativePackets4: 1n, nativeBytes4: BigInt(f4.length), nativePackets6: 1n, nativeBytes6: BigInt(f6.length) },
      });
    });

    it("wire equal to the packet's own family (IPv6 to B over ipv6, IPv4 to C over ipv4): untouched", () => {
      const toB = udpFrame(6, A, B);
      const toC = udpFrame(4, A, C);
      const m = measure(() => [fromPod(toB), fromPod(toC)]);
      expectUntouched(m.result[0]!, toB);
      expectUntouched(m.result[1]!, toC);
      expect(m.stats).toEqual({});
      expect(m.pairs).toEqual({
        B: { nativePackets6: 1n, nativeBytes6: BigInt(toB.length) },
        C: { nativePackets4: 1n, nativeBytes4: BigInt(toC.length) },
      });
    });

    it('unknown remote (U): untouched', () => {
      const frames = [udpFrame(4, A, U), udpFrame(6, A, U)];
      const m = measure(() => frames.map((f) => fromPod(f)));
      m.result.forEach((r, i) => expectUntouched(r, frames[i]!));
      expect(m.stats).toEqual({});
      expect(m.pairs).toEqual({});
    });

    it("source is not the pod's own address, wire set: untouched, src_foreign counted", () => {
      const v4 = udpFrame(4, FOREIGN, B);
      const v6x = udpFrame(6, FOREIGN, C);
      const m = measure(() => [fromPod(v4), fromPod(v6x)]);
      expectUntouched(m.result[0]!, v4);
      expectUntouched(m.result[1]!, v6x);
      expect(m.stats).toEqual({ srcForeign: 2n });
      expect(m.pairs).toEqual({
        B: { nativePackets4: 1n, nativeBytes4: BigInt(v4.length) },
        C: { nativePackets6: 1n, nativeBytes6: BigInt(v6x.length) },
      });
    });
  });

  it('8. an endpoint re-written with other addresses no longer owns its old ones', () => {
    try {
      configure(A, []);
      expect(localEndpointByAddress(pinDir, A.ipv4)).toBe(IFINDEX);
      putEndpoint(pinDir, IFINDEX, { ipv4: U.ipv4, ipv6: A.ipv6, podIfindex: 2 });
      expect(localEndpointByAddress(pinDir, A.ipv4)).toBeUndefined();
      expect(localEndpointByAddress(pinDir, U.ipv4)).toBe(IFINDEX);
      expect(localEndpointByAddress(pinDir, A.ipv6)).toBe(IFINDEX);
      // A's old IPv4 address is a remote pod's again: it can be registered.
      expect(() => registerRemote(pinDir, { ipv4: A.ipv4, ipv6: 'fd00:99::1' })).not.toThrow();
      deleteEndpoint(pinDir, IFINDEX);
      expect(localEndpointByAddress(pinDir, U.ipv4)).toBeUndefined();
      expect(localEndpointByAddress(pinDir, A.ipv6)).toBeUndefined();
    } finally {
      unregisterRemote(pinDir, 'fd00:99::1');
      configureA();
    }
  });

  it('7. listPairs counters add up to what was run (A → B, A → C, then both far ends)', () => {
    try {
      configureA();
      const v4ToB = [udpFrame(4, A, B, pattern(10)), udpFrame(4, A, B, pattern(200)), udpFrame(4, A, B, pattern(1))];
      const v6ToC = [udpFrame(6, A, C, pattern(64)), udpFrame(6, A, C, pattern(333))];
      const nativeToB = udpFrame(6, A, B);
      const spoofToC = eth(
        ETH_P_IPV6,
        ipv6({
          src: A.ipv6,
          dst: C.ipv6,
          nh: IPPROTO.ipip,
          payload: ipv4({ src: A.ipv4, dst: C.ipv4, proto: IPPROTO.udp, payload: pattern(8) }),
        }),
      );
      const sum = (fs: Buffer[]) => BigInt(fs.reduce((s, f) => s + f.length, 0));
      const wire4: Buffer[] = [];
      const wire6: Buffer[] = [];
      for (const f of v4ToB) wire4.push(fromPod(f).data);
      for (const f of v6ToC) wire6.push(fromPod(f).data);
      expect(fromPod(nativeToB).retval).toBe(TC_ACT_OK);
      expect(fromPod(spoofToC).retval).toBe(TC_ACT_SHOT);

      const zero = flat({
        nativePackets: [0n, 0n],
        nativeBytes: [0n, 0n],
        encapPackets: [0n, 0n],
        encapBytes: [0n, 0n],
        decapPackets: [0n, 0n],
        decapBytes: [0n, 0n],
        dropSpoof: 0n,
        dropMismatch: 0n,
        encapFail: 0n,
        decapFail: 0n,
      });
      const pairsNow = () =>
        Object.fromEntries(
          listPairs(pinDir).map((p) => [`${p.ifindex} ${p.remoteIpv6} ${p.remoteIpv4} ${p.wire} ${p.generation}`, flat(p.counters)]),
        );
      expect(pairsNow()).toEqual({
        [`1 ${B.ipv6} ${B.ipv4} ipv6 ${GENERATION}`]: {
          ...zero,
          encapPackets4: 3n,
          encapBytes4: sum(v4ToB),
          nativePackets6: 1n,
          nativeBytes6: sum([nativeToB]),
        },
        [`1 ${C.ipv6} ${C.ipv4} ipv4 ${GENERATION}`]: { ...zero, encapPackets6: 2n, encapBytes6: sum(v6ToC), dropSpoof: 1n },
        [`1 ${D.ipv6} ${D.ipv4} native ${GENERATION}`]: zero,
      });
      // Per-endpoint counters (direction 0 = from the pod) see every frame, by its own family, before encapsulation.
      const fromRows = readCounters(pinDir, IFINDEX).sort((a, b) => a.family - b.family);
      expect(fromRows).toEqual([
        { ifindex: 1, family: 0, direction: 0, packets: 3n, bytes: sum(v4ToB) },
        { ifindex: 1, family: 1, direction: 0, packets: 4n, bytes: sum([...v6ToC, nativeToB, spoofToC]) },
      ]);

      // B's node receives the IPv4-in-IPv6 packets (and one spoofed one).
      configure(B, [
        [A, 'ipv6'],
        [C, null],
      ]);
      for (const w of wire4) expect(toPod(w).retval).toBe(TC_ACT_OK);
      const spoofed = Buffer.from(wire4[0]!);
      v4(C.ipv4).copy(spoofed, 14 + 40 + 12); // inner src → C (inner header checksum now stale; never looked at)
      expect(toPod(spoofed).retval).toBe(TC_ACT_SHOT);
      expect(pairsNow()).toEqual({
        [`1 ${A.ipv6} ${A.ipv4} ipv6 ${GENERATION}`]: { ...zero, decapPackets4: 3n, decapBytes4: sum(v4ToB), dropMismatch: 1n },
      });

      // C's node receives the IPv6-in-IPv4 packets.
      configure(C, [[A, 'ipv4']]);
      for (const w of wire6) expect(toPod(w).retval).toBe(TC_ACT_OK);
      expect(pairsNow()).toEqual({ [`1 ${A.ipv6} ${A.ipv4} ipv4 ${GENERATION}`]: { ...zero, decapPackets6: 2n, decapBytes6: sum(v6ToC) } });
      expect(readCounters(pinDir, IFINDEX)).toEqual([{ ifindex: 1, family: 1, direction: 1, packets: 2n, bytes: sum(v6ToC) }]);
    } finally {
      configureA();
    }
  });
});
