/**
 * Rolling migration from the cluster key to identities, one node at a time, with live streams:
 * three routed nodes on the cluster key, IPv4 blackholed in the middle so both streams (A's pod
 * → B's pod, C's pod → A's pod, over IPv4) are steered into IPv6; then each node restarted with
 * auth "both", then each with auth "identity". Every pod's steering is watched every 20 ms
 * throughout: it never leaves IPv6 (no switch), no daemon logs a switch, both streams arrive
 * whole (sha256 equal), and at the end every node speaks identity with both peers certified.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWires } from '../../../src/bpf/steering';
import { issueSimIdentities } from '../../support/identities';
import { type SimDaemon, type SimNode, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('identities: rolling migration');

describe.skipIf(!IS_ROOT)('identities: rolling migration from the cluster key', () => {
  let t: TwoNodes;
  let pa: SimPod, pb: SimPod, pc: SimPod;
  const d: Record<string, SimDaemon> = {};
  let dirs: Record<string, string>;

  beforeAll(async () => {
    t = new TwoNodes('bridge', 3);
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    pc = await t.addPod(t.c!, 'c0');
    ({ dirs } = await issueSimIdentities(t));
    for (const n of t.nodes) d[n.name] = await t.startDaemon(n);
  }, 90_000);
  afterAll(async () => {
    await t?.impair(4, null).catch(() => {});
    t?.cleanup();
  });

  const config = (n: SimNode, mode: 'both' | 'identity') =>
    mode === 'both' ? { auth: 'both', identity: dirs[n.name] } : { keyFile: undefined, identity: dirs[n.name] };
  /** Every wire of a pod's pairs in its node's map. */
  const wiresOf = (pod: SimPod) =>
    readWires(pod.node.pinDir)
      .filter((w) => w.ifindex === pod.hostIfindex)
      .map((w) => w.wire);

  it('cluster-key → both → identity, one node at a time: no switch, no stream broken', async () => {
    await waitFor(
      async () => {
        for (const x of Object.values(d)) if ((await t.status(x)).peers.length !== 2) return false;
        return true;
      },
      15_000,
      'three cluster-key nodes converged',
    );
    await t.impair(4, 'blackhole');
    const ab = await t.server(pb, pb.ipv4, 6800);
    const ca = await t.server(pa, pa.ipv4, 6801);
    const opts = ['--duration-ms', '40000', '--chunk', '16384', '--interval-ms', '10'];
    const clientAB = t.client(pa, pb.ipv4, 6800, opts);
    const clientCA = t.client(pc, pa.ipv4, 6801, opts);
    let streaming = true;
    void Promise.allSettled([clientAB, clientCA]).then(() => (streaming = false));
    await waitFor(
      () => wiresOf(pa).length === 2 && [...wiresOf(pa), ...wiresOf(pb), ...wiresOf(pc)].every((w) => w === 'ipv6'),
      8000,
      'both streams steered into IPv6',
    );
    const seen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const p of [pa, pb, pc]) for (const w of wiresOf(p)) seen.add(`${p.id}:${w}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (const mode of ['both', 'identity'] as const) {
      for (const n of t.nodes) {
        d[n.name]!.child.kill('SIGTERM');
        expect(await d[n.name]!.exited).toBe(0);
        d[n.name] = await t.startDaemon(n, config(n, mode));
        const x = d[n.name]!;
        await waitFor(
          async () => {
            const s = await t.status(x);
            return s.peers.length === 2 && s.pairs.length >= 1 && s.pairs.every((p: any) => !p.adopted && p.wire === 'ipv6');
          },
          10_000,
          `node ${n.name} back with auth ${mode}`,
        );
      }
    }
    // Every restart happened while both streams ran.
    expect(streaming).toBe(true);
    const [cab, sab, cca, sca] = [await clientAB, await ab.done, await clientCA, await ca.done];
    watching = false;
    await watch;
    expect([...seen].sort()).toEqual([`${pa.id}:ipv6`, `${pb.id}:ipv6`, `${pc.id}:ipv6`]);
    expect(sab.sha256).toBe(cab.sha256);
    expect(sca.sha256).toBe(cca.sha256);
    for (const x of Object.values(d)) {
      const s = await t.status(x);
      expect(s.switches).toEqual([]);
      expect(s.identity).toMatchObject({ mode: 'identity', certifiedPeers: 2 });
      expect(s.peers.every((p: any) => p.families.IPv6?.state === 'up')).toBe(true);
    }
  }, 150_000);
});
