/**
 * The receive path: authenticate (trust/frame-auth.ts: the cluster key or the sender's
 * certificate and pairwise key) → replay window → parse → dispatch, or drop and count. The
 * payload is parsed before the replay state is kept, so a malformed message changes nothing.
 * Echo probes coming back (not frames) go straight to their handler, which checks them against
 * what this node sent.
 */
import { log } from '../../util/log';
import { count, countTraffic, type DaemonCounters } from '../counters';
import { isEcho } from '../protocol/echo';
import type { RejectReason } from '../protocol/frame';
import { type Announce, AnnounceSchema, type Negotiate, NegotiateSchema, parsePayload } from '../protocol/messages';
import { decodeProbe, type Probe } from '../protocol/probe';
import { checkReplay, type ReplayState } from '../protocol/replay';
import type { AuthRefusal, FrameAuth, OpenedFrame } from '../trust/frame-auth';
import type { Source } from './udp';

/** An authenticated frame as handlers get it (with the sender's certificate, when it has one). */
type Frame = OpenedFrame;

/** A handler's verdict: handled, malformed, or another reason to drop it (a node this daemon does not know, ...). */
export type Handled = true | false | DropReason;

/** What the receiver dispatches to. */
export interface ReceiveHandlers {
  announce(f: Frame, a: Announce, src: Source): Handled;
  /** True when the payload is the sender's last applied announcement byte for byte (its refresh): handled without parsing. */
  announceRepeat?(f: Frame, src: Source): boolean;
  negotiate(f: Frame, m: Negotiate, src: Source): Handled;
  probe(f: Frame, p: Probe, src: Source): Handled;
  /** A probe reply, received agoMs before now (the transport's word; 0: just now). */
  probeReply(f: Frame, p: Probe, src: Source, agoMs: number): Handled;
  /** An echo probe come back (not a frame: no MAC, no node name; see protocol/echo.ts), received agoMs before now. */
  echo(b: Buffer, src: Source, agoMs: number): Handled;
}

/** Why a datagram was dropped. */
export type DropReason = RejectReason | AuthRefusal | 'self' | 'unknown-peer' | 'unknown-pair' | 'internal' | 'uncertified-address';

/** What the receive path is built from. */
export interface ReceiverDeps {
  /** Opens each frame (trust/frame-auth.ts). */
  auth: FrameAuth;
  node: string;
  counters: DaemonCounters;
  handlers: ReceiveHandlers;
  now: () => number;
}

/** The receive path of one daemon, with the per-sender replay state. */
export class Receiver {
  private readonly replay = new Map<string, ReplayState>();
  /** When each sender's replay state last accepted a message. */
  private readonly replaySeen = new Map<string, number>();

  private readonly auth: FrameAuth;
  private readonly node: string;
  private readonly counters: DaemonCounters;
  private readonly handlers: ReceiveHandlers;
  private readonly now: () => number;

  constructor(deps: ReceiverDeps) {
    this.auth = deps.auth;
    this.node = deps.node;
    this.counters = deps.counters;
    this.handlers = deps.handlers;
    this.now = deps.now;
  }

  /**
   * Handles one datagram (b valid during the call only), received agoMs before now. Nothing a
   * datagram carries may take the daemon down: an unexpected error is logged and counted.
   */
  receive(b: Buffer, src: Source, agoMs = 0): void {
    try {
      this.handle(b, src, agoMs);
    } catch (err) {
      count(this.counters.drops, 'internal');
      log.error('internal error on receive', { error: String((err as Error).stack ?? err) });
    }
  }

  private handle(b: Buffer, src: Source, agoMs: number): void {
    const drop = (reason: DropReason) => count(this.counters.drops, reason);
    if (isEcho(b)) {
      const ok = this.handlers.echo(b, src, agoMs);
      if (ok !== true) {
        drop(ok === false ? 'payload' : ok);
        return;
      }
      count(this.counters.rx, 'echo');
      countTraffic(this.counters, 'rx', 'echo', src.family, b.length);
      return;
    }
    const f = this.auth.open(b);
    if (typeof f === 'string') {
      drop(f);
      return;
    }
    if (f.node === this.node) {
      drop('self');
      return;
    }
    const r = checkReplay(this.replay.get(f.node), f.epoch, f.seq);
    if (!r) {
      drop('replay');
      return;
    }
    const ok = this.dispatch(f, src, agoMs);
    if (ok !== true) {
      drop(ok === false ? 'payload' : ok);
      return;
    }
    this.replay.set(f.node, r);
    this.replaySeen.set(f.node, this.now());
    count(this.counters.rx, f.type);
    countTraffic(this.counters, 'rx', f.type, src.family, b.length);
  }

  private dispatch(f: Frame, src: Source, agoMs: number): Handled {
    switch (f.type) {
      case 'announce': {
        if (this.handlers.announceRepeat?.(f, src)) return true;
        const a = parsePayload(AnnounceSchema, f.payload);
        return a ? this.handlers.announce(f, a, src) : false;
      }
      case 'negotiate': {
        const m = parsePayload(NegotiateSchema, f.payload);
        // Bound to its receiver: a copy replayed to another node is not for it.
        return m && m.to === this.node ? this.handlers.negotiate(f, m, src) : false;
      }
      case 'probe':
      case 'probeReply': {
        const p = decodeProbe(f.payload);
        if (!p || p.family !== src.family) return false;
        return f.type === 'probe' ? this.handlers.probe(f, p, src) : this.handlers.probeReply(f, p, src, agoMs);
      }
    }
  }

  /**
   * Forgets the replay state of senders not heard for maxAgeMs that are not peers: a node whose
   * clock went back (a lower epoch) is accepted again once it has been silent for a peer timeout.
   */
  prune(isPeer: (node: string) => boolean, now: number, maxAgeMs: number): void {
    for (const [node, at] of this.replaySeen) {
      if (isPeer(node) || now - at <= maxAgeMs) continue;
      this.replaySeen.delete(node);
      this.replay.delete(node);
    }
  }
}
