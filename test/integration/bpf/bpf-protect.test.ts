/**
 * Protected pairs under BPF_PROG_TEST_RUN: two pin dirs are two nodes (A sends, B receives), each
 * with its own programs and maps. Expected frames are built here, independently of src/.
 *  - both copies are built exactly (the first by afsteer_from_pod, the second by its clone pass);
 *  - the receiver delivers one copy and drops the other, and delivers two genuinely identical
 *    packets sent twice;
 *  - a mismatched or spoofed copy is dropped and does not touch the pair's window;
 *  - the kernel's window agrees with src/bpf/dedup-window.ts on a shuffled stream of copies.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DedupWindow, SEQ_MARK } from '../../../src/bpf/dedup-window';
import { putEndpoint } from '../../../src/bpf/endpoint-map';
import { closeFds } from '../../../src/bpf/libbpf';
import { ensurePrograms, type ProgramFds } from '../../../src/bpf/programs';
import { protectCounters, readProtectStats, setDupBudget, setProtection } from '../../../src/bpf/protection';
import { registerRemote, setSteering } from '../../../src/bpf/steering';
import { progTestRun, SKB_CTX_SIZE, SkbCtx } from '../../../src/bpf/test-run';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('protected pairs under BPF_PROG_TEST_RUN');

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const IFINDEX = 1; // BPF_PROG_TEST_RUN runs on loopback
const CLONE_MARK = 0xaf5a0000;
const CLONE_F_IPV6 = 0x8000;
const SKB_MARK_OFFSET = 8; // struct __sk_buff.mark

const A = { ipv4: '10.61.0.1', ipv6: 'fd61::1' };
const B = { ipv4: '10.61.0.2', ipv6: 'fd61::2' };
const C = { ipv4: '10.61.0.3', ipv6: 'fd61::3' };

const v4 = (a: string) => Buffer.from(a.split('.').map(Number));
function v6(a: string): Buffer {
  const [h, t] = a.split('::') as [string, string | undefined];
  const head = h ? h.split(':') : [],
    tail = t ? t.split(':') : [];
  const g = t === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  const b = Buffer.alloc(16);
  g.forEach((x, i) => b.writeUInt16BE(parseInt(x, 16), i * 2));
  return b;
}
function csum(h: Buffer): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += h.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
function ip4(o: {
  src: string;
  dst: string;
  proto: number;
  payload: Buffer;
  tos?: number;
  ttl?: number;
  id?: number;
  df?: boolean;
}): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(20 + o.payload.length, 2);
  h.writeUInt16BE(o.id ?? 0, 4);
  h.writeUInt16BE(o.df ? 0x4000 : 0, 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  v4(o.src).copy(h, 12);
  v4(o.dst).copy(h, 16);
  h.writeUInt16BE(csum(h), 10);
  return Buffer.concat([h, o.payload]);
}
function ip6(o: { src: string; dst: string; nh: number; payload: Buffer; tc?: number; flow?: number; hop?: number }): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((6 << 28) | ((o.tc ?? 0) << 20) | (o.flow ?? 0)) >>> 0, 0);
  h.writeUInt16BE(o.payload.length, 4);
  h[6] = o.nh;
  h[7] = o.hop ?? 64;
  v6(o.src).copy(h, 8);
  v6(o.dst).copy(h, 24);
  return Buffer.concat([h, o.payload]);
}
const MACS = Buffer.from('02a0f50000fe02a0f5000001', 'hex');
const eth = (type: number, l3: Buffer) => Buffer.concat([MACS, Buffer.from([type >> 8, type & 0xff]), l3]);
/** A UDP datagram (checksum 0 is fine: nobody verifies it here) with payload. */
function udp(payload: Buffer, sport = 40000, dport = 5000): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** The application packets of the tests, A → B. */
const app4 = (payload: Buffer) =>
  ip4({ src: A.ipv4, dst: B.ipv4, proto: 17, tos: 0xb8, ttl: 61, id: 0x1234, df: true, payload: udp(payload) });
const app6 = (payload: Buffer) => ip6({ src: A.ipv6, dst: B.ipv6, nh: 17, tc: 0x2d, flow: 0x12345, hop: 62, payload: udp(payload) });
/** A protected copy as the wire carries it, from src's to dst's addresses of the outer family. */
function copy(inner: Buffer, innerFamily: 4 | 6, outer: 4 | 6, seq: number, src = A, dst = B): Buffer {
  const tos = innerFamily === 4 ? inner[1]! : (inner.readUInt16BE(0) >> 4) & 0xff;
  const ttl = innerFamily === 4 ? inner[8]! : inner[7]!;
  const proto = innerFamily === 4 ? 4 : 41;
  if (outer === 4) return eth(0x0800, ip4({ src: src.ipv4, dst: dst.ipv4, proto, tos, ttl, id: SEQ_MARK | seq, df: true, payload: inner }));
  return eth(0x86dd, ip6({ src: src.ipv6, dst: dst.ipv6, nh: proto, tc: tos, flow: SEQ_MARK | seq, hop: ttl, payload: inner }));
}
const hex = (b: Buffer) => b.toString('hex');

