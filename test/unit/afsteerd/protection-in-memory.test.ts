/**
 * Protected pairs with real daemons in one process (in-memory maps, network and clock): the mode
 * carried in the leader's decision and agreed by both ends, the dedup window made before either
 * end duplicates, `always`, `on-suspicion` (healthy → never duplicates; a lost probe → duplicates
 * at once; settled after the switch → stops), a peer without dedup support, the budget written.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { u32 } from '../../../src/bpf/pinned-map';
import { decodeDupBudget } from '../../../src/bpf/protect-maps';
import { decodeFrame } from '../../../src/negotiator/protocol/frame';
import { NegotiateSchema, PairMessageSchema } from '../../../src/negotiator/protocol/messages';
import type { ProtectMode } from '../../../src/policy/schema';
import { configureLog } from '../../../src/util/log';
import { MEMORY_KEY, MemoryCluster, type MemoryNode } from '../../support/memory-cluster';

/** The pair message as a node from before protection validates it: strict, without the protect keys. */
const LegacyPolicy = z.strictObject({
  criterion: z.enum(['lowest-latency', 'lowest-loss', 'weighted']),
  weights: z.optional(z.strictObject({ latency: z.number(), jitter: z.number(), loss: z.number() })),
});
const { protect: _p, dedup: _d, dup: _u, policy: _pol, ...legacyShape } = PairMessageSchema.def.shape;
const LegacyPair = z.strictObject({ ...legacyShape, policy: LegacyPolicy });

beforeAll(() => configureLog({ level: 'error' }));

let cluster: MemoryCluster | undefined;
afterEach(() => {
  cluster?.stop();
  cluster = undefined;
});

const sends = (x: MemoryNode, y: MemoryNode) => x.writer.getPair(x.pod.ifindex, y.pod.ipv6)?.protect === true;
const windowOf = (x: MemoryNode, y: MemoryNode) => x.writer.protectCounters(x.pod.ifindex, y.pod.ipv6);
const prot = (x: MemoryNode) => x.daemon.status().pairs[0]?.protection;

/** Two nodes (IPv4 10 ms, IPv6 1 ms one way); a's pod asks for mode; the pair made on demand. */
async function pair(modeA: ProtectMode | undefined, modeB?: ProtectMode, nodeOverrides: Record<string, unknown>[] = []) {
  const c = (cluster = new MemoryCluster(2, {}, nodeOverrides));
  c.net.latencyMs[4] = 10;
  c.net.latencyMs[6] = 1;
  const [a, b] = c.nodes as [MemoryNode, MemoryNode];
  if (modeA) a.pod.policy = { protect: modeA };
  if (modeB) b.pod.policy = { protect: modeB };
  await c.start();
  c.clock.advance(1500);
  c.firstPacket(a, b);
  c.clock.advance(200);
  return { c, a, b };
}

