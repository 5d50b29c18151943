/**
 * afsteerd per network, with real negotiators (NetworkSet: one Daemon per network) over in-memory
 * maps and two in-memory networks on one clock: discovery per network, a pair only between two
 * attachments of the same network, each network's pairs steered by its own measurements (a
 * blackhole on the transport network moves the net1 pair and leaves the eth0 pair alone, and the
 * reverse), a network without addresses measured over the primary's (status says so), and an
 * attachment on a network the node does not know never steered.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EP_KEY_POD } from '../../../src/bpf/maps-layout';
import { configureLog } from '../../../src/util/log';
import { type NetNode, NetworksCluster, PRIMARY, TRANSPORT } from '../../support/memory-networks';

beforeAll(() => configureLog({ level: 'error' }));

let cluster: NetworksCluster | undefined;
afterEach(() => {
  cluster?.stop();
  cluster = undefined;
});

/** Two nodes, both pairs (eth0–eth0, net1–net1) made on demand and negotiated: IPv6 the faster family on both networks. */
async function bothPairsOnIpv6() {
  const c = (cluster = new NetworksCluster(2));
  for (const net of [c.primaryNet, c.transportNet]) {
    net.latencyMs[4] = 10;
    net.latencyMs[6] = 1;
  }
  const [a, b] = c.nodes as [NetNode, NetNode];
  await c.start();
  c.clock.advance(1500);
  c.firstPacket(a, a.eth0, b.eth0.ipv4);
  c.firstPacket(a, a.net1, b.net1.ipv4);
  const onV6 = () =>
    c.wire(a, a.eth0, b.eth0.ipv6) === 'ipv6' &&
    c.wire(b, b.eth0, a.eth0.ipv6) === 'ipv6' &&
    c.wire(a, a.net1, b.net1.ipv6) === 'ipv6' &&
    c.wire(b, b.net1, a.net1.ipv6) === 'ipv6';
  expect(c.clock.advanceUntil(onV6, 5000)).toBeDefined();
  return { c, a, b };
}

