/**
 * afsteerd with three simulated nodes around the routed middle, pods through the real chain via
 * libcni, static peers: discovery converges among all three; pairs are per peer, so a family
 * blackholed on one node's link moves only the pairs toward that node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRemotes } from '../../../src/bpf/steering';
import { type SimDaemon, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('afsteerd with three simulated nodes');

describe.skipIf(!IS_ROOT)('afsteerd with three simulated nodes', () => {
  let t: TwoNodes;
  let pa: SimPod, pb: SimPod, pc: SimPod;
  let d: SimDaemon[];

  beforeAll(async () => {
    t = new TwoNodes('bridge', 3);
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    pc = await t.addPod(t.c!, 'c0');
    d = [await t.startDaemon(t.a), await t.startDaemon(t.b), await t.startDaemon(t.c!)];
  }, 90_000);
  afterAll(async () => {
    await t?.impair(4, null).catch(() => {});
    t?.cleanup();
  });

  it('discovery converges: every node has the other two as peers on both families and their pods as remotes', async () => {
    await waitFor(
      async () => {
        for (const x of d) {
          const s = await t.status(x);
          if (s.peers.length !== 2 || s.peers.some((p: any) => p.families.IPv4?.state !== 'up' || p.families.IPv6?.state !== 'up'))
            return false;
        }
        return true;
      },
      15_000,
      'three nodes converged',
    );
    expect(
      listRemotes(t.a.pinDir)
        .map((r) => r.ipv4)
        .sort(),
    ).toEqual([pb.ipv4, pc.ipv4].sort());
    expect(
      listRemotes(t.c!.pinDir)
        .map((r) => r.ipv4)
        .sort(),
    ).toEqual([pa.ipv4, pb.ipv4].sort());
  });

  it("IPv4 blackholed on node C's link only: a0's pair with c0 moves to IPv6 (stream intact), its pair with b0 stays native", async () => {
    const wire = (pod: SimPod, remote: SimPod) =>
      (t.status(d[[t.a, t.b, t.c].indexOf(pod.node)]!) as Promise<any>).then((s) => s.pairs.find((p: any) => p.remote === remote.id)?.wire);
    const keepB = t.inPod(pa, ['ping', '-q', '-c', '80', '-i', '0.1', '-W', '1', pb.ipv4]).catch(() => '');
    const { done } = await t.server(pc, pc.ipv4, 6600);
    const client = t.client(pa, pc.ipv4, 6600, ['--duration-ms', '5000', '--chunk', '16384', '--interval-ms', '5']);
    await waitFor(async () => (await wire(pa, pb)) === 'native' && (await wire(pa, pc)) === 'native', 5000, 'both pairs negotiated');
    await t.impair(4, 'blackhole', t.c);
    await waitFor(async () => (await wire(pa, pc)) === 'ipv6' && (await wire(pc, pa)) === 'ipv6', 3000, 'a0–c0 on IPv6');
    const [c, s] = [await client, await done];
    expect(s.sha256).toBe(c.sha256);
    expect(await wire(pa, pb)).toBe('native');
    expect(await wire(pb, pa)).toBe('native');
    const sa = await t.status(d[0]!);
    expect(sa.peers.find((p: any) => p.node === 'node-c').families.IPv4.state).toBe('blackhole');
    expect(sa.peers.find((p: any) => p.node === 'node-b').families.IPv4.state).toBe('up');
    await keepB;
  }, 40_000);
});