describe('protected pairs, daemons in one process', () => {
  it('always, asked by one end only: both ends agree, both hold the window before either duplicates, both duplicate', async () => {
    const { c, a, b } = await pair('always');
    // The follower's answer can only follow the leader's decision: b's pod asked nothing.
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      expect(prot(x)).toMatchObject({ protect: 'always', written: 'send', duplicating: true, peerDedup: true, peerDuplicating: true });
      expect(sends(x, y)).toBe(true);
      expect(windowOf(x, y)).toBeDefined();
    }
    expect(a.daemon.status().protection).toMatchObject({ dedup: true, protectedPairs: 1, duplicatingPairs: 1 });
    // A blackhole does not stop it; the pair still moves its wire off the blackholed family.
    c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6', 5000);
    c.net.blackholed.add(6);
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4' && c.wire(b, a) === 'ipv4', 2000, 1)).toBeDefined();
    c.clock.advance(5000);
    expect(sends(a, b) && sends(b, a)).toBe(true);
    expect(a.daemon.counters.drops).toEqual({});
    expect(b.daemon.counters.drops).toEqual({});
  });

  it('the stronger mode wins: on-suspicion on one end, always on the other', async () => {
    const { a, b } = await pair('on-suspicion', 'always');
    for (const x of [a, b]) expect(prot(x)).toMatchObject({ protect: 'always', duplicating: true });
  });

  it('off on both ends: no window, no duplication, nothing written to the protection maps', async () => {
    const { c, a, b } = await pair(undefined);
    c.clock.advance(3000);
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      expect(prot(x)).toMatchObject({ protect: 'off', written: 'off', duplicating: false });
      expect(windowOf(x, y)).toBeUndefined();
      expect(x.maps.protect.writes).toBe(0);
    }
  });

  it('on-suspicion: 2 minutes healthy never duplicates; two lost probes duplicate within a probe timeout of the second; after the switch settles it stops', async () => {
    const { c, a, b } = await pair('on-suspicion');
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      expect(prot(x)).toMatchObject({ protect: 'on-suspicion', written: 'dedup', duplicating: false, peerDedup: true });
      expect(windowOf(x, y)).toBeDefined();
    }
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6' && c.wire(b, a) === 'ipv6', 5000)).toBeDefined();
    const protectWrites = [a.maps.protect.writes, b.maps.protect.writes];
    c.clock.advance(120_000);
    // Never a send written (it would count protect-send and rewrite the window's map entries).
    expect([a.maps.protect.writes, b.maps.protect.writes]).toEqual(protectWrites);
    for (const x of [a, b]) {
      expect(x.daemon.counters.events['protect-send']).toBeUndefined();
      expect(x.daemon.status().protection.dupPackets).toBe(0);
    }
    c.net.blackholed.add(6);
    const took = c.clock.advanceUntil(() => sends(a, b) && sends(b, a), 1000, 1);
    expect(took).toBeDefined();
    // The second probe sent into the blackhole times out after minTimeoutMs (40 ms): ≤ 2 × 20 ms + 40 ms + a tick after it began.
    expect(took!).toBeLessThanOrEqual(90);
    expect(prot(a)!.suspicion).toMatch(/IPv6/);
    // Both move to IPv4 (a blackhole) and, IPv4 being healthy, stop duplicating once the switch is settleMs (2 s) old.
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4' && c.wire(b, a) === 'ipv4', 2000, 1)).toBeDefined();
    expect(sends(a, b)).toBe(true);
    const stopped = c.clock.advanceUntil(() => !sends(a, b) && !sends(b, a), 5000, 10);
    expect(stopped).toBeDefined();
    expect(stopped!).toBeGreaterThanOrEqual(1900);
    expect(prot(a)).toMatchObject({ written: 'dedup', suspicion: null });
    // The window stays (on-suspicion's next trouble needs it at once).
    expect(windowOf(a, b)).toBeDefined();
  }, 30_000);

  it("on-suspicion: the end whose probes see trouble later duplicates as soon as the peer does (a stream's ACKs with its data); both settle, neither keeps the other going", async () => {
    // b probes every 400 ms: alone it would suspect IPv6 hundreds of ms after a does.
    const { c, a, b } = await pair('on-suspicion', undefined, [{}, { probe: { activeIntervalMs: 400 } }]);
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6' && c.wire(b, a) === 'ipv6', 5000)).toBeDefined();
    c.clock.advance(5000);
    expect(sends(a, b) || sends(b, a)).toBe(false);
    c.net.blackholed.add(6);
    const aTook = c.clock.advanceUntil(() => sends(a, b), 1000, 1);
    expect(aTook).toBeDefined();
    expect(aTook!).toBeLessThanOrEqual(90);
    // a's pair message (over IPv4, 10 ms one way) carries dup: b follows within a few ms of it.
    const bLag = c.clock.advanceUntil(() => sends(b, a), 1000, 1);
    expect(bLag).toBeDefined();
    expect(bLag!).toBeLessThanOrEqual(20);
    expect(prot(b)!.suspicion).toBe('the peer started duplicating');
    expect(b.daemon.counters.events['protect-suspicion']).toBe(1);
    // Both switch off IPv6 and settle; then neither duplicates again while healthy.
    expect(c.clock.advanceUntil(() => !sends(a, b) && !sends(b, a), 10_000, 10)).toBeDefined();
    c.clock.advance(20_000);
    expect(sends(a, b) || sends(b, a)).toBe(false);
    expect([a.daemon.counters.events['protect-suspicion'], b.daemon.counters.events['protect-suspicion']]).toEqual([1, 1]);
  }, 30_000);

  it('on-suspicion on a native pair: trouble on either family duplicates, healthy again for settleMs stops', async () => {
    const { c, a, b } = await pair('on-suspicion', undefined, [{ selection: { holdDownMs: 0 } }, {}]);
    c.net.latencyMs[4] = 1;
    c.clock.advance(3000);
    expect(c.wire(a, b)).toBe('native');
    c.net.blackholed.add(4);
    expect(c.clock.advanceUntil(() => sends(a, b), 1000, 1)).toBeLessThanOrEqual(90);
    c.net.blackholed.delete(4);
    expect(c.clock.advanceUntil(() => !sends(a, b) && !sends(b, a), 10_000, 10)).toBeDefined();
  });

  it('a peer without dedup support (protection.dedup false, as a node before protection): no window, no duplication, nothing it cannot parse', async () => {
    const c0 = (cluster = new MemoryCluster(2, {}, [{}, { protection: { dedup: false } }]));
    const [a, b] = c0.nodes as [MemoryNode, MemoryNode];
    a.pod.policy = { protect: 'always' };
    // Every negotiation datagram a sends b must pass the strict schema of a node from before protection.
    const toB: unknown[] = [];
    c0.net.tap = (buf, _f, address) => {
      const f = decodeFrame(MEMORY_KEY, buf);
      if (
        typeof f !== 'string' &&
        f.type === 'negotiate' &&
        f.node === a.name &&
        (address === b.addresses.ipv4 || address === b.addresses.ipv6)
      )
        toB.push(JSON.parse(f.payload.toString()));
    };
    await c0.start();
    c0.clock.advance(1500);
    c0.firstPacket(a, b);
    const c = c0;
    c.clock.advance(3000);
    expect(toB.length).toBeGreaterThan(0);
    for (const m of toB) {
      expect(NegotiateSchema.safeParse(m).success).toBe(true);
      for (const e of (m as { pairs: unknown[] }).pairs) expect(LegacyPair.safeParse(e).error).toBeUndefined();
    }
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      expect(prot(x)).toMatchObject({ protect: 'off', written: 'off', duplicating: false, peerDedup: false });
      expect(sends(x, y)).toBe(false);
      expect(windowOf(x, y)).toBeUndefined();
    }
    // b refused none of a's messages (a sent it no protect field, and no protect in its policy).
    expect(b.daemon.counters.drops).toEqual({});
    expect(b.daemon.status().pairs[0]!.wire).toBeDefined();
    expect(b.daemon.status().protection).toMatchObject({ dedup: false, budgetBytesPerSecond: 0 });
    expect(decodeDupBudget(b.maps.dupBudget.lookup(u32(0))!).rate).toBe(0n);
  });

  it('the node-wide budget is written at start-up from the config', async () => {
    const { a } = await pair(undefined, undefined, [{ protection: { budgetBytesPerSecond: 5_000_000 } }, {}]);
    expect(decodeDupBudget(a.maps.dupBudget.lookup(u32(0))!)).toEqual({ rate: 5_000_000n, burst: 500_000n });
    expect(a.daemon.status().protection).toMatchObject({ budgetBytesPerSecond: 5_000_000, burstBytes: 500_000 });
  });
});
