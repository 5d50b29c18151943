/**
 * afsteerd's policies between two simulated nodes: latency added to one family with the test's own
 * delay line (a TUN device in the middle namespace; the kernel has no netem), random loss with
 * nftables, pods with their own policy next to pods on the daemon default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPairs } from '../../../src/bpf/steering';
import { type SimDaemon, type SimPod, type TwoNodes, twoNodesWithDaemons, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('afsteerd policies between two simulated nodes');

describe.skipIf(!IS_ROOT)('afsteerd policies between two simulated nodes', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let da: SimDaemon;
  let db: SimDaemon;

  const wireOf = (pod: SimPod) => t.wireOf(pod);
  /** Keeps a pair active: pings in the background for ms. */
  const talk = (from: SimPod, to: string, ms: number) =>
    t.inPod(from, ['ping', '-q', '-c', String(Math.ceil(ms / 100)), '-i', '0.1', '-W', '1', to]).catch(() => '');

  beforeAll(async () => {
    ({ t, pa, pb, da, db } = await twoNodesWithDaemons());
  }, 60_000);
  // The namespaces go, and with them every impairment and delay line.
  afterAll(() => t?.cleanup());

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

  it("the plugin tells afsteerd of ADD at once (no rescan needed), with the pod's policy from CNI_ARGS", async () => {
    // The daemons rescan state files every 60 s here: only the notification can be this fast.
    da.child.kill('SIGTERM');
    await da.exited;
    da = await t.startDaemon(t.a, {
      timers: { announceIntervalMs: 300, peerTimeoutMs: 3000, evalIntervalMs: 100, negotiateIntervalMs: 500, rescanMs: 60_000 },
    });
    const t0 = Date.now();
    await t.addPod(t.a, 'ax', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=cnf-x;AFSTEER_POLICY=weighted:2,0,3');
    const s = await t.status(da);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(s.endpoints.find((e: any) => e.cnf === 'ns1/cnf-x')).toMatchObject({ policy: 'weighted' });
  }, 20_000);

  it('pods with different policies between the same two nodes end up on different families (+20 ms on IPv4, 20% loss on IPv6)', async () => {
    const specs: [string, string | undefined, 'ipv4' | 'ipv6'][] = [
      ['l', undefined, 'ipv6'], // daemon default: lowest-latency
      ['s', 'IgnoreUnknown=1;AFSTEER_POLICY=lowest-loss', 'ipv4'],
      ['w', 'IgnoreUnknown=1;AFSTEER_POLICY=weighted:1,0,0', 'ipv6'],
      ['v', 'IgnoreUnknown=1;AFSTEER_POLICY=weighted:0,0,1', 'ipv4'],
    ];
    const pairs: [SimPod, SimPod, 'ipv4' | 'ipv6'][] = [];
    for (const [n, args, want] of specs) pairs.push([await t.addPod(t.a, `a${n}`, args), await t.addPod(t.b, `b${n}`, args), want]);
    await t.delay(4, 10);
    await t.impair(6, 20);
    try {
      const bg = pairs.map(([a, b]) => talk(a, b.ipv4, 12_000));
      const took = await waitFor(
        () => pairs.every(([a, b, want]) => wireOf(a) === want && wireOf(b) === want),
        12_000,
        "each pair on its policy's family",
      );
      console.log(`four policies settled on their families in ${took} ms`);
      const s = await t.status(da);
      const byLocal = Object.fromEntries((s.pairs as any[]).map((p) => [p.local, p]));
      expect(byLocal['ctr-al']).toMatchObject({ policy: 'lowest-latency', wire: 'ipv6' });
      expect(byLocal['ctr-as']).toMatchObject({ policy: 'lowest-loss', wire: 'ipv4' });
      expect(byLocal['ctr-aw']).toMatchObject({ policy: 'weighted', wire: 'ipv6' });
      expect(byLocal['ctr-av']).toMatchObject({ policy: 'weighted', wire: 'ipv4' });
      await Promise.all(bg);
    } finally {
      await t.delay(4, null);
      await t.impair(6, null);
    }
  }, 60_000);

  it('equal impairment on both families (1% loss, 10 ± 10 ms each way) for 2 minutes: no switch', async () => {
    for (const d of [da, db])
      expect((await t.status(d)).pairs.every((p: any) => p.wire === 'native' || p.wire === 'ipv4' || p.wire === 'ipv6')).toBe(true);
    // Start from native everywhere: wait out the previous test's hold-downs.
    await waitFor(() => listPairs(t.a.pinDir).every((p) => p.wire === 'native'), 30_000, 'native before the run');
    await t.delay(4, 10, 10);
    await t.delay(6, 10, 10);
    await t.impair(4, 1);
    await t.impair(6, 1);
    // The impairments go in one family after the other: the 2 minutes count from when both are
    // in place and the windows hold only impaired samples (200 probes at 20 ms: 4 s).
    const warm = talk(pa, pb.ipv4, 6000);
    await new Promise((r) => setTimeout(r, 6000));
    await warm;
    await waitFor(() => listPairs(t.a.pinDir).every((p) => p.wire === 'native'), 15_000, 'native with both impairments in place');
    const settling = [...(await t.status(da)).switches, ...(await t.status(db)).switches].filter(
      (x: any) => Date.parse(x.at) > Date.now() - 30_000,
    );
    if (settling.length) console.log(`while the impairments went in: ${JSON.stringify(settling)}`);
    const before = [(await t.status(da)).switchesTotal as number, (await t.status(db)).switchesTotal as number];
    try {
      await Promise.all([talk(pa, pb.ipv4, 120_000), talk(pa, pb.ipv6, 120_000)]);
      const [sa, sb] = [await t.status(da), await t.status(db)];
      console.log(
        `2 min equal impairment: IPv4 ${JSON.stringify(sa.peers[0].families.IPv4)} IPv6 ${JSON.stringify(sa.peers[0].families.IPv6)}`,
      );
      expect(sa.peers[0].families.IPv4.latency_ms).toBeGreaterThan(10);
      expect(sa.switchesTotal - before[0]!, JSON.stringify(sa.switches)).toBe(0);
      expect(sb.switchesTotal - before[1]!, JSON.stringify(sb.switches)).toBe(0);
    } finally {
      await t.delay(4, null);
      await t.delay(6, null);
      await t.impair(4, null);
      await t.impair(6, null);
    }
  }, 200_000);
});
