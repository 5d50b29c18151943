/**
 * afsteerd between two simulated nodes: real daemons (dist/afsteerd, started from config files)
 * in each node's namespace exchanging real UDP across the routed middle namespace, pods through
 * the real chain via libcni, impairments per family in the middle (nftables drop / random loss).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, announceSkip } from './helpers/world';
import { TwoNodes, waitFor, type SimDaemon, type SimPod } from './helpers/two-nodes';
import { listPairs, listRemotes } from '../../src/bpf/steering';

announceSkip('afsteerd between two simulated nodes');

describe.skipIf(!IS_ROOT)('afsteerd between two simulated nodes', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let da: SimDaemon;
  let db: SimDaemon;
  let port = 6500;

  const wireOf = (pod: SimPod) => listPairs(pod.node.pinDir).find((p) => p.ifindex === pod.hostIfindex)?.wire;
  const pairOf = async (d: SimDaemon) => ((await t.status(d)).pairs as any[])[0];

  beforeAll(async () => {
    t = new TwoNodes();
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    da = await t.startDaemon(t.a);
    db = await t.startDaemon(t.b);
  }, 60_000);
  afterAll(async () => {
    await t?.impair(4, null).catch(() => {});
    t?.cleanup();
  });

  it('discovery converges over static peers: each node sees the other on both families and registers its pod', async () => {
    await waitFor(async () => {
      const [sa, sb] = [await t.status(da), await t.status(db)];
      const up = (s: any) => s.peers.length === 1 && s.peers[0].families.IPv4?.state === 'up' && s.peers[0].families.IPv6?.state === 'up';
      return up(sa) && up(sb);
    }, 10_000, 'both peers up on both families');
    expect(listRemotes(t.a.pinDir)).toEqual([{ ipv4: pb.ipv4, ipv6: pb.ipv6 }]);
    expect(listRemotes(t.b.pinDir)).toEqual([{ ipv4: pa.ipv4, ipv6: pa.ipv6 }]);
    // Pairs are negotiated on demand: none before the pods talk.
    expect((await t.status(da)).pairs).toEqual([]);
    expect(listPairs(t.a.pinDir)).toEqual([]);
  });

  it('a pair appears on both nodes when the pods talk, native, with decapsulation confirmed by the peer', async () => {
    await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', pb.ipv4]);
    await waitFor(async () => (await pairOf(da))?.peerDecap === true && (await pairOf(db))?.peerDecap === true, 5000, 'pair on both nodes');
    const [a, b] = [await pairOf(da), await pairOf(db)];
    expect(a).toMatchObject({ local: 'ctr-a0', remote: 'ctr-b0', peer: 'node-b', leader: true, wire: 'native', preferred: null });
    expect(b).toMatchObject({ local: 'ctr-b0', remote: 'ctr-a0', peer: 'node-a', leader: false, wire: 'native', preferred: null });
    expect(wireOf(pa)).toBe('native');
    expect(wireOf(pb)).toBe('native');
  });

  it('blackholing the family a live TCP stream is on moves both sending directions off it; the stream survives intact; after the hold-down it goes back to native', async () => {
    const p = ++port;
    const { done } = await t.server(pb, pb.ipv4, p);
    const client = t.client(pa, pb.ipv4, p, ['--duration-ms', '5000', '--chunk', '16384', '--interval-ms', '5']);
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    await t.impair(4, 'blackhole');
    const switchedMs = await waitFor(() => wireOf(pa) === 'ipv6' && wireOf(pb) === 'ipv6', 3000, 'both nodes on IPv6');
    const [c, s] = [await client, await done];
    expect(s.sha256).toBe(c.sha256);
    expect(s.bytes).toBe(c.bytes);
    console.log(`blackhole → both maps on IPv6 in ${switchedMs} ms (polled every 20 ms); longest receive stall ${s.maxGapMs} ms`);
    expect(switchedMs).toBeLessThan(1000);
    expect(s.maxGapMs as number).toBeLessThan(1000);
    const sw = (await t.status(da)).switches as any[];
    expect(sw.at(-1)).toMatchObject({ pair: 'ctr-a0|ctr-b0', from: 'native', to: 'ipv6' });
    expect(String(sw.at(-1).reason)).toMatch(/blackhole on IPv4/);
    expect(da.logs.some((l) => l.msg === 'switch' && l.to === 'ipv6' && /blackhole/.test(String(l.reason)))).toBe(true);

    // Restore: held down, then native again (lowest-latency: neither family wins by the margin).
    await t.impair(4, null);
    const restoredAt = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    expect(wireOf(pa)).toBe('ipv6');
    // Keep the pair active while waiting.
    const keep = t.inPod(pa, ['ping', '-c', '60', '-i', '0.1', '-W', '1', pb.ipv4]).catch(() => '');
    await waitFor(() => wireOf(pa) === 'native' && wireOf(pb) === 'native', 10_000, 'back to native after the hold-down');
    expect(Date.now() - restoredAt).toBeGreaterThanOrEqual(2500);
    void keep;
    void t0;
  }, 30_000);
});
