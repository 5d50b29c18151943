/**
 * A pair's life on this node: created (on demand, or when the peer negotiates it), adopted from
 * the maps after a restart, its sending wire reconciled with the map, dropped. Every map write
 * of a pair goes through write(), which logs and records a switch; a failing map operation is
 * logged and never aborts the caller's loop.
 */
import type { WireName } from '../../bpf/maps-layout';
import type { SteeringWriter } from '../../bpf/steering-writer';
import { FAMILIES } from '../../net/family';
import { effectivePolicy } from '../../policy/schema';
import { log } from '../../util/log';
import type { Clock } from '../clock';
import type { DaemonConfig } from '../daemon-config';
import type { Peer, PeerTable } from '../discovery/peers';
import type { LocalEndpoint, LocalPods } from '../local/pods';
import { probeSoon } from '../probing/probe-path';
import type { Prober } from '../probing/prober';
import type { Protection } from '../protection/protector';
import type { AnnouncedEndpoint } from '../protocol/messages';
import { adoptionHolds, isLeader, newPair, orphansExpired, type PairState, pairKey, sendingWire } from './pair';
import type { PairTable } from './pair-table';
import type { PairMetrics } from './selection';
import type { SwitchLog } from './switch-log';

/** A route found in the maps at start-up, waiting for its peer. */
interface Orphan {
  ifindex: number;
  remoteIpv6: string;
  wire: WireName;
}

/** What a pair's lifecycle is built from. */
export interface LifecycleDeps {
  cfg: DaemonConfig;
  clock: Clock;
  writer: SteeringWriter;
  pairs: PairTable;
  peers: PeerTable;
  local: LocalPods;
  prober: Prober;
  switches: SwitchLog;
  protection: Protection;
  /** Called when a pair is created (the daemon negotiates it with the peer at once). */
  onCreated?: (peer: Peer) => void;
  /** The local endpoints whose pairs this daemon keeps (another network's negotiator keeps the rest); default all. */
  ownsEndpoint?: (ifindex: number) => boolean;
}

/** Creates, adopts, reconciles and drops pairs. */
export class PairLifecycle {
  /** Pairs found in the maps at start-up, waiting for their peer: "ifindex|remote ipv6". */
  private readonly orphans = new Map<string, Orphan>();

  private readonly cfg: DaemonConfig;
  private readonly clock: Clock;
  private readonly writer: SteeringWriter;
  private readonly pairs: PairTable;
  private readonly peers: PeerTable;
  private readonly local: LocalPods;
  private readonly prober: Prober;
  private readonly switches: SwitchLog;
  private readonly protection: Protection;
  private readonly onCreated: (peer: Peer) => void;
  private readonly ownsEndpoint: (ifindex: number) => boolean;

  constructor(deps: LifecycleDeps) {
    this.cfg = deps.cfg;
    this.clock = deps.clock;
    this.writer = deps.writer;
    this.pairs = deps.pairs;
    this.peers = deps.peers;
    this.local = deps.local;
    this.prober = deps.prober;
    this.switches = deps.switches;
    this.protection = deps.protection;
    this.onCreated = deps.onCreated ?? (() => {});
    this.ownsEndpoint = deps.ownsEndpoint ?? (() => true);
  }

  /** Remembers every pair of this daemon's endpoints the maps hold (a previous run's) as an orphan to adopt; returns how many. */
  loadOrphans(): number {
    for (const p of this.writer.listPairs())
      if (this.ownsEndpoint(p.ifindex))
        this.orphans.set(`${p.ifindex}|${p.remote.ipv6}`, { ifindex: p.ifindex, remoteIpv6: p.remote.ipv6, wire: p.wire });
    return this.orphans.size;
  }

  /** The fixed facts of a pair. */
  private base(l: LocalEndpoint, peer: Peer, e: AnnouncedEndpoint) {
    return {
      localCnf: l.cnf,
      remoteCnf: e.cnf,
      peerNode: peer.node,
      ifindex: l.ifindex,
      remote: { ipv4: e.ipv4, ipv6: e.ipv6 },
      policy: effectivePolicy(l.policy, this.cfg.policy),
      leader: isLeader(l.cnf, e.cnf, this.cfg.nodeName, peer.node),
    };
  }