describe.skipIf(!IS_ROOT)('protected pairs under BPF_PROG_TEST_RUN', () => {
  const tag = randomBytes(4).toString('hex');
  const pinA = `/sys/fs/bpf/afsteer-protect-a-${tag}`;
  const pinB = `/sys/fs/bpf/afsteer-protect-b-${tag}`;
  let fa: ProgramFds | undefined, fb: ProgramFds | undefined;

  const cleanup = () => {
    for (const f of [fa, fb]) if (f) closeFds(f.fromPod, f.toPod, f.bridgeOut);
    fa = fb = undefined;
    rmSync(pinA, { recursive: true, force: true });
    rmSync(pinB, { recursive: true, force: true });
  };
  const ctx = (mark = 0) => {
    const c = Buffer.alloc(SKB_CTX_SIZE);
    c.writeUInt32LE(IFINDEX, SkbCtx.ifindex);
    c.writeUInt32LE(mark >>> 0, SKB_MARK_OFFSET);
    return c;
  };
  const sendA = (frame: Buffer, mark = 0) => progTestRun(fa!.fromPod, frame, { ctx: ctx(mark) });
  const recvB = (frame: Buffer) => progTestRun(fb!.toPod, frame, { ctx: ctx() });
  /** Node B's pair with A gets a fresh window. */
  const freshWindowB = () => {
    setProtection(pinB, IFINDEX, A.ipv6, 'off');
    setProtection(pinB, IFINDEX, A.ipv6, 'dedup');
  };

  beforeAll(() => {
    try {
      fa = ensurePrograms(pinA);
      fb = ensurePrograms(pinB);
      // Node A: local pod A, remote B steered native and protected.
      putEndpoint(pinA, IFINDEX, { ...A, podIfindex: 2 });
      registerRemote(pinA, B);
      setSteering(pinA, IFINDEX, B.ipv6, 'native', 1);
      expect(setProtection(pinA, IFINDEX, B.ipv6, 'send')).toBe(true);
      setDupBudget(pinA, 1e9, 1e8);
      // Node B: local pod B, remotes A (protected: deduplicates) and C (protected too).
      putEndpoint(pinB, IFINDEX, { ...B, podIfindex: 2 });
      registerRemote(pinB, A);
      registerRemote(pinB, C);
      setSteering(pinB, IFINDEX, A.ipv6, 'native', 1);
      setSteering(pinB, IFINDEX, C.ipv6, 'native', 1);
      setProtection(pinB, IFINDEX, A.ipv6, 'dedup');
      setProtection(pinB, IFINDEX, C.ipv6, 'dedup');
    } catch (err) {
      cleanup();
      throw err;
    }
  });
  afterAll(cleanup);

  it('both copies are built exactly: IPv4 packet of a native pair → IPv4-in-IPv4 and IPv4-in-IPv6, one sequence number', () => {
    const inner = app4(Buffer.from('hitless'));
    const seq = protectCounters(pinA, IFINDEX, B.ipv6)!.txSeq & 0x7fff;
    const before = readProtectStats(pinA);
    const first = sendA(eth(0x0800, inner));
    expect(first.retval).toBe(TC_ACT_OK);
    expect(hex(first.data)).toBe(hex(copy(inner, 4, 4, seq)));
    // The clone re-enters afsteer_from_pod with the mark naming its family and number.
    const second = sendA(eth(0x0800, inner), CLONE_MARK | CLONE_F_IPV6 | seq);
    expect(second.retval).toBe(TC_ACT_OK);
    expect(hex(second.data)).toBe(hex(copy(inner, 4, 6, seq)));
    expect(second.ctx!.readUInt32LE(SKB_MARK_OFFSET), 'the clone mark is cleared').toBe(0);
    const after = readProtectStats(pinA);
    expect(after.dup - before.dup).toBe(1n);
    expect(after.dupFail - before.dupFail, 'bpf_clone_redirect succeeded').toBe(0n);
    expect(protectCounters(pinA, IFINDEX, B.ipv6)!.txSeq).toBe(seq + 1);
  });

  it('an IPv6 packet of a pair steered over IPv4: IPv6-in-IPv4 first, IPv6-in-IPv6 second', () => {
    setSteering(pinA, IFINDEX, B.ipv6, 'ipv4', 2);
    try {
      const inner = app6(Buffer.from('six'));
      const seq = protectCounters(pinA, IFINDEX, B.ipv6)!.txSeq & 0x7fff;
      const first = sendA(eth(0x86dd, inner));
      expect(hex(first.data)).toBe(hex(copy(inner, 6, 4, seq)));
      const second = sendA(eth(0x86dd, inner), CLONE_MARK | CLONE_F_IPV6 | seq);
      expect(hex(second.data)).toBe(hex(copy(inner, 6, 6, seq)));
    } finally {
      setSteering(pinA, IFINDEX, B.ipv6, 'native', 1);
    }
  });

  it('the receiver delivers one copy, drops the other; two identical packets sent twice are both delivered', () => {
    freshWindowB();
    const inner = app4(Buffer.from('same payload'));
    for (let round = 0; round < 2; round++) {
      const seq = protectCounters(pinA, IFINDEX, B.ipv6)!.txSeq & 0x7fff;
      const c1 = sendA(eth(0x0800, inner)).data;
      const c2 = sendA(eth(0x0800, inner), CLONE_MARK | CLONE_F_IPV6 | seq).data;
      const d1 = recvB(round ? c2 : c1); // either copy may arrive first
      expect(d1.retval).toBe(TC_ACT_OK);
      expect(hex(d1.data), 'the original frame, byte for byte').toBe(hex(eth(0x0800, inner)));
      expect(recvB(round ? c1 : c2).retval, 'the other copy').toBe(TC_ACT_SHOT);
    }
    const c = protectCounters(pinB, IFINDEX, A.ipv6)!;
    expect([c.rxFirst, c.rxDup, c.rxOld]).toEqual([2n, 2n, 0n]);
  });

  it("an unmarked tunnel packet (today's steering) is never deduplicated", () => {
    const inner = app6(Buffer.from('plain'));
    const plain = eth(0x0800, ip4({ src: A.ipv4, dst: B.ipv4, proto: 41, tos: 0x2d, ttl: 62, df: true, payload: inner }));
    expect(recvB(plain).retval).toBe(TC_ACT_OK);
    expect(recvB(plain).retval).toBe(TC_ACT_OK);
  });

  it("a mismatched or spoofed copy is dropped and leaves the pair's window alone", () => {
    freshWindowB();
    const seq = 77;
    // Inner source C behind A's outer address: mismatch.
    const innerC = ip4({ src: C.ipv4, dst: B.ipv4, proto: 17, df: true, payload: udp(Buffer.from('x')) });
    expect(recvB(copy(innerC, 4, 4, seq)).retval).toBe(TC_ACT_SHOT);
    // Unknown outer source claiming B: mismatch.
    const innerU = ip6({ src: 'fd61::99', dst: B.ipv6, nh: 17, payload: udp(Buffer.from('y')) });
    expect(recvB(copy(innerU, 6, 6, seq, { ipv4: '10.61.0.99', ipv6: 'fd61::99' })).retval).toBe(TC_ACT_SHOT);
    // C's own protected copies with A's sequence number go to C's window, not A's.
    const fromC = ip4({ src: C.ipv4, dst: B.ipv4, proto: 17, df: true, payload: udp(Buffer.from('z')) });
    expect(recvB(copy(fromC, 4, 4, seq, C)).retval).toBe(TC_ACT_OK);
    expect(protectCounters(pinB, IFINDEX, A.ipv6)!.rxFirst, "A's window untouched").toBe(0n);
    // A's real copy with that number is delivered.
    const real = app4(Buffer.from('real'));
    const r = recvB(copy(real, 4, 6, seq));
    expect(r.retval).toBe(TC_ACT_OK);
    expect(hex(r.data)).toBe(hex(eth(0x0800, real)));
  });

  it('the kernel window agrees with dedup-window.ts on a shuffled stream of copies (reordering, replays, wrap-around)', () => {
    freshWindowB();
    const model = new DedupWindow();
    const inner = app4(Buffer.from('w'));
    let x = 12345;
    const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
    const seqs: number[] = [];
    for (let n = 0; n < 1500; n++) {
      const s = (32700 + n) & 0x7fff; // wraps
      seqs.push(s, s);
      if (rnd() < 0.05) seqs.push((s - Math.floor(rnd() * 2500)) & 0x7fff); // replays, some older than the window
    }
    for (let i = seqs.length - 1; i > 0; i--) {
      const j = Math.max(0, i - Math.floor(rnd() * 40)); // local reordering
      [seqs[i], seqs[j]] = [seqs[j]!, seqs[i]!];
    }
    const bad: string[] = [];
    seqs.forEach((s, i) => {
      const got = recvB(copy(inner, 4, i % 2 ? 6 : 4, s)).retval === TC_ACT_OK ? 'new' : 'drop';
      const want = model.admit(s, BigInt(i)) === 'new' ? 'new' : 'drop';
      if (got !== want && bad.length < 5) bad.push(`#${i} seq ${s}: kernel ${got}, model ${want}`);
    });
    expect(bad).toEqual([]);
  });

  it('without budget (rate 0) a protected pair is sent once, as today, and counted as capped', () => {
    setDupBudget(pinA, 0, 0);
    try {
      const inner = app4(Buffer.from('capped'));
      const before = readProtectStats(pinA);
      const r = sendA(eth(0x0800, inner));
      expect(hex(r.data), 'native, untouched').toBe(hex(eth(0x0800, inner)));
      expect(readProtectStats(pinA).dupCapped - before.dupCapped).toBe(1n);
    } finally {
      setDupBudget(pinA, 1e9, 1e8);
    }
  });
});