describe('afsteerd per network, in memory', () => {
  it('discovery runs per network: each network has its peers and registers only that network’s pods', async () => {
    const c = (cluster = new NetworksCluster(2));
    const [a, b] = c.nodes as [NetNode, NetNode];
    await c.start();
    c.clock.advance(1500);
    const st = a.set.status();
    expect(st.network).toMatchObject({ name: PRIMARY, primary: true, measuredBy: 'own' });
    expect(st.endpoints.map((e) => e.ipv4)).toEqual([a.eth0.ipv4]);
    expect(st.peers.map((p) => [p.node, p.addresses.ipv4])).toEqual([[b.name, '10.0.0.2']]);
    expect(st.networks).toHaveLength(1);
    const t = st.networks![0]!;
    expect(t.network).toMatchObject({ name: TRANSPORT, primary: false, measuredBy: 'own' });
    expect(t.endpoints.map((e) => [e.ipv4, e.ifindex])).toEqual([[a.net1.ipv4, (EP_KEY_POD | 1) >>> 0]]);
    expect(t.peers.map((p) => [p.node, p.addresses.ipv4])).toEqual([[b.name, '172.30.0.2']]);
    for (const p of [...st.peers, ...t.peers]) expect(Object.keys(p.families).sort()).toEqual(['IPv4', 'IPv6']);
    // Both of b's attachments are remote pods on a, each registered by its own network's negotiator.
    expect(
      a.writer
        .listRemotes()
        .map((r) => r.ipv4)
        .sort(),
    ).toEqual([b.eth0.ipv4, b.net1.ipv4].sort());
    expect(st.counters.drops).toEqual({});
    expect(t.counters.drops).toEqual({});
  });

  it('a pair is only between attachments of one network: net1 toward b’s eth0 address makes no pair', async () => {
    const c = (cluster = new NetworksCluster(2));
    const [a, b] = c.nodes as [NetNode, NetNode];
    await c.start();
    c.clock.advance(1500);
    c.firstPacket(a, a.net1, b.eth0.ipv4);
    c.firstPacket(a, a.eth0, b.net1.ipv6);
    c.clock.advance(500);
    expect(a.set.status().pairs).toEqual([]);
    expect(a.set.status().networks![0]!.pairs).toEqual([]);
    expect(a.writer.listPairs()).toEqual([]);
    // The same pod's attachments on one network pair at once.
    c.firstPacket(a, a.net1, b.net1.ipv4);
    c.clock.advance(200);
    const t = a.set.status().networks![0]!;
    expect(t.pairs).toHaveLength(1);
    expect(t.pairs[0]).toMatchObject({ local: a.net1.cnf, remote: b.net1.cnf, peer: b.name });
    expect(a.writer.listPairs().map((p) => [p.ifindex, p.remote.ipv6])).toEqual([[a.net1.ifindex, b.net1.ipv6]]);
    expect(b.writer.listPairs().map((p) => [p.ifindex, p.remote.ipv6])).toEqual([[b.net1.ifindex, a.net1.ipv6]]);
  });

  it('a blackhole of IPv6 on the transport network moves the net1 pair (with its reason) and leaves the eth0 pair; and the reverse', async () => {
    const { c, a, b } = await bothPairsOnIpv6();
    const primarySwitches = a.set.status().switchesTotal;
    c.transportNet.blackholed.add(6);
    expect(
      c.clock.advanceUntil(() => c.wire(a, a.net1, b.net1.ipv6) === 'ipv4' && c.wire(b, b.net1, a.net1.ipv6) === 'ipv4', 2000, 1),
    ).toBeDefined();
    const t = a.set.status().networks![0]!;
    expect(t.switches.at(-1)).toMatchObject({ from: 'ipv6', to: 'ipv4', reason: expect.stringMatching(/blackhole/) });
    expect(t.peers[0]!.families.IPv6!.state).toBe('blackhole');
    c.clock.advance(2000);
    // The primary network never saw it.
    expect(c.wire(a, a.eth0, b.eth0.ipv6)).toBe('ipv6');
    expect(a.set.status().switchesTotal).toBe(primarySwitches);
    expect(a.set.status().peers[0]!.families.IPv6!.state).toBe('up');

    c.transportNet.blackholed.delete(6);
    c.primaryNet.blackholed.add(6);
    expect(
      c.clock.advanceUntil(() => c.wire(a, a.eth0, b.eth0.ipv6) === 'ipv4' && c.wire(b, b.eth0, a.eth0.ipv6) === 'ipv4', 2000, 1),
    ).toBeDefined();
    expect(a.set.status().switches.at(-1)).toMatchObject({ from: 'ipv6', to: 'ipv4', reason: expect.stringMatching(/blackhole/) });
    // net1 came back to IPv6 once its own IPv6 recovered, whatever the primary network does.
    expect(c.clock.advanceUntil(() => c.wire(a, a.net1, b.net1.ipv6) === 'ipv6', 15_000, 5)).toBeDefined();
    expect(c.wire(a, a.eth0, b.eth0.ipv6)).toBe('ipv4');
  });

  it('a network without addresses of its own is negotiated over the primary’s, on its own port, and status says so', async () => {
    const c = (cluster = new NetworksCluster(2, { transport: () => ({ name: TRANSPORT, port: 6180 }) }));
    c.primaryNet.latencyMs[4] = 10;
    c.primaryNet.latencyMs[6] = 1;
    const [a, b] = c.nodes as [NetNode, NetNode];
    await c.start();
    c.clock.advance(1500);
    const t = a.set.status().networks![0]!;
    expect(t.network).toMatchObject({ name: TRANSPORT, measuredBy: 'primary', note: expect.stringMatching(/primary network's addresses/) });
    expect(t.port).toBe(6180);
    expect(t.peers.map((p) => [p.node, p.addresses.ipv4])).toEqual([[b.name, '10.0.0.2']]);
    c.firstPacket(a, a.net1, b.net1.ipv4);
    expect(c.clock.advanceUntil(() => c.wire(a, a.net1, b.net1.ipv6) === 'ipv6', 5000)).toBeDefined();
    // The primary's measurements steer it: a blackhole of IPv6 there moves it.
    c.primaryNet.blackholed.add(6);
    expect(c.clock.advanceUntil(() => c.wire(a, a.net1, b.net1.ipv6) === 'ipv4', 2000, 1)).toBeDefined();
  });

  it('an attachment on a network the node does not know is never steered, and status lists it', async () => {
    const c = (cluster = new NetworksCluster(2));
    const [a, b] = c.nodes as [NetNode, NetNode];
    const stray = {
      cnf: 'cnf/upf-1',
      containerId: 'c1',
      ifname: 'net2',
      ifindex: (EP_KEY_POD | 2) >>> 0,
      network: 'sigtran',
      ipv4: '172.29.1.10',
      ipv6: 'fd29:1::10',
    };
    c.addAttachment(a, stray, 2);
    await c.start();
    c.clock.advance(1500);
    const st = a.set.status();
    expect(st.unknownNetworks).toEqual([{ network: 'sigtran', attachments: ['c1/net2'] }]);
    expect([...st.endpoints, ...st.networks![0]!.endpoints].map((e) => e.ipv4)).not.toContain(stray.ipv4);
    // b never hears of it; a first packet from it makes no pair.
    expect(b.writer.listRemotes().map((r) => r.ipv4)).not.toContain(stray.ipv4);
    c.firstPacket(a, stray, b.net1.ipv4);
    c.firstPacket(a, stray, b.eth0.ipv4);
    c.clock.advance(500);
    expect(a.writer.listPairs()).toEqual([]);
  });

  it('datagrams of one network are never accepted by another (each network has its own key)', async () => {
    // Both networks' negotiators on the same addresses and port space: transport without addresses, on its own port.
    const c = (cluster = new NetworksCluster(2, { transport: () => ({ name: TRANSPORT, port: 6180 }) }));
    const [a] = c.nodes as [NetNode, NetNode];
    await c.start();
    c.clock.advance(1500);
    // Replay every datagram the primary network carries to the transport network's port on the same node.
    const seen: Buffer[] = [];
    c.primaryNet.tap = (buf) => seen.push(Buffer.from(buf));
    c.clock.advance(1500);
    const t = a.set.daemonOf(TRANSPORT)!;
    const before = JSON.stringify(t.status().counters.drops);
    const sender = c.primaryNet.transport(9999);
    await sender.start({ ipv4: '10.0.0.2' }, undefined, () => {});
    for (const buf of seen.slice(0, 20)) sender.send(4, '10.0.0.1', 6180, buf);
    c.clock.advance(50);
    sender.close();
    // Refused as unauthenticated, before any other check.
    const drops = t.status().counters.drops as Record<string, number>;
    expect(JSON.stringify(drops)).not.toBe(before);
    expect(drops.mac).toBeGreaterThanOrEqual(1);
  });
});
