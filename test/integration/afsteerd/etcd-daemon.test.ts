/**
 * afsteerd with etcd discovery only: three simulated nodes around the routed middle namespace
 * (multicast off, and no multicast routing there anyway; no static peers), pods through the real
 * chain, and etcd (Debian's etcd-server) in the middle namespace on 192.168.1.1, reached by every
 * node through its default route. Discovery converges from the etcd records alone; an etcd
 * restart and etcd down for AFSTEER_ETCD_OUTAGE_S (default 30) seconds change no peer and no
 * pair's wire; a killed node ages out as a silent peer does and its record goes with its lease.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRemotes } from '../../../src/bpf/steering';
import { ETCD_BIN, EtcdServer } from '../../support/etcd';
import { type SimDaemon, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

const OUTAGE_MS = Number(process.env.AFSTEER_ETCD_OUTAGE_S ?? 30) * 1000;
announceSkip('afsteerd with etcd discovery');
if (IS_ROOT && !ETCD_BIN)
  console.warn('SKIPPED afsteerd with etcd discovery: no etcd binary (apt-get install etcd-server; scripts/setup.sh installs it)');

describe.skipIf(!IS_ROOT || !ETCD_BIN)('afsteerd with etcd discovery across a router', () => {
  let t: TwoNodes;
  let etcd: EtcdServer;
  let pa: SimPod, pb: SimPod, pc: SimPod;
  let d: SimDaemon[];

  beforeAll(async () => {
    t = new TwoNodes('bridge', 3);
    await t.up();
    etcd = new EtcdServer({ nsPath: `/run/netns/${t.mid}`, host: '192.168.1.1' });
    await etcd.start();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    pc = await t.addPod(t.c!, 'c0');
    const discovery = { multicast: false, static: [], etcd: { endpoints: [etcd.url], leaseTtlS: 3 } };
    d = [await t.startDaemon(t.a, { discovery }), await t.startDaemon(t.b, { discovery }), await t.startDaemon(t.c!, { discovery })];
  }, 90_000);
  afterAll(async () => {
    t?.cleanup();
    await etcd?.destroy();
  });

  const wire = (pod: SimPod, remote: SimPod) =>
    (t.status(d[[t.a, t.b, t.c].indexOf(pod.node)]!) as Promise<any>).then((s) => s.pairs.find((p: any) => p.remote === remote.id)?.wire);
  const peerNames = async (x: SimDaemon) =>
    ((await t.status(x)).peers as any[])
      .map((p) => p.node)
      .sort()
      .join();

  it('discovery converges from etcd records alone: every node has the other two as peers on both families, and their pods as remotes', async () => {
    await waitFor(
      async () => {
        for (const x of d) {
          const s = await t.status(x);
          if (s.peers.length !== 2 || s.peers.some((p: any) => p.families.IPv4?.state !== 'up' || p.families.IPv6?.state !== 'up'))
            return false;
        }
        return true;
      },
      20_000,
      'three nodes converged over etcd',
    );
    expect(
      listRemotes(t.a.pinDir)
        .map((r) => r.ipv4)
        .sort(),
    ).toEqual([pb.ipv4, pc.ipv4].sort());
    const s = await t.status(d[0]!);
    expect(s.etcd).toMatchObject({ reachable: true, targets: 2 });
    expect(s.counters.tx.announce).toBeGreaterThan(0);
  });

  it(`an etcd restart and etcd down for ${OUTAGE_MS / 1000} s change no peer and no pair's wire`, async () => {
    const keep = [
      t.inPod(pa, ['ping', '-q', '-c', String(Math.ceil((OUTAGE_MS + 20_000) / 500)), '-i', '0.5', '-W', '1', pb.ipv4]).catch(() => ''),
      t.inPod(pa, ['ping', '-q', '-c', String(Math.ceil((OUTAGE_MS + 20_000) / 500)), '-i', '0.5', '-W', '1', pc.ipv4]).catch(() => ''),
    ];
    await waitFor(async () => (await wire(pa, pb)) === 'native' && (await wire(pa, pc)) === 'native', 10_000, 'both pairs negotiated');
    const before = await Promise.all([wire(pa, pb), wire(pb, pa), wire(pa, pc), wire(pc, pa)]);
    const problems: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = await Promise.all([wire(pa, pb), wire(pb, pa), wire(pa, pc), wire(pc, pa)]);
        if (now.join() !== before.join()) problems.push(`wires ${now.join()} (were ${before.join()})`);
        for (const [i, x] of d.entries()) {
          const p = await peerNames(x);
          const want = ['node-a', 'node-b', 'node-c'].filter((_, j) => j !== i).join();
          if (p !== want) problems.push(`${x.node.name} peers ${p}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      await etcd.stop();
      await etcd.start();
      await waitFor(
        async () => (await Promise.all(d.map((x) => t.status(x)))).every((s) => s.etcd.reachable),
        15_000,
        'every daemon back on etcd after the restart',
      );
      await etcd.stop();
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      const down = await Promise.all(d.map((x) => t.status(x)));
      for (const s of down) expect(s.etcd).toMatchObject({ reachable: false, targets: 2 });
      await etcd.start();
      await waitFor(
        async () => (await Promise.all(d.map((x) => t.status(x)))).every((s) => s.etcd.reachable && s.etcd.targets === 2),
        15_000,
        'every daemon back on etcd after the outage',
      );
    } finally {
      sampling = false;
      await sampler;
    }
    expect(problems.slice(0, 5)).toEqual([]);
    for (const x of d) expect(x.logs.filter((l) => String(l.msg).startsWith('etcd unreachable')).length).toBeLessThanOrEqual(2);
    await Promise.all(keep);
  }, 120_000);

  it('a killed node ages out as a silent peer does, and its record goes with its lease', async () => {
    d[2]!.child.kill('SIGKILL');
    await d[2]!.exited;
    await waitFor(async () => (await peerNames(d[0]!)) === 'node-b' && (await peerNames(d[1]!)) === 'node-a', 10_000, 'node-c aged out');
    await waitFor(async () => (await t.status(d[0]!)).etcd.targets === 1, 10_000, "node-c's record gone (lease expired)");
    expect(d[0]!.logs.some((l) => l.msg === 'peer aged out' && l.peer === 'node-c')).toBe(true);
  });
});
