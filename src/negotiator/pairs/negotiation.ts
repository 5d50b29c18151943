/**
 * Negotiation with each peer: this node's view of every pair with it (metrics, preference,
 * decapsulation confirmation, round, activity) sent in as few datagrams as it takes, the peer's
 * view taken in, and the leader's evaluation step. What a pair's wire becomes is pair.ts.
 */
import type { SteeringWriter } from '../../bpf/steering-writer';
import { log } from '../../util/log';
import type { Clock } from '../clock';
import { count, type DaemonCounters } from '../counters';
import type { DaemonConfig } from '../daemon-config';
import type { Peer, PeerTable } from '../discovery/peers';
import type { LocalPods } from '../local/pods';
import type { Prober } from '../probing/prober';
import { Protection } from '../protection/protector';
import type { Negotiate, PairMessage } from '../protocol/messages';
import { packNegotiate } from '../protocol/pack';
import type { Sender } from '../transport/sender';
import type { PairLifecycle } from './lifecycle';
import { agreedPreference, isStaleRound, type PairState, pairKey } from './pair';
import type { PairTable } from './pair-table';
import { type PinStore, PREFER_CAPABILITY, stepPinned } from './pins';
import type { PairMetrics } from './selection';

/** What negotiation is built from. */
export interface NegotiationDeps {
  cfg: DaemonConfig;
  clock: Clock;
  sender: Sender;
  writer: SteeringWriter;
  peers: PeerTable;
  pairs: PairTable;
  local: LocalPods;
  lifecycle: PairLifecycle;
  prober: Prober;
  counters: DaemonCounters;
  protection: Protection;
  /** Operator pins (`afsteerd prefer`); none: every pair is negotiated. */
  pins?: PinStore;
}

/** Negotiation messages in and out, and evaluation. */
export class Negotiation {
  private readonly cfg: DaemonConfig;
  private readonly clock: Clock;
  private readonly sender: Sender;
  private readonly writer: SteeringWriter;
  private readonly peers: PeerTable;
  private readonly pairs: PairTable;
  private readonly local: LocalPods;
  private readonly lifecycle: PairLifecycle;
  private readonly prober: Prober;
  private readonly counters: DaemonCounters;
  private readonly protection: Protection;
  private readonly pins: PinStore | undefined;

  constructor(deps: NegotiationDeps) {
    this.cfg = deps.cfg;
    this.clock = deps.clock;
    this.sender = deps.sender;
    this.writer = deps.writer;
    this.peers = deps.peers;
    this.pairs = deps.pairs;
    this.local = deps.local;
    this.lifecycle = deps.lifecycle;
    this.prober = deps.prober;
    this.counters = deps.counters;
    this.protection = deps.protection;
    this.pins = deps.pins;
  }

  /** This node's entry for a pair in a negotiation message (pinned only to a prefer-v1 peer, protect fields only to one that deduplicates). */
  private pairMessage(p: PairState, metrics: PairMetrics, peer: Peer): PairMessage {
    const pinned = peer.capabilities.includes(PREFER_CAPABILITY) ? this.pins?.ownPin(p)?.family : undefined;
    const protect = this.protection.speaksTo(peer) ? this.protection.advert(p) : undefined;
    return {
      source_CNF_ID: p.localCnf,
      destination_CNF_ID: p.remoteCnf,
      supported_families: ['IPv4', 'IPv6'],
      performance_metrics: metrics,
      preferred_family: agreedPreference(p),
      policy: this.protection.speaksTo(peer) ? p.policy : Protection.legacyPolicy(p.policy),
      decap: this.writer.remoteByAddress(p.remote.ipv6) !== undefined,
      round: p.round,
      active: this.clock.now() - p.lastActiveAt < this.cfg.timers.pairIdleMs,
      ...(pinned ? { pinned } : {}),
      ...(protect ?? {}),
    };
  }

  /** Sends every pair with this peer (and the ones dropped since), in as many datagrams as it takes. */
  send(peer: Peer): void {
    if (!this.pairs.peerHasPairs(peer.node) && peer.dropped.size === 0) {
      // Nothing to say (no datagram would go): no metrics computed for it either.
      peer.negotiateDue = false;
      peer.lastNegotiateAt = this.clock.now();
      return;
    }
    const metrics = this.prober.metricsOf(peer);
    const entries = this.pairs.ofPeer(peer.node).map(([, p]) => this.pairMessage(p, metrics, peer));
    const dropped = [...peer.dropped];
    peer.dropped.clear();
    peer.negotiateDue = false;
    peer.lastNegotiateAt = this.clock.now();
    for (const m of packNegotiate(peer.node, entries, dropped, this.sender.room('negotiate'))) {
      this.sender.toTarget(peer, 'negotiate', Buffer.from(JSON.stringify(m)), peer.node);
    }
  }

