/**
 * afsteerd's behaviour with several real daemons in one process: the real Daemon and its parts,
 * the real SteeringWriter over in-memory maps, an in-memory network and a manual clock (no root,
 * no sockets, simulated seconds in milliseconds). The same cases the root tests show with real
 * processes, namespaces and BPF: discovery, a pair negotiated on demand, a blackhole switch and
 * adoption after a restart without a flap.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configureLog } from '../../../src/util/log';
import { MemoryCluster, type MemoryNode } from '../../support/memory-cluster';

beforeAll(() => configureLog({ level: 'error' }));

let cluster: MemoryCluster | undefined;
afterEach(() => {
  cluster?.stop();
  cluster = undefined;
});

/** Two nodes, IPv4 10 ms and IPv6 1 ms one way, their pods' pair made on demand and negotiated onto IPv6. */
async function negotiatedOnIpv6() {
  const c = (cluster = new MemoryCluster(2));
  c.net.latencyMs[4] = 10;
  c.net.latencyMs[6] = 1;
  const [a, b] = c.nodes as [MemoryNode, MemoryNode];
  await c.start();
  c.clock.advance(1500);
  c.firstPacket(a, b);
  expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6' && c.wire(b, a) === 'ipv6', 5000)).toBeDefined();
  return { c, a, b };
}

