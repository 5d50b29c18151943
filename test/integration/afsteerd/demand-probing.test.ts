/**
 * Demand-style probing with the real data plane (root): two nodes, a pod pair with answered
 * traffic (a ping every 50 ms). The data plane notes each packet of the pair in afsteer_pair_seen
 * (sent from a0, arrived from b0, per wire family); node A reads it in place and probes node B
 * at the demand interval (≈ 4 a second per family instead of 50) while the traffic proves the
 * paths. When the pair's family is blackholed its sends go unanswered: A probes fast again at once
 * and moves the pair off the family, as without demand probing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PairSeen } from '../../../src/bpf/pair-seen';
import { listPairs } from '../../../src/bpf/steering';
import { type SimDaemon, type SimPod, type TwoNodes, twoNodesWithDaemons, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('demand-style probing with the real data plane');

describe.skipIf(!IS_ROOT)('demand-style probing with the real data plane', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let da: SimDaemon;

  beforeAll(async () => {
    ({ t, pa, pb, da } = await twoNodesWithDaemons());
    // Answered traffic on the pair, IPv4: a ping every 50 ms for the whole test.
    t.children.spawn('nsenter', [`--net=${pa.nsPath}`, 'ping', '-q', '-i', '0.05', '-W', '1', pb.ipv4], { stdio: 'ignore' });
    await waitFor(() => listPairs(t.a.pinDir).length === 1 && listPairs(t.b.pinDir).length === 1, 10_000, 'the pair on both nodes');
  }, 60_000);
  afterAll(() => t?.cleanup());

  const familyOfB = async (f: 'IPv4' | 'IPv6') => (await t.status(da)).peers.find((p: any) => p.node === 'node-b').families[f];

  it('the data plane notes the pair’s packets both ways over IPv4; A probes B at the demand interval while they prove the paths', async () => {
    const ix = listPairs(t.a.pinDir)[0]!.pair;
    const seen = PairSeen.open(t.a.pinDir);
    await new Promise((r) => setTimeout(r, 300));
    const now = PairSeen.nowMs();
    expect(now - seen.at(ix, false, 4)).toBeLessThan(500);
    expect(now - seen.at(ix, true, 4)).toBeLessThan(500);
    // No IPv6 traffic on the pair.
    expect(seen.at(ix, false, 6)).toBe(0);
    // The first evaluation's samples are taken fast (50 at 20 ms), then the hold: demand after.
    await waitFor(async () => (await familyOfB('IPv4')).probing === 'demand', 10_000, 'IPv4 toward B probed on demand');
    const a0 = { v4: (await familyOfB('IPv4')).sent, v6: (await familyOfB('IPv6')).sent };
    await new Promise((r) => setTimeout(r, 2000));
    const a1 = await familyOfB('IPv4');
    const a1v6 = await familyOfB('IPv6');
    // ≈ 4 a second (250 ms); fast probing would be 50.
    expect((a1.sent - a0.v4) / 2).toBeLessThan(10);
    expect((a1v6.sent - a0.v6) / 2).toBeLessThan(10);
    expect(a1.probing).toBe('demand');
    expect(a1v6.probing).toBe('demand');
    expect(a1.blackhole).toBe(false);
  }, 30_000);

  it('a blackhole of IPv4: the pings go unanswered, A probes fast again at once and moves the pair to IPv6', async () => {
    const before = (await familyOfB('IPv4')).demandTriggers;
    const t0 = performance.now();
    await t.impair(4, 'blackhole');
    try {
      await waitFor(() => t.wireOf(pa) === 'ipv6' && t.wireOf(pb) === 'ipv6', 5000, 'both nodes on IPv6');
      console.log(`demand probing: blackhole → both maps on IPv6 in ${(performance.now() - t0).toFixed(0)} ms`);
      const after = await familyOfB('IPv4');
      expect(after.blackhole).toBe(true);
      expect(after.demandTriggers.unanswered).toBeGreaterThan(before.unanswered);
    } finally {
      await t.impair(4, null);
    }
  }, 30_000);
});
