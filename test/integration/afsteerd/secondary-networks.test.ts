/**
 * afsteerd per network on two simulated nodes with a primary fabric (bridge, eth0) and a second
 * transport fabric (macvlan, net1; its own router namespace with per-family impairment), pods
 * attached through libcni with CNI_IFNAME=net1 and real daemons configured with
 * `networks: [{ name: "transport", addresses, static }]`: discovery and probing over each network's
 * own node addresses, a TCP stream on net1's addresses surviving a blackhole of one family on the
 * transport fabric (a switch with its reason) while the eth0 pair is untouched, and the reverse; a
 * protected pair on net1; an attachment on a network afsteerd does not know (never steered); DEL
 * leaving nothing of net1 on the node.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEndpoints } from '../../../src/bpf/endpoint-map';
import { listPairs, readWires } from '../../../src/bpf/steering';
import { type Net1, TransportFabric } from '../../support/transport-fabric';
import { type SimDaemon, type SimNode, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('afsteerd per network (primary + transport fabric)');

describe.skipIf(!IS_ROOT)('afsteerd per network: a primary and a transport fabric', () => {
  let t: TwoNodes;
  let fabric: TransportFabric;
  let a0: SimPod, b0: SimPod, a1: SimPod, b1: SimPod;
  let a0n: Net1, b0n: Net1, a1n: Net1, b1n: Net1;
  let da: SimDaemon, db: SimDaemon;
  let port = 6800;

  const wire = (node: SimNode, key: number) => readWires(node.pinDir).find((w) => w.ifindex === key)?.wire;
  const net1Status = async (d: SimDaemon) => ((await t.status(d)).networks as any[])[0];
  const pairOf = (s: any, local: string) => (s.pairs as any[]).find((p) => p.local === local);
  const daemonConfig = (node: SimNode) => ({
    primaryNetwork: `twonode-${node.name}`,
    networks: [
      {
        name: fabric.network,
        addresses: fabric.nodeAddresses(node),
        static: t.nodes.filter((n) => n !== node).map((n) => fabric.nodeAddresses(n)),
      },
    ],
    protection: { budgetBytesPerSecond: 50_000_000 },
  });

  beforeAll(async () => {
    t = new TwoNodes();
    fabric = new TransportFabric(t);
    try {
      await t.up();
      fabric.up();
      a0 = await t.addPod(t.a, 'a0');
      b0 = await t.addPod(t.b, 'b0');
      a1 = await t.addPod(t.a, 'a1');
      b1 = await t.addPod(t.b, 'b1');
      a0n = await fabric.addMacvlan(a0);
      b0n = await fabric.addMacvlan(b0);
      a1n = await fabric.addMacvlan(a1, 'IgnoreUnknown=1;AFSTEER_PROTECT=always');
      b1n = await fabric.addMacvlan(b1);
      // An attachment on a network no daemon is configured for ("sigtran": its own conflist name).
      const stray = fabric.conflist(t.a, 'macvlan');
      stray.name = 'sigtran';
      const ipam = (stray.plugins as any[])[0].ipam;
      ipam.ranges = [[{ subnet: '172.30.1.0/24', rangeStart: '172.30.1.200', rangeEnd: '172.30.1.210', gateway: '172.30.1.1' }]];
      ipam.dataDir = join(t.dir, 'ipam-sigtran');
      ipam.routes = [];
      (stray.plugins as any[])[1].allowSingleStack = true;
      writeFileSync(join(t.dir, 'sigtran.conflist'), JSON.stringify(stray));
      await fabric.driver(t.a, 'add', join(t.dir, 'sigtran.conflist'), a1.nsPath, a1.id, 'net2');
      da = await t.startDaemon(t.a, daemonConfig(t.a));
      db = await t.startDaemon(t.b, daemonConfig(t.b));
      await waitFor(
        async () => {
          const up = (s: any) => s?.peers?.[0]?.families?.IPv4?.state === 'up' && s.peers[0].families.IPv6?.state === 'up';
          return up(await t.status(da)) && up(await t.status(db)) && up(await net1Status(da)) && up(await net1Status(db));
        },
        15_000,
        'both networks up on both families on both nodes',
      );
    } catch (err) {
      fabric.cleanup();
      t.cleanup();
      throw err;
    }
  }, 120_000);
  afterAll(() => {
    fabric?.cleanup();
    t?.cleanup();
  });

  it('discovery and probing per network: the transport network’s peer is heard on its transport addresses; its pods are its own', async () => {
    const s = await t.status(da);
    expect(s.network).toMatchObject({ name: 'twonode-a', primary: true, measuredBy: 'own' });
    expect(s.peers[0].addresses).toEqual(t.nodeAddresses(t.b));
    const n = await net1Status(da);
    expect(n.network).toMatchObject({ name: 'transport', primary: false, measuredBy: 'own' });
    expect(n.addresses).toEqual(fabric.nodeAddresses(t.a));
    expect(n.peers[0]).toMatchObject({ node: 'node-b', addresses: fabric.nodeAddresses(t.b) });
    expect((n.endpoints as any[]).map((e) => e.ipv4).sort()).toEqual([a0n.ipv4, a1n.ipv4].sort());
    expect((s.endpoints as any[]).map((e) => e.ipv4).sort()).toEqual([a0.ipv4, a1.ipv4].sort());
    // The sigtran attachment: nobody's, listed, never announced.
    expect(s.unknownNetworks).toEqual([{ network: 'sigtran', attachments: [`${a1.id}/net2`] }]);
    expect((n.peers[0].endpoints as number) + (s.peers[0].endpoints as number)).toBe(4);
  });

  it('a TCP stream on net1 survives a blackhole of IPv4 on the transport fabric (switch with its reason); the eth0 pair is untouched', async () => {
    await t.inPod(a0, ['ping', '-c', '2', '-i', '0.1', '-W', '1', b0.ipv4]);
    await t.inPod(a0, ['ping', '-c', '2', '-i', '0.1', '-W', '1', b0n.ipv4]);
    await waitFor(() => wire(t.a, a0.hostIfindex) === 'native' && wire(t.b, b0.hostIfindex) === 'native', 5000, 'eth0 pair native');
    await waitFor(() => wire(t.a, a0n.endpoint) === 'native' && wire(t.b, b0n.endpoint) === 'native', 5000, 'net1 pair native');
    const p = ++port;
    const { done } = await t.server(b0, b0n.ipv4, p);
    const client = t.client(a0, b0n.ipv4, p, ['--duration-ms', '5000', '--chunk', '16384', '--interval-ms', '5']);
    await new Promise((r) => setTimeout(r, 1000));
    try {
      await fabric.impair(4, 'blackhole');
      const switchedMs = await waitFor(
        () => wire(t.a, a0n.endpoint) === 'ipv6' && wire(t.b, b0n.endpoint) === 'ipv6',
        3000,
        'net1 on IPv6',
      );
      const [c, s] = [await client, await done];
      expect(s.sha256).toBe(c.sha256);
      expect(s.bytes).toBe(c.bytes);
      console.log(`transport IPv4 blackhole → net1 pair on IPv6 in ${switchedMs} ms; longest receive stall ${s.maxGapMs} ms`);
      expect(switchedMs).toBeLessThan(1000);
      expect(s.maxGapMs as number).toBeLessThan(1000);
      const n = await net1Status(da);
      expect(n.switches.at(-1)).toMatchObject({ pair: `${a0.id}|${b0.id}`, from: 'native', to: 'ipv6' });
      expect(String(n.switches.at(-1).reason)).toMatch(/blackhole on IPv4/);
      // The primary network's pair never moved; its IPv4 is up.
      expect(wire(t.a, a0.hostIfindex)).toBe('native');
      const st = await t.status(da);
      expect(pairOf(st, a0.id)).toMatchObject({ wire: 'native' });
      expect(st.peers[0].families.IPv4.state).toBe('up');
      expect(n.peers[0].families.IPv4.state).toBe('blackhole');
    } finally {
      await fabric.impair(4, null);
    }
  }, 40_000);

  it('and the reverse: a blackhole of IPv4 on the primary fabric moves the eth0 pair and leaves net1 alone', async () => {
    await waitFor(async () => (await net1Status(da)).peers[0].families.IPv4.state === 'up', 8000, 'transport IPv4 up again');
    // net1 back to native once its hold-down is over (kept active meanwhile).
    const keep = t.inPod(a0, ['ping', '-c', '80', '-i', '0.1', '-W', '1', b0n.ipv4]).catch(() => '');
    await waitFor(() => wire(t.a, a0n.endpoint) === 'native' && wire(t.b, b0n.endpoint) === 'native', 10_000, 'net1 back to native');
    const net1Switches = (await net1Status(da)).switchesTotal;
    const p = ++port;
    const { done } = await t.server(b0, b0.ipv4, p);
    const client = t.client(a0, b0.ipv4, p, ['--duration-ms', '4000', '--chunk', '16384', '--interval-ms', '5']);
    await new Promise((r) => setTimeout(r, 700));
    try {
      await t.impair(4, 'blackhole');
      await waitFor(() => wire(t.a, a0.hostIfindex) === 'ipv6' && wire(t.b, b0.hostIfindex) === 'ipv6', 3000, 'eth0 on IPv6');
      const [c, s] = [await client, await done];
      expect(s.sha256).toBe(c.sha256);
      expect(String((await t.status(da)).switches.at(-1).reason)).toMatch(/blackhole on IPv4/);
      expect(wire(t.a, a0n.endpoint)).toBe('native');
      expect((await net1Status(da)).switchesTotal).toBe(net1Switches);
      expect((await net1Status(da)).peers[0].families.IPv4.state).toBe('up');
    } finally {
      await t.impair(4, null);
      await keep;
    }
  }, 40_000);

  it('a protected pair on net1 (AFSTEER_PROTECT=always on the net1 attachment): both ends duplicate; a transport blackhole costs the stream nothing', async () => {
    await t.inPod(a1, ['ping', '-c', '2', '-i', '0.1', '-W', '1', b1n.ipv4]);
    await waitFor(
      async () => {
        const [x, y] = [pairOf(await net1Status(da), a1.id), pairOf(await net1Status(db), b1.id)];
        return x?.protection.duplicating === true && y?.protection.duplicating === true;
      },
      10_000,
      'both ends of the net1 pair duplicating',
    );
    // The eth0 pair of the same pods is not protected: the policy is the attachment's.
    await t.inPod(a1, ['ping', '-c', '2', '-i', '0.1', '-W', '1', b1.ipv4]);
    await waitFor(async () => pairOf(await t.status(da), a1.id) !== undefined, 5000, 'eth0 pair of a1');
    expect(pairOf(await t.status(da), a1.id).protection.protect).toBe('off');
    const p = ++port;
    const { done } = await t.server(b1, b1n.ipv6, p);
    const client = t.client(a1, b1n.ipv6, p, ['--duration-ms', '4000', '--chunk', '8192', '--interval-ms', '5']);
    await new Promise((r) => setTimeout(r, 1500));
    try {
      await fabric.impair(6, 'blackhole');
      const [c, s] = [await client, await done];
      expect(s.sha256).toBe(c.sha256);
      console.log(`protected net1 pair, transport IPv6 blackholed: TCP longest stall ${s.maxGapMs} ms`);
      expect(s.maxGapMs as number).toBeLessThan(200);
      expect(pairOf(await net1Status(db), b1.id).protection.counters.rxDup).toBeGreaterThan(0);
    } finally {
      await fabric.impair(6, null);
    }
  }, 40_000);

  it('host-device (a veth end moved into the pod, its peer left in the transport router): a TCP stream on net1 survives a transport blackhole', async () => {
    const c0 = await t.addPod(t.a, 'c0');
    const c0n = await fabric.addHostDevice(c0);
    expect(c0n.state).toMatchObject({ placement: 'pod', routeMtu: { mtu: 1460 } });
    await waitFor(async () => (await net1Status(da)).endpoints.some((e: any) => e.ipv4 === c0n.ipv4), 8000, 'c0 net1 known to afsteerd');
    await waitFor(async () => (await net1Status(db)).peers[0].endpoints >= 2, 8000, 'b hears of c0 net1');
    await t.inPod(c0, ['ping', '-c', '2', '-i', '0.1', '-W', '1', b1n.ipv4]);
    await waitFor(() => wire(t.a, c0n.endpoint) !== undefined && wire(t.b, b1n.endpoint) !== undefined, 5000, 'c0–b1 net1 pair');
    const p = ++port;
    const { done } = await t.server(b1, b1n.ipv4, p);
    const client = t.client(c0, b1n.ipv4, p, ['--duration-ms', '4000', '--chunk', '16384', '--interval-ms', '5']);
    await new Promise((r) => setTimeout(r, 1000));
    try {
      await fabric.impair(4, 'blackhole');
      await waitFor(() => wire(t.a, c0n.endpoint) === 'ipv6', 3000, 'c0 pair on IPv6');
      const [c, s] = [await client, await done];
      expect(s.sha256).toBe(c.sha256);
      expect(s.bytes).toBe(c.bytes);
      console.log(`host-device net1, transport IPv4 blackhole: longest receive stall ${s.maxGapMs} ms, ${s.bytes} B intact`);
      expect(s.maxGapMs as number).toBeLessThan(1000);
    } finally {
      await fabric.impair(4, null);
    }
  }, 40_000);

  it('DEL of net1 leaves nothing of it on the node: no endpoint, no route, no state; the daemon drops its pairs', async () => {
    await fabric.driver(t.a, 'del', fabric.conflistPath(t.a, 'macvlan'), a0.nsPath, a0.id);
    expect(listEndpoints(t.a.pinDir).has(a0n.endpoint)).toBe(false);
    expect(listPairs(t.a.pinDir).filter((p) => p.ifindex === a0n.endpoint)).toEqual([]);
    await waitFor(async () => !pairOf(await net1Status(da), a0.id), 5000, 'net1 pair of a0 dropped');
    // b's daemon hears a0's net1 is gone and drops its side.
    await waitFor(async () => !pairOf(await net1Status(db), b0.id), 8000, 'net1 pair of b0 dropped');
    await waitFor(() => wire(t.b, b0n.endpoint) === undefined, 8000, 'b0 net1 route cleared');
    // The eth0 attachment of the same pod is still there and still paired.
    expect(listEndpoints(t.a.pinDir).has(a0.hostIfindex)).toBe(true);
    expect(pairOf(await t.status(da), a0.id)).toBeDefined();
  }, 30_000);
});
