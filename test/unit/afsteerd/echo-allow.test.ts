/**
 * The echo reflectors answer known peers only: the userspace fallback refuses (and counts) an
 * unknown source, a flood above the per-source rate, anything but one echo, an echo from an echo
 * port; a real prober's rate is never refused; a reply is the request (never larger); the
 * allow-list follows the peer table as peers join, move and leave, keeps the kernel map in step
 * and counts the kernel map refusing an address at its size limit.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ECHO_RATE } from '../../../src/bpf/echo-maps';
import { PeerTable } from '../../../src/negotiator/discovery/peers';
import { EchoPeerList, type KernelEchoList } from '../../../src/negotiator/probing/echo-allow';
import { EchoReflector, SourceRate } from '../../../src/negotiator/probing/echo-fallback';
import { encodeEcho } from '../../../src/negotiator/protocol/echo';
import type { DatagramHandler, DatagramTransport } from '../../../src/negotiator/transport/udp';
import { configureLog } from '../../../src/util/log';
import { MemoryCluster } from '../../support/memory-cluster';

beforeAll(() => configureLog({ level: 'error' }));

/** A transport that hands datagrams in by hand and records what is sent. */
class HandTransport implements DatagramTransport {
  readonly sent: { address: string; port: number; b: Buffer }[] = [];
  readonly sendErrors = { 4: 0, 6: 0 };
  handler?: DatagramHandler;
  async start(_a: unknown, _m: unknown, onMessage: DatagramHandler): Promise<void> {
    this.handler = onMessage;
  }
  send(_f: 4 | 6, address: string, port: number, b: Buffer): void {
    this.sent.push({ address, port, b });
  }
  sendMulticast(): void {}
  close(): void {}
}

/** A kernel allow-list map in memory with a size limit. */
class MemoryKernelList implements KernelEchoList {
  readonly set = new Set<string>();
  constructor(private readonly max: number) {}
  add(a: string): void {
    if (this.set.has(a)) return;
    if (this.set.size >= this.max) {
      const e = new Error(`echo allow-list is full (${this.max} addresses)`);
      e.name = 'EchoAllowListFull';
      throw e;
    }
    this.set.add(a);
  }
  remove(a: string): boolean {
    return this.set.delete(a);
  }
  replaceAll(addresses: Iterable<string>): string[] {
    this.set.clear();
    for (const a of addresses) this.set.add(a);
    return [];
  }
  close(): void {}
}

const ECHO = encodeEcho({ family: 4, active: true, id: 1, t1: 1n, nonce: 7 });
const PORT = 6171;

describe('per-source rate (token bucket)', () => {
  it("never refuses a prober's rate (one echo per family every 20 ms), nor its catch-up after a 1 s stall", () => {
    const r = new SourceRate();
    let t = 0;
    for (let i = 0; i < 3000; i++, t += 20) expect(r.take('10.0.0.2', t)).toBe(true);
    // A stalled prober sends its missed probes at once: 50 in one instant.
    t += 1000;
    for (let i = 0; i < 50; i++) expect(r.take('10.0.0.2', t)).toBe(true);
  });

  it('a flood above the rate gets the burst and the rate, no more; other sources are not affected', () => {
    const r = new SourceRate();
    let ok = 0;
    // 10,000 echoes in one second from one source.
    for (let i = 0; i < 10_000; i++) if (r.take('10.0.0.66', i / 10)) ok++;
    expect(ok).toBeGreaterThanOrEqual(ECHO_RATE.burst + ECHO_RATE.perSec - 2);
    expect(ok).toBeLessThanOrEqual(ECHO_RATE.burst + ECHO_RATE.perSec + 1);
    expect(r.take('10.0.0.2', 1000)).toBe(true);
  });
});

