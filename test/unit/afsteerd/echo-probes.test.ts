/**
 * Echo probes (protocol/echo.ts): the codec; daemons probing each other with echoes looped back
 * by the peer's reflector (never a MACed probe between two echo-v1 nodes), an older peer without
 * it probed as before; forged returns dropped; and unchanged announcements only at the refresh.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeEcho, ECHO_LEN, echoPortOf, encodeEcho, isEcho } from '../../../src/negotiator/protocol/echo';
import { configureLog } from '../../../src/util/log';
import { MemoryCluster, type MemoryNode } from '../../support/memory-cluster';

beforeAll(() => configureLog({ level: 'error' }));

let cluster: MemoryCluster | undefined;
afterEach(() => {
  cluster?.stop();
  cluster = undefined;
});

describe('echo codec', () => {
  const p = { family: 6 as const, active: true, id: 0xfffffffe, t1: 123456789012n, nonce: 0xdeadbeef };

  it('round-trips, starts with the magic the kernel reflector checks, and is 24 bytes', () => {
    const b = encodeEcho(p);
    expect(b.length).toBe(ECHO_LEN);
    expect([...b.subarray(0, 3)]).toEqual([0x41, 0x45, 1]);
    expect(isEcho(b)).toBe(true);
    expect(decodeEcho(b)).toEqual(p);
  });

  it('refuses frames, short, long, bad family, unknown flags and another version', () => {
    const b = encodeEcho(p);
    const frame = Buffer.from(b);
    frame[1] = 0x46;
    expect(isEcho(frame)).toBe(false);
    expect(decodeEcho(b.subarray(0, 23))).toBeUndefined();
    expect(decodeEcho(Buffer.concat([b, Buffer.alloc(1)]))).toBeUndefined();
    for (const [at, v] of [
      [3, 5],
      [4, 2],
      [2, 2],
    ] as const) {
      const c = Buffer.from(b);
      c[at] = v;
      expect(decodeEcho(c)).toBeUndefined();
    }
  });

  it('the echo port is the afsteerd port + 1 (65535 → 65534)', () => {
    expect(echoPortOf(6170)).toBe(6171);
    expect(echoPortOf(65535)).toBe(65534);
  });
});

describe('echo probes between daemons (in memory)', () => {
  it('two echo-v1 nodes probe each other with echoes only, and both families are measured', async () => {
    cluster = new MemoryCluster(2);
    await cluster.start();
    cluster.clock.advance(5000);
    for (const n of cluster.nodes) {
      expect(n.daemon.counters.tx.echo).toBeGreaterThan(4);
      expect(n.daemon.counters.rx.echo).toBeGreaterThan(4);
      expect(n.daemon.counters.tx.probe ?? 0).toBe(0);
      expect(n.daemon.counters.tx.probeReply ?? 0).toBe(0);
      const [peer] = n.daemon.status().peers;
      expect(Object.keys(peer!.families).sort()).toEqual(['IPv4', 'IPv6']);
      for (const f of Object.values(peer!.families)) expect((f as { received: number }).received).toBeGreaterThan(2);
    }
  });

  it('an older peer (no echo-v1) gets MACed probes and answers them; it still echo-probes the newer node', async () => {
    cluster = new MemoryCluster(2, {}, [], { noEcho: ['node-2'] });
    await cluster.start();
    cluster.clock.advance(5000);
    const [a, b] = cluster.nodes as [MemoryNode, MemoryNode];
    expect(a.daemon.counters.tx.probe).toBeGreaterThan(4);
    expect(a.daemon.counters.tx.echo ?? 0).toBe(0);
    expect(b.daemon.counters.tx.probeReply).toBeGreaterThan(4);
    expect(b.daemon.counters.tx.echo).toBeGreaterThan(4);
    for (const n of cluster.nodes) {
      const fams = Object.values(n.daemon.status().peers[0]!.families) as { received: number }[];
      expect(fams).toHaveLength(2);
      for (const f of fams) expect(f.received).toBeGreaterThan(2);
    }
  });

  it('a forged echo return is dropped: from an unknown address, from the wrong port, with a foreign nonce', async () => {
    // node-2 without a reflector of its own, so the test can send from its address and echo port.
    cluster = new MemoryCluster(2, {}, [], { noEcho: ['node-2'] });
    await cluster.start();
    cluster.clock.advance(2000);
    const [a] = cluster.nodes as [MemoryNode, MemoryNode];
    const send = async (from: { ipv4: string; ipv6: string }, port: number, nonce: number) => {
      const t = cluster!.net.transport(port);
      await t.start(from, undefined, () => {});
      t.send(6, a.addresses.ipv6, a.cfg.port, encodeEcho({ family: 6, active: false, id: 1, t1: 0n, nonce }));
      cluster!.clock.advance(10);
      t.close();
    };
    const drops = () => ({ ...a.daemon.counters.drops });
    const before = drops();
    await send({ ipv4: '10.9.9.9', ipv6: 'fd00::99' }, 6171, 1);
    expect(drops()['unknown-peer']).toBe((before['unknown-peer'] ?? 0) + 1);
    await send({ ipv4: '10.0.0.2', ipv6: 'fd00::2' }, 6199, 1);
    expect(drops().payload).toBe((before.payload ?? 0) + 1);
    const nonce = (a.daemon.parts().peers.get('node-2')!.paths[6]!.nonce + 1) >>> 0;
    await send({ ipv4: '10.0.0.2', ipv6: 'fd00::2' }, 6171, nonce);
    expect(drops().payload).toBe((before.payload ?? 0) + 2);
    expect(a.daemon.counters.rx.echo ?? 0).toBe(0);
  });

  it('unchanged announcements go at the refresh (a quarter of the peer timeout), not every interval; a node started late is told at once', async () => {
    cluster = new MemoryCluster(2, { timers: { peerTimeoutMs: 20_000 } });
    const [a, b] = cluster.nodes as [MemoryNode, MemoryNode];
    await a.daemon.start();
    cluster.clock.advance(3000);
    await b.daemon.start();
    const t = cluster.clock.advanceUntil(() => b.daemon.status().peers.length === 1 && a.daemon.status().peers.length === 1, 3000);
    expect(t).toBeDefined();
    const sent0 = a.daemon.counters.tx.announce ?? 0;
    cluster.clock.advance(20_000);
    const sent = (a.daemon.counters.tx.announce ?? 0) - sent0;
    // 20 s at a 5 s refresh: 4 rounds × 2 families (each 1 datagram), against 40 at the 1 s interval.
    expect(sent).toBeGreaterThanOrEqual(6);
    expect(sent).toBeLessThanOrEqual(10);
    expect(b.daemon.status().peers.map((p) => p.node)).toEqual(['node-1']);
  });
});

describe('prefer: hostile requests on the control socket (in memory)', () => {
  it('refuses unknown targets (huge, control characters, a path, empty) and families other than ipv4/ipv6/auto, and pins nothing', async () => {
    cluster = new MemoryCluster(2);
    await cluster.start();
    cluster.clock.advance(1500);
    const [a] = cluster.nodes as [MemoryNode, MemoryNode];
    for (const target of ['x'.repeat(100_000), 'node-2\n', '../../etc/passwd', '', '\u0000']) {
      const r = a.daemon.control({ op: 'prefer', target, family: 'ipv4' });
      expect(r.ok).toBe(false);
      expect(String(r.error)).toMatch(/neither a known peer node nor a known CNF id/);
    }
    for (const family of ['IPv4', 'ipv5', '', 4, null, { x: 1 }]) {
      const r = a.daemon.control({ op: 'prefer', target: 'node-2', family });
      expect(r.ok).toBe(false);
      expect(String(r.error)).toMatch(/family must be ipv4, ipv6 or auto/);
    }
    expect(a.daemon.status().pins).toEqual({ nodes: {}, cnfs: {} });
  });
});
