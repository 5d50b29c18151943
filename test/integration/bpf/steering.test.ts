/**
 * The steering data plane between two simulated nodes: pods brought up through the real chain via
 * libcni, a middle namespace counting forwarded packets per family, `ct state invalid drop` in the
 * nodes' forward chains.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireName } from '../../../src/bpf/maps-layout';
import { clearSteering, listPairs, registerRemote, setSteering, unregisterRemote } from '../../../src/bpf/steering';
import { inNetns } from '../../../src/net/netns';
import { nsExec, type SimPod, TwoNodes } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('steering between two simulated nodes');

const MB100 = 100_000_000;

describe.skipIf(!IS_ROOT)('steering between two simulated nodes', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let port = 5000;

  /** Sets the pair's wire family on both nodes, each writer in its node's namespace (whose conntrack it marks), as afsteerd and `afsteer steer` run. */
  const steer = (wire: WireName) => {
    inNetns(t.a.nsPath, () => setSteering(t.a.pinDir, pa.hostIfindex, pb.ipv6, wire));
    inNetns(t.b.nsPath, () => setSteering(t.b.pinDir, pb.hostIfindex, pa.ipv6, wire));
  };
  const pair = (pod: SimPod) => listPairs(pod.node.pinDir).find((p) => p.ifindex === pod.hostIfindex)!;
  const delta = async <T>(fn: () => Promise<T>) => {
    const before = await t.midCounts();
    const out = await fn();
    const after = await t.midCounts();
    return { out, ipv4: after.ipv4 - before.ipv4, ipv6: after.ipv6 - before.ipv6 };
  };
  /** 100 MB from pa to pb over the app family given by the address. */
  const transfer = async (to: string) => {
    const p = ++port;
    const { done } = await t.server(pb, to, p);
    const client = await t.client(pa, to, p, ['--bytes', String(MB100)]);
    return { client, server: await done };
  };

  beforeAll(async () => {
    t = new TwoNodes();
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    registerRemote(t.a.pinDir, { ipv4: pb.ipv4, ipv6: pb.ipv6 });
    registerRemote(t.b.pinDir, { ipv4: pa.ipv4, ipv6: pa.ipv6 });
  }, 60_000);
  afterAll(() => t?.cleanup());

  it('native before any steering: each family crosses the middle as itself', async () => {
    const v4 = await delta(() => nsExec(pa.nsPath, ['ping', '-c', '3', '-i', '0.05', '-W', '2', pb.ipv4]));
    expect(v4.ipv4).toBeGreaterThanOrEqual(6);
    expect(v4.ipv6).toBe(0);
  });

  it('an IPv4 app pair steered to IPv6 moves 100 MB with zero IPv4 packets in the middle, same sha256', async () => {
    steer('ipv6');
    const encap0 = pair(pa).counters!.encapPackets[0];
    const decap0 = pair(pb).counters!.decapPackets[0];
    const r = await delta(() => transfer(pb.ipv4));
    expect(r.ipv4).toBe(0);
    expect(r.ipv6).toBeGreaterThan(1000);
    expect(r.out.server.sha256).toBe(r.out.client.sha256);
    expect(r.out.server.bytes).toBe(MB100);
    expect(r.out.server.family).toBe('IPv4');
    const encapped = pair(pa).counters!.encapPackets[0] - encap0;
    expect(encapped).toBeGreaterThan(0n);
    // Every GSO packet node A encapsulated reached pod b0's veth whole (afsteer_bridge_out keeps
    // the bridge from segmenting it): one decapsulation per encapsulation.
    expect(pair(pb).counters!.decapPackets[0] - decap0).toBe(encapped);
  });

  it('an IPv6 app pair steered to IPv4 (set with the operator command) moves 100 MB with zero IPv6 packets in the middle', async () => {
    await t.steerCmd(t.a, ['set', pa.ipv4, pb.ipv6, 'ipv4']);
    await t.steerCmd(t.b, ['set', pb.ipv6, pa.ipv4, 'ipv4']);
    const shown = JSON.parse(await t.steerCmd(t.a, ['show', '--json'])) as { pairs: { wire: string; remoteIpv6: string }[] };
    expect(shown.pairs).toEqual([expect.objectContaining({ wire: 'ipv4', remoteIpv6: pb.ipv6 })]);
    const r = await delta(() => transfer(pb.ipv6));
    expect(r.ipv6).toBe(0);
    expect(r.ipv4).toBeGreaterThan(1000);
    expect(r.out.server.sha256).toBe(r.out.client.sha256);
    expect(r.out.server.family).toBe('IPv6');
  });

  it('UDP and ping both ways stay off the app family on the wire', async () => {
    for (const [wire, fam] of [
      ['ipv6', 4],
      ['ipv4', 6],
    ] as const) {
      steer(wire);
      const dst = (p: SimPod) => (fam === 4 ? p.ipv4 : p.ipv6);
      const r = await delta(async () => {
        await nsExec(pa.nsPath, ['ping', `-${fam}`, '-c', '5', '-i', '0.05', '-W', '2', dst(pb)]);
        await nsExec(pb.nsPath, ['ping', `-${fam}`, '-c', '5', '-i', '0.05', '-W', '2', dst(pa)]);
        const p = ++port;
        const { done } = await t.server(pb, dst(pb), p, false, 'udp-server', ['--count', '50']);
        const c = await t.client(pa, dst(pb), p, ['--count', '50', '--size', '1400'], 'udp-client');
        return { c, s: await done };
      });
      expect(r.out.c).toEqual({ sent: 50, echoed: 50 });
      expect(fam === 4 ? r.ipv4 : r.ipv6, `app IPv${fam} packets crossing the middle with wire ${wire}`).toBe(0);
      expect(fam === 4 ? r.ipv6 : r.ipv4).toBeGreaterThanOrEqual(120);
    }
  });

  it('UDP GSO (UDP_SEGMENT) from a pod is encapsulated whole, both ways of steering: every datagram arrives intact', async () => {
    for (const [wire, fam] of [
      ['ipv6', 4],
      ['ipv4', 6],
    ] as const) {
      steer(wire);
      const to = fam === 4 ? pb.ipv4 : pb.ipv6;
      const i = fam === 4 ? 0 : 1;
      const p = ++port;
      // Neighbours resolved first: a burst toward an unresolved neighbour may overflow its queue.
      await nsExec(pa.nsPath, ['ping', `-${fam}`, '-c', '1', '-W', '2', to]);
      const before = pair(pa).counters!;
      const r = await delta(async () => {
        const { done } = await t.udpGsoReceiver(pb, to, p, 400, 1000);
        const sent = await t.udpGsoSend(pa, to, p, 50, 8, 1000);
        return { sent, got: await done };
      });
      const after = pair(pa).counters!;
      expect(r.out.sent).toEqual({ sent: 400 });
      expect(r.out.got).toEqual({ received: 400, corrupt: 0, duplicate: 0 });
      expect(fam === 4 ? r.ipv4 : r.ipv6, `app IPv${fam} packets crossing the middle with wire ${wire}`).toBe(0);
      expect(after.encapFail - before.encapFail).toBe(0n);
      // The 50 GSO packets were encapsulated as such (not 400 datagrams one by one).
      const encapsulated = after.encapPackets[i]! - before.encapPackets[i]!;
      expect(encapsulated).toBeGreaterThanOrEqual(50n);
      expect(encapsulated).toBeLessThan(400n);
    }
  });

  for (const fam of [4, 6] as const) {
    it(`one IPv${fam} TCP connection survives 20 switches (native <-> IPv${fam === 4 ? 6 : 4}) with ct state invalid drop, data intact both ways`, async () => {
      const other: WireName = fam === 4 ? 'ipv6' : 'ipv4';
      steer('native');
      const to = fam === 4 ? pb.ipv4 : pb.ipv6;
      const p = ++port;
      const before = await t.midCounts();
      const drops0 = { a: await t.invalidDrops(t.a), b: await t.invalidDrops(t.b) };
      let dropsAfterFirst = -1;
      const { done } = await t.server(pb, to, p, true);
      const client = t.client(pa, to, p, ['--duration-ms', '7000', '--chunk', '16384', '--interval-ms', '2', '--echo']);
      const seen: string[] = [];
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 300));
        if (i === 1) dropsAfterFirst = await t.invalidDrops(t.b);
        steer(i % 2 === 0 ? other : 'native');
        if (i === 5) {
          // The applications only ever see their own family.
          seen.push(await nsExec(pa.nsPath, ['ss', '-tnH', 'state', 'established']));
          seen.push(await nsExec(pb.nsPath, ['ss', '-tnH', 'state', 'established']));
        }
      }
      const c = await client;
      const s = await done;
      const after = await t.midCounts();
      // The nodes track TCP strictly (afsteer changed no node-wide setting); each node's writer
      // marks the pair's entries liberal when it writes. Node A writes first: its entries are
      // liberal before its data leaves the native path, and nothing is INVALID there. The stream
      // began after B's last write, so between A's first switch and B's (one-shot writers, one
      // after the other) B's entry sees B's ACKs for data it never saw: a few INVALID at that
      // first switch only (afsteerd's pairs are marked as both nodes switch together: the
      // negotiator test has none), never again in the 19 switches after it.
      for (const n of [t.a, t.b])
        expect((await nsExec(n.nsPath, ['sysctl', '-n', 'net.netfilter.nf_conntrack_tcp_be_liberal'])).trim()).toBe('0');
      expect((await t.invalidDrops(t.a)) - drops0.a, 'INVALID drops on node a').toBe(0);
      expect(await t.invalidDrops(t.b), 'INVALID drops on node b after the first switch').toBe(dropsAfterFirst);
      expect(c.echoSha256).toBe(c.sha256);
      expect(s.sha256).toBe(c.sha256);
      expect(Number(c.bytes)).toBeGreaterThan(5_000_000);
      // Both families really carried the stream.
      expect(after.ipv4 - before.ipv4).toBeGreaterThan(100);
      expect(after.ipv6 - before.ipv6).toBeGreaterThan(100);
      const c4 = pair(pa).counters!;
      expect(c4.encapPackets[fam - 4 === 0 ? 0 : 1]).toBeGreaterThan(0n);
      expect(c4.nativePackets[fam - 4 === 0 ? 0 : 1]).toBeGreaterThan(0n);
      for (const out of seen) {
        const lines = out.trim().split('\n').filter(Boolean);
        expect(lines.length).toBeGreaterThan(0);
        for (const l of lines) expect(l.includes('[') || l.includes('::')).toBe(fam === 6);
      }
    });
  }

  it('a pair with no steering entry, or whose peer is unknown, stays native', async () => {
    clearSteering(t.a.pinDir, pa.hostIfindex, pb.ipv6);
    clearSteering(t.b.pinDir, pb.hostIfindex, pa.ipv6);
    const noEntry = await delta(() => nsExec(pa.nsPath, ['ping', '-4', '-c', '3', '-i', '0.05', '-W', '2', pb.ipv4]));
    expect(noEntry.ipv4).toBeGreaterThanOrEqual(6);
    expect(noEntry.ipv6).toBe(0);
    unregisterRemote(t.a.pinDir, pb.ipv4);
    unregisterRemote(t.b.pinDir, pa.ipv4);
    const unknown = await delta(() => nsExec(pa.nsPath, ['ping', '-6', '-c', '3', '-i', '0.05', '-W', '2', pb.ipv6]));
    expect(unknown.ipv6).toBeGreaterThanOrEqual(6);
    expect(unknown.ipv4).toBe(0);
    registerRemote(t.a.pinDir, { ipv4: pb.ipv4, ipv6: pb.ipv6 });
    registerRemote(t.b.pinDir, { ipv4: pa.ipv4, ipv6: pa.ipv6 });
  });

  it('with checksum offload off in the pods (receiver verifies checksums) steered transfers stay intact', async () => {
    for (const p of [pa, pb]) await nsExec(p.nsPath, ['ethtool', '-K', 'eth0', 'tx', 'off', 'rx', 'off']);
    try {
      steer('ipv6');
      const v4 = await delta(() => transfer(pb.ipv4));
      expect(v4.ipv4).toBe(0);
      expect(v4.out.server.sha256).toBe(v4.out.client.sha256);
      steer('ipv4');
      const v6 = await delta(() => transfer(pb.ipv6));
      expect(v6.ipv6).toBe(0);
      expect(v6.out.server.sha256).toBe(v6.out.client.sha256);
    } finally {
      for (const p of [pa, pb]) await nsExec(p.nsPath, ['ethtool', '-K', 'eth0', 'tx', 'on', 'rx', 'on']);
    }
  });

  it('the operator command lists remotes, and explains bad input with exit codes 2 (usage) and 1 (state)', async () => {
    const remotes = JSON.parse(await t.steerCmd(t.a, ['remote', 'list', '--json'])) as { ipv4: string; ipv6: string }[];
    expect(remotes).toEqual([{ ipv4: pb.ipv4, ipv6: pb.ipv6 }]);
    const fail = (args: string[]) =>
      t.steerCmd(t.a, args).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    expect(await fail(['set', pa.ipv4, pb.ipv4, 'ipv5'])).toEqual({
      code: 2,
      stderr: expect.stringMatching(/family must be ipv4, ipv6 or native/),
    });
    expect(await fail(['frob'])).toMatchObject({ code: 2 });
    expect(await fail(['set', '10.99.99.99', pb.ipv4, 'ipv6'])).toEqual({
      code: 1,
      stderr: expect.stringMatching(/no local pod has address 10.99.99.99/),
    });
    expect(await fail(['set', pa.ipv4, '10.77.0.1', 'ipv6'])).toEqual({
      code: 1,
      stderr: expect.stringMatching(/not a registered remote pod/),
    });
  });

  it('same-node peers are refused and never steered', async () => {
    const pa2 = await t.addPod(t.a, 'a1');
    expect(() => registerRemote(t.a.pinDir, { ipv4: pa2.ipv4, ipv6: pa2.ipv6 })).toThrow(/same-node pairs are never steered/);
    const r = await delta(() => nsExec(pa.nsPath, ['ping', '-4', '-c', '3', '-i', '0.05', '-W', '2', pa2.ipv4]));
    expect(r.ipv4 + r.ipv6).toBe(0);
  });
});