  /** Takes in a peer's negotiation message (sent by the peer's boot `epoch`). */
  receive(peer: Peer, m: Negotiate, epoch: bigint): void {
    const now = this.clock.now();
    for (const d of m.dropped ?? []) {
      const [src, dst] = d.split('|');
      const p = this.pairs.get(pairKey(dst ?? '', src ?? ''));
      if (p && p.peerNode === peer.node && p.peer) p.peer = { ...p.peer, active: false, decap: p.peer.decap, dedup: false, dup: false };
    }
    let reply = false;
    for (const e of m.pairs) {
      const l = this.local.get(e.destination_CNF_ID);
      const r = peer.endpoints.get(e.source_CNF_ID);
      if (!l || !r || !l.ipv4 || !l.ipv6) {
        count(this.counters.drops, 'unknown-pair');
        continue;
      }
      const k = pairKey(l.cnf, r.cnf);
      let p = this.pairs.get(k);
      // A pair with a pod another node hosts (a CNF id announced twice) is not this peer's to change.
      if (p && p.peerNode !== peer.node) {
        count(this.counters.drops, 'unknown-pair');
        continue;
      }
      if (!p) {
        if (!e.active) continue;
        p = this.lifecycle.create(l, peer, r, `peer ${peer.node} negotiates`);
        reply = true;
      }
      if (isStaleRound(p, e.round, epoch)) continue;
      if (!p.peer?.decap && e.decap) reply = true;
      if (!p.peer?.dedup && e.dedup) reply = true;
      p.peer = {
        preferred: e.preferred_family,
        round: e.round,
        epoch,
        decap: e.decap,
        active: e.active,
        metrics: e.performance_metrics,
        policy: e.policy,
        at: now,
        ...(e.pinned ? { pinned: e.pinned } : {}),
        ...(e.protect !== undefined ? { protect: e.protect } : {}),
        ...(e.dedup !== undefined ? { dedup: e.dedup } : {}),
        ...(e.dup !== undefined ? { dup: e.dup } : {}),
      };
      if (e.active) p.lastActiveAt = Math.max(p.lastActiveAt, now);
      if (p.adopted) {
        p.adopted = false;
        log.info('pair resumed', { pair: k, peer: peer.node, wire: p.wire });
      }
      this.lifecycle.reconcile(p);
    }
    // A change of this node's protection (a window made, duplication started) is told at once.
    if (reply || peer.negotiateDue) this.send(peer);
  }

  /** The leader's evaluation of every pair with a peer; tells the peer of a decision at once. */
  evaluatePeer(peer: Peer): void {
    const now = this.clock.now();
    if (!this.pairs.peerHasPairs(peer.node)) {
      if (peer.negotiateDue && now - peer.lastNegotiateAt > 5) this.send(peer);
      return;
    }
    const mine = this.prober.metricsOf(peer);
    let changed = false;
    for (const [k, p] of this.pairs.ofPeer(peer.node)) {
      const next = stepPinned(
        p,
        this.pins?.forPair(p, peer, now, this.cfg.timers.peerTimeoutMs),
        mine,
        now,
        this.cfg.timers.peerTimeoutMs,
        this.cfg.selection,
      );
      if (next.round !== p.round) {
        changed = true;
        const c = next.selection.lastChange!;
        log.info('decision', { pair: k, peer: peer.node, from: c.from ?? 'native', to: c.to ?? 'native', reason: c.reason });
      }
      this.pairs.set(k, next);
      this.lifecycle.reconcile(next, mine);
    }
    if (changed || (peer.negotiateDue && this.clock.now() - peer.lastNegotiateAt > 5)) this.send(peer);
  }

  /** Every peer evaluated; each told of its pairs at least every negotiateIntervalMs. */
  evaluateAll(): void {
    const now = this.clock.now();
    for (const peer of this.peers.values()) {
      this.evaluatePeer(peer);
      if (now - peer.lastNegotiateAt >= this.cfg.timers.negotiateIntervalMs) this.send(peer);
    }
  }
}