describe('afsteerd, several daemons in one process', () => {
  it('discovery: three nodes over static peers each see the other two on both families and register their pods', async () => {
    cluster = new MemoryCluster(3);
    await cluster.start();
    cluster.clock.advance(1500);
    for (const n of cluster.nodes) {
      const st = n.daemon.status();
      expect(st.peers.map((p) => p.node).sort()).toEqual(cluster.nodes.filter((o) => o !== n).map((o) => o.name));
      for (const p of st.peers) expect(Object.keys(p.families).sort()).toEqual(['IPv4', 'IPv6']);
      const remotes = n.writer
        .listRemotes()
        .map((r) => r.ipv6)
        .sort();
      expect(remotes).toEqual(
        cluster.nodes
          .filter((o) => o !== n)
          .map((o) => o.pod.ipv6)
          .sort(),
      );
    }
    expect(cluster.nodes[0]!.daemon.counters.drops).toEqual({});
  });

  it('an unchanged refresh is a sign of life, neither parsed nor applied again; a changed announcement still is', async () => {
    cluster = new MemoryCluster(2, { timers: { peerTimeoutMs: 3000, announceRefreshMs: 750, rescanMs: 500 } });
    const [a, b] = cluster.nodes as [MemoryNode, MemoryNode];
    await cluster.start();
    cluster.clock.advance(1500);
    const before = { repeats: a.daemon.counters.events['announce-repeat'] ?? 0, rx: a.daemon.counters.rx.announce ?? 0 };
    // 20 s of refreshes only: b stays a peer on both families (a peer timeout is 3 s).
    cluster.clock.advance(20_000);
    const st = a.daemon.status();
    expect(st.peers.map((p) => p.node)).toEqual([b.name]);
    expect(Object.keys(st.peers[0]!.families).sort()).toEqual(['IPv4', 'IPv6']);
    const repeats = (a.daemon.counters.events['announce-repeat'] ?? 0) - before.repeats;
    const rx = (a.daemon.counters.rx.announce ?? 0) - before.rx;
    // Every refresh (one every 750 ms over two families) is the same bytes as the list a applied.
    expect(rx).toBeGreaterThanOrEqual(40);
    expect(repeats).toBe(rx);
    // b's pod moves to another IPv6 address: the new list is parsed and applied at once.
    const old = b.pod.ipv6!;
    b.pod.ipv6 = old.replace(/[0-9a-f]+$/, (x) => (parseInt(x, 16) + 0x100).toString(16));
    expect(cluster.clock.advanceUntil(() => a.writer.listRemotes().some((r) => r.ipv6 === b.pod.ipv6), 3000)).toBeDefined();
    expect(a.writer.listRemotes().some((r) => r.ipv6 === old)).toBe(false);
    expect(a.daemon.counters.drops).toEqual({});
  });

  it('a pair on demand: a first packet on one node makes the pair on both, native, decapsulation confirmed; then the faster family is negotiated', async () => {
    cluster = new MemoryCluster(2);
    cluster.net.latencyMs[4] = 10;
    cluster.net.latencyMs[6] = 1;
    const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    await cluster.start();
    cluster.clock.advance(1500);
    expect(a.daemon.status().pairs).toEqual([]);
    cluster.firstPacket(a, b);
    cluster.clock.advance(100);
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      const pairs = x.daemon.status().pairs;
      expect(pairs).toHaveLength(1);
      expect(pairs[0]).toMatchObject({ local: x.pod.cnf, remote: y.pod.cnf, peer: y.name, wire: 'native', peerDecap: true });
      expect(cluster.wire(x, y)).toBe('native');
    }
    // 50 samples at 20 ms, then three evaluation intervals: IPv6 (1 ms) beats IPv4 (10 ms).
    const took = cluster.clock.advanceUntil(() => cluster!.wire(a, b) === 'ipv6' && cluster!.wire(b, a) === 'ipv6', 5000);
    expect(took).toBeDefined();
    expect(a.daemon.status().pairs[0]!.leader).not.toBe(b.daemon.status().pairs[0]!.leader);
  });

  it('a blackhole on the family in use moves both sending directions off it within a few probe intervals', async () => {
    const { c, a, b } = await negotiatedOnIpv6();
    c.net.blackholed.add(6);
    const took = c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4' && c.wire(b, a) === 'ipv4', 2000, 1);
    expect(took).toBeDefined();
    // 3 probes lost (20 ms apart, 40 ms timeout each) and one map write: ~100 ms, well under 200.
    expect(took!).toBeLessThan(200);
    const sw = a.daemon.status().switches.at(-1)!;
    expect(sw).toMatchObject({ from: 'ipv6', to: 'ipv4' });
    expect(sw.reason).toMatch(/blackhole/);
    expect(a.daemon.status().peers[0]!.families.IPv6!.state).toBe('blackhole');
  });

  it('a restarted daemon adopts the pair from the maps without a flap and resumes it when the peer speaks', async () => {
    const { c, a, b } = await negotiatedOnIpv6();
    const routeWrites = a.maps.routes.writes;
    await c.restart(a);
    expect(a.daemon.status().pairs).toEqual([]);
    // Adopted once the peer's next announcement names the remote pod (at most one announce interval).
    expect(c.clock.advanceUntil(() => a.daemon.status().pairs.length > 0, 1500)).toBeDefined();
    const adopted = a.daemon.status().pairs;
    expect(adopted).toHaveLength(1);
    expect(adopted[0]).toMatchObject({ wire: 'ipv6' });
    c.clock.advance(3000);
    const after = a.daemon.status();
    expect(after.pairs[0]).toMatchObject({ wire: 'ipv6', adopted: false });
    expect(after.switchesTotal).toBe(0);
    expect(c.wire(a, b)).toBe('ipv6');
    expect(c.wire(b, a)).toBe('ipv6');
    // Not one route rewritten across the restart.
    expect(a.maps.routes.writes).toBe(routeWrites);
  });

  it('the peer of a restarted daemon keeps its wire: the restarted one is told about it at once, so its echo reflector answers', async () => {
    const { c, a, b } = await negotiatedOnIpv6();
    const before = b.daemon.status().switchesTotal;
    await c.restart(a);
    let left = false;
    c.clock.advanceUntil(() => {
      if (c.wire(b, a) !== 'ipv6') left = true;
      return false;
    }, 3000);
    expect(left).toBe(false);
    expect(b.daemon.status().switchesTotal).toBe(before);
    expect(b.daemon.status().peers[0]!.families.IPv6!.state).toBe('up');
  });
});
