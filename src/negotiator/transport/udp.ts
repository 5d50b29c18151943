/** The daemon's UDP sockets: one per family on the same port, unicast and (optionally) multicast. */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { MAX_DATAGRAM } from '../protocol/frame';

/** Where a datagram came from. */
export interface Source {
  family: 4 | 6;
  address: string;
  port: number;
}

/** Multicast settings (groups and the interface to use). */
export interface MulticastOptions {
  ipv4Group: string;
  ipv6Group: string;
  interface?: string;
}

/** Name of the interface holding address, if any. */
export function interfaceOf(address: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => a.address === address)) return name;
  }
  return undefined;
}

/**
 * Receives one datagram. b may be a view into the transport's memory, valid only during the call
 * (copy what is kept). agoMs: how long before the call the kernel received it (a transport that
 * hands datagrams over late says so, so that an RTT never includes the wait); absent: just now.
 */
export type DatagramHandler = (b: Buffer, src: Source, agoMs?: number) => void;

/** What afsteerd sends and receives datagrams through: real UDP sockets, or an in-memory network in tests. */
export interface DatagramTransport {
  /** Starts receiving on the families this node has addresses for (and the multicast groups, when asked). */
  start(addresses: { ipv4?: string; ipv6?: string }, multicast: MulticastOptions | undefined, onMessage: DatagramHandler): Promise<void>;
  /** Sends one datagram (best effort; errors are counted, never thrown). */
  send(family: 4 | 6, address: string, port: number, b: Buffer): void;
  /** Sends one datagram to the multicast group(s), if joined. */
  sendMulticast(b: Buffer): void;
  /** Stops receiving. */
  close(): void;
  /** Send errors by family (e.g. a network unreachable while a family is down). */
  readonly sendErrors: { 4: number; 6: number };
  /** Takes in what is waiting, for a transport that is polled (batched-udp.ts) rather than called back; the daemon polls at each probe tick. */
  poll?(): void;
  /** Sends what is queued now, for a transport that batches (batched-udp.ts; it also flushes at the end of each turn). */
  flush?(): void;
}

/** Both UDP sockets of a node, on one port. */
export class UdpTransport implements DatagramTransport {
  private v4?: Socket;
  private v6?: Socket;
  private mcast?: { v4?: string; v6?: string; port: number };
  private onMessage: DatagramHandler = () => {};
  /** Send errors by family (e.g. a network unreachable while a family is down). */
  readonly sendErrors = { 4: 0, 6: 0 };

  constructor(private readonly port: number) {}

  /** Binds the families this node has addresses for; joins the multicast groups when asked. */
  async start(
    addresses: { ipv4?: string; ipv6?: string },
    multicast: MulticastOptions | undefined,
    onMessage: DatagramHandler,
  ): Promise<void> {
    this.onMessage = onMessage;
    const bind = (type: 'udp4' | 'udp6', family: 4 | 6, host: string): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = createSocket({ type, reuseAddr: true, ...(type === 'udp6' ? { ipv6Only: true } : {}), recvBufferSize: 1 << 20 });
        const timer = setTimeout(() => reject(new Error(`binding UDP ${host} port ${this.port} timed out`)), 5000);
        s.once('error', (err) => {
          clearTimeout(timer);
          reject(new Error(`cannot bind UDP ${host} port ${this.port}: ${err.message}`, { cause: err }));
        });
        s.on('message', (msg: Buffer, r: RemoteInfo) => {
          // Oversized datagrams are still handed over: the receive path counts and drops them.
          this.onMessage(msg, { family, address: r.address.replace(/%.*$/, ''), port: r.port });
        });
        s.bind({ port: this.port, address: host }, () => {
          clearTimeout(timer);
          s.removeAllListeners('error');
          s.on('error', () => {});
          resolve(s);
        });
      });
    // Wildcard binds: multicast needs them, and a node's control address may move.
    // Bound to the control address, so the kernel never searches the node's addresses for a
    // source on each send (IPv6 source selection scans every address of every interface); with
    // multicast discovery to the wildcard, to receive the groups. An address not usable yet (a
    // tentative IPv6 address) falls back to the wildcard.
    const host = async (type: 'udp4' | 'udp6', family: 4 | 6, address: string, wildcard: string): Promise<Socket> => {
      if (multicast) return bind(type, family, wildcard);
      try {
        return await bind(type, family, address);
      } catch (err) {
        if (!/EADDRNOTAVAIL/.test(String((err as Error).message))) throw err;
        return bind(type, family, wildcard);
      }
    };
    if (addresses.ipv4) this.v4 = await host('udp4', 4, addresses.ipv4, '0.0.0.0');
    if (addresses.ipv6) this.v6 = await host('udp6', 6, addresses.ipv6, '::');
    if (multicast) {
      this.mcast = { port: this.port };
      if (this.v4 && addresses.ipv4) {
        this.v4.addMembership(multicast.ipv4Group, addresses.ipv4);
        this.v4.setMulticastInterface(addresses.ipv4);
        this.v4.setMulticastLoopback(false);
        this.v4.setMulticastTTL(1);
        this.mcast.v4 = multicast.ipv4Group;
      }
      const ifname = multicast.interface ?? (addresses.ipv6 ? interfaceOf(addresses.ipv6) : undefined);
      if (this.v6 && ifname) {
        this.v6.addMembership(multicast.ipv6Group, `::%${ifname}`);
        this.v6.setMulticastInterface(`::%${ifname}`);
        this.v6.setMulticastLoopback(false);
        this.v6.setMulticastTTL(1);
        this.mcast.v6 = `${multicast.ipv6Group}%${ifname}`;
      }
    }
  }

  /** Families bound. */
  families(): (4 | 6)[] {
    return [...(this.v4 ? [4 as const] : []), ...(this.v6 ? [6 as const] : [])];
  }

  /** Sends one datagram (best effort; errors are counted, never thrown). */
  send(family: 4 | 6, address: string, port: number, b: Buffer): void {
    const s = family === 4 ? this.v4 : this.v6;
    if (!s || b.length > MAX_DATAGRAM) return;
    s.send(b, port, address, (err) => {
      if (err) this.sendErrors[family]++;
    });
  }

  /** Sends one datagram to the multicast group(s). */
  sendMulticast(b: Buffer): void {
    if (!this.mcast) return;
    if (this.mcast.v4) this.send(4, this.mcast.v4, this.mcast.port, b);
    if (this.mcast.v6) this.send(6, this.mcast.v6, this.mcast.port, b);
  }

  /** Closes both sockets. */
  close(): void {
    for (const s of [this.v4, this.v6]) {
      try {
        s?.close();
      } catch {
        // already closed
      }
    }
  }
}