  /** A new pair, native at once (its packets are counted and no longer recorded as demand), negotiated right away. */
  create(l: LocalEndpoint, peer: Peer, e: AnnouncedEndpoint, why: string): PairState {
    const k = pairKey(l.cnf, e.cnf);
    const now = this.clock.now();
    const p = newPair(this.base(l, peer, e), now);
    this.pairs.set(k, p);
    peer.dropped.delete(`${l.cnf}|${e.cnf}`);
    log.info('pair created', { pair: k, peer: peer.node, why, leader: p.leader, policy: p.policy.criterion });
    this.write(p, 'native', 'new pair (native until negotiated)');
    for (const f of FAMILIES) if (peer.paths[f]) probeSoon(peer.paths[f]!, now);
    this.prober.hurry(peer);
    peer.negotiateDue = true;
    this.onCreated(peer);
    return p;
  }

  /** Pairs a previous run left toward this remote pod: kept exactly as they are until the peer speaks. */
  adoptOrphans(peer: Peer, e: AnnouncedEndpoint): void {
    for (const [k, o] of this.orphans) {
      if (o.remoteIpv6 !== e.ipv6) continue;
      this.orphans.delete(k);
      const l = this.local.byHostIfindex(o.ifindex);
      if (!l) continue;
      const p = newPair(this.base(l, peer, e), this.clock.now(), o.wire);
      p.adopted = true;
      p.wireReason = 'adopted from the maps after a restart';
      this.pairs.set(pairKey(l.cnf, e.cnf), p);
      peer.negotiateDue = true;
      log.info('pair adopted', { pair: pairKey(l.cnf, e.cnf), peer: peer.node, wire: o.wire });
    }
  }

  /** Orphans whose peer never came back within a peer timeout of start-up: reverted to native. */
  expireOrphans(startedAt: number): void {
    if (!this.orphans.size || !orphansExpired(this.clock.now(), startedAt, this.cfg.timers.peerTimeoutMs)) return;
    for (const o of this.orphans.values()) {
      this.clearRoute(o.ifindex, o.remoteIpv6);
      log.info('stale pair from a previous run reverted to native', { ifindex: o.ifindex, remote: o.remoteIpv6, wire: o.wire });
    }
    this.orphans.clear();
  }

  /** Brings the pair's route to the wire its state calls for, then its protection. */
  reconcile(p: PairState, mine?: PairMetrics): void {
    const peer = this.peers.get(p.peerNode);
    const now = this.clock.now();
    const alive = this.peers.alive(peer, now);
    if (p.adopted) {
      if (adoptionHolds(p, alive, now, this.cfg.timers.peerTimeoutMs)) return;
      p.adopted = false;
    }
    const { wire, reason } = sendingWire(p, mine ?? (peer ? this.prober.metricsOf(peer) : {}), alive, {
      now,
      maxAgeMs: this.cfg.timers.peerTimeoutMs,
    });
    const inMap = this.writer.getPair(p.ifindex, p.remote.ipv6);
    if (wire !== p.wire || inMap?.wire !== wire) this.write(p, wire, reason);
    this.protection.reconcile(p, peer);
  }

  /** Writes the pair's wire; a switch is logged and recorded. A failing write is logged and left for the next reconcile. */
  write(p: PairState, wire: WireName, reason: string): void {
    const from = p.wire;
    try {
      this.writer.setWire(p.ifindex, p.remote.ipv6, wire, p.round);
    } catch (err) {
      log.error('cannot write steering', { pair: pairKey(p.localCnf, p.remoteCnf), wire, error: (err as Error).message });
      return;
    }
    p.wire = wire;
    p.wireReason = reason;
    if (from !== wire) {
      const ev = { at: this.clock.wallIso(), pair: pairKey(p.localCnf, p.remoteCnf), peer: p.peerNode, from, to: wire, reason };
      this.switches.add(ev);
      log.info('switch', { ...ev });
    }
  }

  /** Drops a pair: its routes cleared (it goes native); the peer told at the next negotiation unless tellPeer is false. */
  drop(k: string, why: string, tellPeer = true): void {
    const p = this.pairs.delete(k);
    if (!p) return;
    this.clearRoute(p.ifindex, p.remote.ipv6);
    if (tellPeer) this.peers.get(p.peerNode)?.dropped.add(`${p.localCnf}|${p.remoteCnf}`);
    log.info('pair dropped', { pair: k, peer: p.peerNode, why, wire: p.wire });
  }

  /** Clears a route; a failing map delete is logged (the periodic resync heals it), never thrown. */
  private clearRoute(ifindex: number, remoteIpv6: string): void {
    try {
      this.writer.clear(ifindex, remoteIpv6);
    } catch (err) {
      log.error('cannot clear steering', { ifindex, remote: remoteIpv6, error: (err as Error).message });
    }
  }
}