describe('userspace echo reflector', () => {
  const start = async (known: string[]) => {
    const t = new HandTransport();
    const allowed = new Set(known);
    let now = 0;
    const r = new EchoReflector(t, PORT, allowed, () => now);
    await r.start({ ipv4: '10.0.0.1' });
    const send = (b: Buffer, address: string, port = 40000) => t.handler!(b, { family: 4, address, port });
    return { t, r, send, advance: (ms: number) => (now += ms) };
  };

  it('sends an echo from a known peer back unchanged (same bytes: never larger), to where it came from', async () => {
    const { t, r, send } = await start(['10.0.0.2']);
    send(ECHO, '10.0.0.2', 6170);
    expect(t.sent).toEqual([{ address: '10.0.0.2', port: 6170, b: ECHO }]);
    expect(r.stats.reflected).toBe(1);
  });

  it('refuses and counts: an unknown (or spoofed) source, a long or short echo, one from the echo port, a non-echo', async () => {
    const { t, r, send } = await start(['10.0.0.2']);
    send(ECHO, '10.99.0.7'); // an address no peer holds
    send(Buffer.concat([ECHO, Buffer.alloc(1000)]), '10.0.0.2');
    send(ECHO.subarray(0, 20), '10.0.0.2');
    send(ECHO, '10.0.0.2', PORT);
    send(Buffer.from('AF a frame'), '10.0.0.2');
    expect(t.sent).toEqual([]);
    expect(r.stats.refused).toEqual({ 'unknown-source': 1, size: 2, loop: 1, 'not-echo': 1, rate: 0 });
  });

  it('refuses a flood above the per-source rate, counted', async () => {
    const { t, r, send } = await start(['10.0.0.2']);
    for (let i = 0; i < 1000; i++) send(ECHO, '10.0.0.2');
    expect(t.sent.length).toBe(ECHO_RATE.burst);
    expect(r.stats.refused.rate).toBe(1000 - ECHO_RATE.burst);
  });
});

describe('the allow-list follows the peer table', () => {
  it('a peer joining adds its addresses, a move replaces one without dropping the other, leaving removes them', () => {
    const kernel = new MemoryKernelList(100);
    kernel.set.add('10.9.9.9'); // left by a previous run
    const list = new EchoPeerList(kernel);
    // Kept while the peers are heard again (the kernel reflector answers on across a restart) ...
    expect([...kernel.set]).toEqual(['10.9.9.9']);
    const events: string[] = [];
    const peers = new PeerTable(30_000, (a, known) => {
      events.push(`${known ? '+' : '-'}${a}`);
      list.set(a, known);
    });
    const mine = { ipv4: '10.0.0.1', ipv6: 'fd00::1' };
    const p = peers.getOrAdd('n2', 6170, 0, 4, {});
    peers.setAddresses(p, { ipv4: '10.0.0.2', ipv6: 'fd00:0::2' }, 6170, mine, 0);
    expect([...kernel.set].sort()).toEqual(['10.0.0.2', '10.9.9.9', 'fd00::2']);
    // ... and dropped once the peers had their peer timeout to be heard: then only the known ones.
    list.dropLeftovers();
    expect([...kernel.set].sort()).toEqual(['10.0.0.2', 'fd00::2']);
    // The same announcement again: nothing removed, not even briefly.
    events.length = 0;
    peers.setAddresses(p, { ipv4: '10.0.0.2', ipv6: 'fd00::2' }, 6170, mine, 1);
    expect(events).toEqual([]);
    // Its IPv4 address moves.
    peers.setAddresses(p, { ipv4: '10.0.0.22', ipv6: 'fd00::2' }, 6170, mine, 2);
    expect(events).toEqual(['-10.0.0.2', '+10.0.0.22']);
    expect(list.has('10.0.0.2')).toBe(false);
    expect(list.has('10.0.0.22')).toBe(true);
    peers.delete('n2');
    expect(kernel.set.size).toBe(0);
    expect(list.size).toBe(0);
  });

  it('at the kernel map size limit the next address is refused and counted; the userspace list still has it', () => {
    const kernel = new MemoryKernelList(2);
    const list = new EchoPeerList(kernel);
    list.set('10.0.0.2', true);
    list.set('10.0.0.3', true);
    list.set('10.0.0.4', true);
    expect(kernel.set.size).toBe(2);
    expect(list.stats.kernelFull).toBe(1);
    expect(list.has('10.0.0.4')).toBe(true);
  });

  it('between daemons (in memory): each allows the other peers once heard, and a peer aged out is removed', async () => {
    const cluster = new MemoryCluster(3);
    try {
      await cluster.start();
      cluster.clock.advance(3000);
      for (const n of cluster.nodes) expect(n.daemon.parts().echo().allowed).toBe(4);
      // node-3 goes silent: stopped, and aged out by the others after the peer timeout.
      const three = cluster.nodes[2]!;
      three.daemon.stop();
      cluster.clock.advance(cluster.nodes[0]!.cfg.timers.peerTimeoutMs + 3000);
      expect(cluster.nodes[0]!.daemon.parts().echo().allowed).toBe(2);
      const u = cluster.nodes[0]!.daemon.parts().echo().userspace!;
      expect(u.reflected).toBeGreaterThan(0);
      expect(u.refused['unknown-source']).toBe(0);
    } finally {
      for (const n of cluster.nodes.slice(0, 2)) n.daemon.stop();
    }
  });
});
