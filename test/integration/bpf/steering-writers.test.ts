/**
 * Two writers of one node's real steering maps (root): afsteerd running with a pair of its own
 * and the operator's `afsteer steer` (the real executable) — the CLI's pair keeps its counter
 * slot and counts when afsteerd makes a pair next to it; then a held-open writer and a per-call
 * writer interleaved for thousands of operations on the real pinned maps, checked after every few
 * against both writers' records, while the daemon's pair stays as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPairs } from '../../../src/bpf/steering';
import { openSteeringMaps, SteeringWriter } from '../../../src/bpf/steering-writer';
import { interleaveWriters } from '../../support/steering-interleave';
import { type SimDaemon, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('two steering writers on real maps');

describe.skipIf(!IS_ROOT)('two steering writers on real maps', () => {
  let t: TwoNodes;
  let pa: SimPod, pa1: SimPod, pb: SimPod;
  let da: SimDaemon;

  beforeAll(async () => {
    t = new TwoNodes();
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pa1 = await t.addPod(t.a, 'a1');
    pb = await t.addPod(t.b, 'b0');
    da = await t.startDaemon(t.a);
    await t.startDaemon(t.b);
  }, 60_000);
  afterAll(() => t?.cleanup());

  const pings = (pod: SimPod, to: string, n: number) =>
    t.inPod(pod, ['ping', '-c', String(n), '-i', '0.01', '-W', '0.2', to]).catch(() => '');

  it('afsteer steer while afsteerd runs: the CLI pair keeps its counter slot and keeps counting when the daemon makes a pair beside it', async () => {
    await t.steerCmd(t.a, ['remote', 'add', '10.99.0.2', 'fd00:99::2']);
    await t.steerCmd(t.a, ['set', pa.ipv4, '10.99.0.2', 'ipv6']);
    await pings(pa, '10.99.0.2', 10);
    const cliPair = () => listPairs(t.a.pinDir).find((p) => p.remoteIpv4 === '10.99.0.2')!;
    expect(cliPair().counters!.encapPackets[0] + cliPair().counters!.encapPackets[1]).toBe(10n);
    // The pod talks to a pod on node B: afsteerd makes its own pair.
    await pings(pa, pb.ipv4, 3);
    await waitFor(async () => ((await t.status(da)).pairs as unknown[]).length === 1, 5000, 'afsteerd pair');
    const daemonPair = listPairs(t.a.pinDir).find((p) => p.remoteIpv6 === pb.ipv6)!;
    expect(daemonPair).toBeDefined();
    expect(cliPair()).toMatchObject({ wire: 'ipv6' });
    expect(daemonPair.pair).not.toBe(cliPair().pair);
    expect(cliPair().counters!.encapPackets[0] + cliPair().counters!.encapPackets[1]).toBe(10n);
    await pings(pa, '10.99.0.2', 10);
    expect(cliPair().counters!.encapPackets[0] + cliPair().counters!.encapPackets[1]).toBe(20n);
    // And the other way round: a CLI remote added after the daemon's pair keeps the daemon's bloom bits.
    await t.steerCmd(t.a, ['remote', 'add', '10.99.0.3', 'fd00:99::3']);
    await pings(pa, pb.ipv4, 3);
    expect(listPairs(t.a.pinDir).find((p) => p.remoteIpv6 === pb.ipv6)!.pair).toBe(daemonPair.pair);
    await t.steerCmd(t.a, ['remote', 'del', '10.99.0.2']);
    await t.steerCmd(t.a, ['remote', 'del', '10.99.0.3']);
  });

  it("3,000 interleaved operations of a held writer and per-call writers on the real maps: neither takes the other's index or bloom bits; the daemon's pair stays", async () => {
    const before = listPairs(t.a.pinDir).find((p) => p.remoteIpv6 === pb.ipv6);
    const held = SteeringWriter.open(t.a.pinDir);
    try {
      const r = interleaveWriters(
        {
          held,
          openOneShot: () => SteeringWriter.open(t.a.pinDir),
          openMaps: () => {
            const maps = openSteeringMaps(t.a.pinDir);
            return { maps, close: () => Object.values(maps).forEach((m) => m?.close()) };
          },
          ifindexes: [pa.hostIfindex, pa1.hostIfindex],
        },
        3000,
        10,
      );
      console.log(
        `two writers: ${r.operations} operations, ${r.resyncsForOthers} re-reads after the other wrote, up to ${r.maxPairs} pairs`,
      );
      expect(r.maxPairs).toBeGreaterThan(10);
      expect(r.resyncsForOthers).toBeGreaterThan(100);
    } finally {
      held.close();
    }
    const after = listPairs(t.a.pinDir).find((p) => p.remoteIpv6 === pb.ipv6);
    if (before && after) expect({ pair: after.pair, wire: after.wire }).toEqual({ pair: before.pair, wire: before.wire });
  }, 120_000);
});
