/**
 * afsteerd's policies between two simulated nodes: latency added to one family with the test's own
 * delay line (a TUN device in the middle namespace; the kernel has no netem), random loss with
 * nftables, pods with their own policy next to pods on the daemon default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, announceSkip } from './helpers/world';
import { TwoNodes, waitFor, type SimDaemon, type SimPod } from './helpers/two-nodes';
import { listPairs } from '../../src/bpf/steering';

announceSkip('afsteerd policies between two simulated nodes');

describe.skipIf(!IS_ROOT)('afsteerd policies between two simulated nodes', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let da: SimDaemon;
  let db: SimDaemon;

  const wireOf = (pod: SimPod) => listPairs(pod.node.pinDir).find((p) => p.ifindex === pod.hostIfindex)?.wire;
  /** Keeps a pair active: pings in the background for ms. */
  const talk = (from: SimPod, to: string, ms: number) => t.inPod(from, ['ping', '-q', '-c', String(Math.ceil(ms / 100)), '-i', '0.1', '-W', '1', to]).catch(() => '');

  beforeAll(async () => {
    t = new TwoNodes();
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    da = await t.startDaemon(t.a);
    db = await t.startDaemon(t.b);
  }, 60_000);
  afterAll(async () => {
    await t?.delay(4, null).catch(() => {});
    t?.cleanup();
  });

  it('+20 ms on IPv4: a lowest-latency pair moves to IPv6; without it, back to native after the hold-down', async () => {
    await t.delay(4, 20);
    const rtt = await t.inPod(pa, ['ping', '-c', '3', '-i', '0.1', pb.ipv4]);
    expect(Number(/= [\d.]+\/([\d.]+)\//.exec(rtt)?.[1])).toBeGreaterThan(35); // 20 ms each way
    const bg = talk(pa, pb.ipv4, 8000);
    await waitFor(() => wireOf(pa) === 'ipv6' && wireOf(pb) === 'ipv6', 8000, 'both on IPv6');
    const s = await t.status(da);
    expect(s.pairs[0]).toMatchObject({ preferred: 'IPv6', wire: 'ipv6', policy: 'lowest-latency' });
    expect(s.pairs[0].lastChange.reason).toMatch(/lowest-latency: IPv6 better by the margin/);
    expect(s.peers[0].families.IPv4.latency_ms).toBeGreaterThan(35);
    expect(s.peers[0].families.IPv6.latency_ms).toBeLessThan(10);
    await t.delay(4, null);
    await waitFor(() => wireOf(pa) === 'native' && wireOf(pb) === 'native', 15_000, 'back to native');
    await bg;
  }, 40_000);
});
