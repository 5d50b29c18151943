/**
 * An in-memory datagram network for afsteerd's DatagramTransport: every node's transport is
 * reachable by (family, address, port); delivery takes a per-family latency on the test's
 * ManualClock; a family can be blackholed. Multicast reaches every other node that joined.
 */
import type { DatagramHandler, DatagramTransport, MulticastOptions } from '../../src/negotiator/transport/udp';
import type { ManualClock } from './manual-clock';

/** The network all in-memory transports of a test share. */
export class MemoryNetwork {
  private readonly bound = new Map<string, MemoryTransport>();
  /** One-way latency per family, ms. */
  readonly latencyMs = { 4: 1, 6: 1 };
  /** Families that drop everything. */
  readonly blackholed = new Set<4 | 6>();
  /** Datagrams delivered so far. */
  delivered = 0;
  /** Sees every datagram sent (before a blackhole drops it), with the receiver's address. */
  tap: (b: Buffer, family: 4 | 6, address: string) => void = () => {};

  constructor(readonly clock: ManualClock) {}

  /** A transport for a node on port. */
  transport(port: number): MemoryTransport {
    return new MemoryTransport(this, port);
  }

  /** @internal */
  bind(key: string, t: MemoryTransport): void {
    if (this.bound.has(key)) throw new Error(`address in use: ${key}`);
    this.bound.set(key, t);
  }

  /** @internal */
  unbind(t: MemoryTransport): void {
    for (const [k, v] of this.bound) if (v === t) this.bound.delete(k);
  }

  /** @internal */
  deliver(from: MemoryTransport, family: 4 | 6, address: string, port: number, b: Buffer): void {
    this.tap(b, family, address);
    if (this.blackholed.has(family)) return;
    const to = this.bound.get(`${family}|${address}|${port}`);
    const src = from.addressOf(family);
    if (!to || !src) return;
    const copy = Buffer.from(b);
    this.clock.after(this.latencyMs[family], () => {
      this.delivered++;
      to.receive(copy, { family, address: src, port: from.port });
    });
  }

  /** @internal */
  multicast(from: MemoryTransport, b: Buffer): void {
    for (const t of new Set(this.bound.values())) {
      if (t === from || !t.joined) continue;
      for (const f of [4, 6] as const) {
        const a = t.addressOf(f);
        if (a && from.addressOf(f)) this.deliver(from, f, a, t.port, b);
      }
    }
  }
}

/** One node's transport on a MemoryNetwork. */
export class MemoryTransport implements DatagramTransport {
  readonly sendErrors = { 4: 0, 6: 0 };
  private addresses: { ipv4?: string; ipv6?: string } = {};
  private onMessage: DatagramHandler = () => {};
  private open = false;
  /** Joined the multicast groups. */
  joined = false;

  constructor(
    private readonly net: MemoryNetwork,
    readonly port: number,
  ) {}

  async start(
    addresses: { ipv4?: string; ipv6?: string },
    multicast: MulticastOptions | undefined,
    onMessage: DatagramHandler,
  ): Promise<void> {
    this.addresses = addresses;
    this.onMessage = onMessage;
    if (addresses.ipv4) this.net.bind(`4|${addresses.ipv4}|${this.port}`, this);
    if (addresses.ipv6) this.net.bind(`6|${addresses.ipv6}|${this.port}`, this);
    this.joined = Boolean(multicast);
    this.open = true;
  }

  send(family: 4 | 6, address: string, port: number, b: Buffer): void {
    if (this.open) this.net.deliver(this, family, address, port, b);
  }

  sendMulticast(b: Buffer): void {
    if (this.open && this.joined) this.net.multicast(this, b);
  }

  close(): void {
    this.open = false;
    this.net.unbind(this);
  }

  /** This node's address of family f. */
  addressOf(f: 4 | 6): string | undefined {
    return f === 4 ? this.addresses.ipv4 : this.addresses.ipv6;
  }

  /** @internal */
  receive(b: Buffer, src: { family: 4 | 6; address: string; port: number }): void {
    if (this.open) this.onMessage(b, src);
  }
}
