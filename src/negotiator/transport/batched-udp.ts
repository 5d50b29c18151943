/**
 * The daemon's UDP sockets with batched I/O (src/native/mmsg.ts): one nonblocking socket per
 * family on the daemon's port, bound as UdpTransport binds them. What is sent in one turn of the
 * event loop (a probe tick's probes, an announcement to every peer) leaves in one sendmmsg per
 * family; what came in is taken when the daemon polls — at the start of each probe tick — in
 * recvmmsg bursts, each datagram with how long ago the kernel received it, so an RTT never
 * includes the wait for the tick. No event-loop wakeup, callback or allocation per datagram.
 * Unicast only: a node with multicast discovery uses UdpTransport.
 */

import { BatchSocket } from '../../native/mmsg';
import { addressBytes, bytesToAddress } from '../../net/ip';
import { MAX_DATAGRAM } from '../protocol/frame';
import type { DatagramHandler, DatagramTransport, MulticastOptions } from './udp';

/** Bound of the address caches (a daemon talks to a few addresses per peer). */
const CACHE = 65536;

/** Batched UDP on one port, both families. */
export class BatchedUdpTransport implements DatagramTransport {
  private readonly socks: { 4?: BatchSocket; 6?: BatchSocket } = {};
  private onMessage: DatagramHandler = () => {};
  private flushing = false;
  private readonly bytesOf = new Map<string, Uint8Array>();
  private readonly text4 = new Map<number, string>();
  private readonly text6 = new Map<string, string>();
  /** Sends refused before reaching a socket (an address that does not parse as the family's). */
  private readonly unsendable = { 4: 0, 6: 0 };
  /** Send errors by family (e.g. a network unreachable while a family is down). */
  readonly sendErrors = { 4: 0, 6: 0 };
  /** sendmmsg and recvmmsg calls, datagrams sent and received (for tests and the benchmark). */
  readonly stats = { sendCalls: 0, recvCalls: 0, sent: 0, received: 0 };

  constructor(private readonly port: number) {}

  /** Binds the families this node has addresses for (an address not usable yet, e.g. tentative IPv6, falls back to the wildcard). */
  async start(
    addresses: { ipv4?: string; ipv6?: string },
    multicast: MulticastOptions | undefined,
    onMessage: DatagramHandler,
  ): Promise<void> {
    if (multicast) throw new Error('the batched UDP transport does not join multicast groups (use UdpTransport)');
    this.onMessage = onMessage;
    const open = (family: 4 | 6, address: string, wildcard: string): BatchSocket => {
      try {
        return BatchSocket.open(family, addressBytes(address), this.port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL') throw bindError(address, this.port, err);
        try {
          return BatchSocket.open(family, addressBytes(wildcard), this.port);
        } catch (err2) {
          throw bindError(wildcard, this.port, err2);
        }
      }
    };
    try {
      if (addresses.ipv4) this.socks[4] = open(4, addresses.ipv4, '0.0.0.0');
      if (addresses.ipv6) this.socks[6] = open(6, addresses.ipv6, '::');
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Families bound. */
  families(): (4 | 6)[] {
    return ([4, 6] as const).filter((f) => this.socks[f]);
  }

  /** Queues one datagram (best effort; errors are counted, never thrown); everything queued in this turn leaves together. */
  send(family: 4 | 6, address: string, port: number, b: Buffer): void {
    const s = this.socks[family];
    if (!s || b.length > MAX_DATAGRAM) return;
    const to = this.addressBytesOf(address);
    if (!to || to.length !== (family === 4 ? 4 : 16)) {
      this.sendErrors[family] = s.failedTotal + ++this.unsendable[family];
      return;
    }
    s.queue(to, port, b);
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Not joined to any group: nothing is sent. */
  sendMulticast(_b: Buffer): void {}

  /** Sends what is queued now (done on its own at the end of each turn). */
  flush(): void {
    this.flushing = false;
    for (const f of [4, 6] as const) {
      const s = this.socks[f];
      if (!s) continue;
      s.flush();
      this.sendErrors[f] = s.failedTotal + this.unsendable[f];
    }
    this.stats.sendCalls = this.calls('send');
    this.stats.sent = (this.socks[4]?.sentTotal ?? 0) + (this.socks[6]?.sentTotal ?? 0);
  }

  /** Takes in every datagram waiting on the sockets (handed to the handler with how long ago each came). */
  poll(): void {
    for (const family of [4, 6] as const) {
      const s = this.socks[family];
      if (!s) continue;
      this.stats.received += s.drain((data, addr, port, agoMs) =>
        this.onMessage(data, { family, address: this.textOf(family, addr), port }, agoMs),
      );
    }
    this.stats.recvCalls = this.calls('recv');
  }

  /** Closes both sockets (what is still queued is dropped). */
  close(): void {
    for (const f of [4, 6] as const) {
      this.socks[f]?.close();
      delete this.socks[f];
    }
  }

  private calls(kind: 'send' | 'recv'): number {
    return (this.socks[4]?.calls[kind] ?? 0) + (this.socks[6]?.calls[kind] ?? 0);
  }

  private addressBytesOf(address: string): Uint8Array | undefined {
    let b = this.bytesOf.get(address);
    if (b) return b;
    try {
      b = addressBytes(address);
    } catch {
      return undefined;
    }
    if (this.bytesOf.size >= CACHE) this.bytesOf.clear();
    this.bytesOf.set(address, b);
    return b;
  }

  /** Canonical text of a source address (cached: the same few addresses come again and again). */
  private textOf(family: 4 | 6, a: Uint8Array): string {
    if (family === 4) {
      const k = ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0;
      let t = this.text4.get(k);
      if (t === undefined) {
        if (this.text4.size >= CACHE) this.text4.clear();
        this.text4.set(k, (t = `${a[0]}.${a[1]}.${a[2]}.${a[3]}`));
      }
      return t;
    }
    let k = '';
    for (let i = 0; i < 16; i += 2) k += String.fromCharCode((a[i]! << 8) | a[i + 1]!);
    let t = this.text6.get(k);
    if (t === undefined) {
      if (this.text6.size >= CACHE) this.text6.clear();
      this.text6.set(k, (t = bytesToAddress(Uint8Array.from(a))));
    }
    return t;
  }
}

function bindError(host: string, port: number, err: unknown): Error {
  return new Error(`cannot bind UDP ${host} port ${port}: ${(err as Error).message}`, { cause: err });
}
