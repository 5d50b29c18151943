/** Sending: every datagram framed and authenticated (trust/frame-auth.ts) with this boot's epoch and a fresh counter, then counted. */

import { addressOf, FAMILIES, type Family } from '../../net/family';
import { log } from '../../util/log';
import { count, countTraffic, type DaemonCounters } from '../counters';
import type { FrameTypeName } from '../protocol/frame';
import type { AuthTarget, FrameAuth } from '../trust/frame-auth';
import type { DatagramTransport } from './udp';

/** Where a peer listens (and, when known, who it is: identity frames need its certificate). */
export interface Target extends AuthTarget {
  addresses: { ipv4?: string; ipv6?: string };
  port: number;
}

/** What a sender is built from. */
export interface SenderDeps {
  /** Seals each frame: the cluster key's MAC, or the pairwise key / signature of this node's identity. */
  auth: FrameAuth;
  /** This boot's epoch (receivers keep one replay window per epoch). */
  epoch: bigint;
  own: { ipv4?: string; ipv6?: string };
  transport: DatagramTransport;
  counters: DaemonCounters;
}

/** Frames, sends and counts this node's datagrams. */
export class Sender {
  private seq = 0n;

  private readonly auth: FrameAuth;
  /** This boot's epoch (receivers keep one replay window per epoch). */
  readonly epoch: bigint;
  private readonly own: { ipv4?: string; ipv6?: string };
  private readonly transport: DatagramTransport;
  private readonly counters: DaemonCounters;

  constructor(deps: SenderDeps) {
    this.auth = deps.auth;
    this.epoch = deps.epoch;
    this.own = deps.own;
    this.transport = deps.transport;
    this.counters = deps.counters;
  }

  /** One authenticated frame with the next counter, for to; undefined (counted) when this node's auth mode cannot reach it. */
  frame(type: FrameTypeName, payload: Buffer, to?: AuthTarget): Buffer | undefined {
    this.seq += 1n;
    const f = this.auth.seal(type, this.seq, payload, to);
    if (!f) count(this.counters.events, 'unsent-no-certificate');
    return f;
  }

  /** Payload bytes one frame of type can carry. */
  room(type: FrameTypeName): number {
    return this.auth.room(type);
  }

  /** Sends one message over one family to an address and port (of node peer, when known). */
  to(family: Family, address: string, port: number, type: FrameTypeName, payload: Buffer, peer?: string): void {
    const frame = this.frame(type, payload, peer === undefined ? undefined : { node: peer });
    if (!frame) return;
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
      let frame: Buffer | undefined;
      try {
        frame = this.frame(type, payload, t);
      } catch (err) {
        log.error('message not sent', { to: what, type, error: (err as Error).message });
        return;
      }
      if (!frame) return;
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
    const frame = this.frame(type, payload);
    if (!frame) return;
    this.transport.sendMulticast(frame);
    if (counted) count(this.counters.tx, type);
  }
}
