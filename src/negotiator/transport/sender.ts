/** Sending: every datagram framed and authenticated with this boot's epoch and a fresh counter, then counted. */

import { addressOf, FAMILIES, type Family } from '../../net/family';
import { log } from '../../util/log';
import { count, countTraffic, type DaemonCounters } from '../counters';
import { encodeFrame, type FrameTypeName } from '../protocol/frame';
import type { DatagramTransport } from './udp';

/** Where a peer listens. */
export interface Target {
  addresses: { ipv4?: string; ipv6?: string };
  port: number;
}

/** What a sender is built from. */
export interface SenderDeps {
  key: Buffer;
  node: string;
  /** This boot's epoch (receivers keep one replay window per epoch). */
  epoch: bigint;
  own: { ipv4?: string; ipv6?: string };
  transport: DatagramTransport;
  counters: DaemonCounters;
}

/** Frames, sends and counts this node's datagrams. */
export class Sender {
  private seq = 0n;

  private readonly key: Buffer;
  private readonly node: string;
  /** This boot's epoch (receivers keep one replay window per epoch). */
  readonly epoch: bigint;
  private readonly own: { ipv4?: string; ipv6?: string };
  private readonly transport: DatagramTransport;
  private readonly counters: DaemonCounters;

  constructor(deps: SenderDeps) {
    this.key = deps.key;
    this.node = deps.node;
    this.epoch = deps.epoch;
    this.own = deps.own;
    this.transport = deps.transport;
    this.counters = deps.counters;
  }

  /** One authenticated frame with the next counter. */
  frame(type: FrameTypeName, payload: Buffer): Buffer {
    this.seq += 1n;
    return encodeFrame(this.key, { type, epoch: this.epoch, seq: this.seq, node: this.node, payload });
  }

  /** Sends one message over one family to an address and port. */
  to(family: Family, address: string, port: number, type: FrameTypeName, payload: Buffer): void {
    const frame = this.frame(type, payload);
    this.transport.send(family, address, port, frame);
    count(this.counters.tx, type);
    countTraffic(this.counters, 'tx', type, family, frame.length);
  }

  /** Sends a datagram that is not a frame (an echo probe), counted under kind. */
  raw(family: Family, address: string, port: number, b: Buffer, kind: string): void {
    this.transport.send(family, address, port, b);
    count(this.counters.tx, kind);
    countTraffic(this.counters, 'tx', kind, family, b.length);
  }

  /** Sends a message to a target over every family both have (each copy with its own counter). */
  toTarget(t: Target, type: FrameTypeName, payload: Buffer, what = 'peer'): void {
    for (const f of FAMILIES) {
      const to = addressOf(t.addresses, f);
      if (!to || !addressOf(this.own, f)) continue;
      let frame: Buffer;
      try {
        frame = this.frame(type, payload);
      } catch (err) {
        log.error('message not sent', { to: what, type, error: (err as Error).message });
        return;
      }
      this.transport.send(f, to, t.port, frame);
      count(this.counters.tx, type);
      countTraffic(this.counters, 'tx', type, f, frame.length);
    }
  }

  /** Sends what a batching transport holds now (a no-op for one that sends at once). */
  flush(): void {
    this.transport.flush?.();
  }

  /** Sends a message to the multicast group(s); counted when multicast discovery is on. */
  multicast(type: FrameTypeName, payload: Buffer, counted: boolean): void {
    this.transport.sendMulticast(this.frame(type, payload));
    if (counted) count(this.counters.tx, type);
  }
}
