/**
 * afsteerd: the per-node negotiator, wired together. Read top to bottom:
 *   receive (authenticate → replay window → dispatch) · discovery (announcements → peers and
 *   their pods → remotes in the maps) · probes (per peer and family) · demand (first packets →
 *   pairs) · negotiation (pair messages, leader decides) · reconcile (wire per pair → map
 *   writes) · housekeeping (aging, idle pairs, state-file rescan) · status.
 * Decisions live in pure modules (protocol/, probe/path.ts, policy.ts, pair.ts); this file holds
 * the sockets, timers and maps around them.
 */
import { log } from '../util/log';
import { SteeringMaps } from '../bpf/steering-maps';
import type { WireName } from '../bpf/maps-layout';
import { canonical } from '../net/ip';
import type { DaemonConfig } from './config';
import { readLocalEndpoints, type LocalEndpoint } from './endpoints';
import { decodeFrame, encodeFrame, payloadRoom, type Frame, type FrameTypeName, type RejectReason } from './protocol/frame';
import { checkReplay, type ReplayState } from './protocol/replay';
import {
  AnnounceSchema, NegotiateSchema, parsePayload, type Announce, type AnnouncedEndpoint, type FamilyName, type Negotiate, type PairMessage,
} from './protocol/messages';
import { decodeProbe, encodeProbe } from './protocol/probe';
import { packNegotiate } from './protocol/pack';
import { expireProbes, newPath, pathMetrics, probeDue, probeSent, probeSoon, replyReceived, type PathState, type ProbeParams } from './probe/path';
import { agreedPreference, isLeader, newPair, pairKey, sendingWire, stepSelection, type PairState } from './pair';
import type { PairMetrics, PolicyParams } from './policy';
import { Transport, type Source } from './transport';
import { EtcdDiscovery } from './discovery/etcd';

/** A peer node. */
interface Peer {
  node: string;
  addresses: { ipv4?: string; ipv6?: string };
  port: number;
  lastHeard: { 4?: number; 6?: number };
  lastHeardAny: number;
  endpoints: Map<string, AnnouncedEndpoint>;
  assembling?: { gen: number; parts: Map<number, AnnouncedEndpoint[]>; total: number };
  paths: { 4?: PathState; 6?: PathState };
  lastNegotiateAt: number;
  negotiateDue: boolean;
  dropped: Set<string>;
}

/** One recorded switch (status and logs). */
export interface SwitchEvent {
  at: string;
  pair: string;
  peer: string;
  from: WireName;
  to: WireName;
  reason: string;
}

const FAMILIES = [4, 6] as const;
const famName = (f: 4 | 6): FamilyName => (f === 4 ? 'IPv4' : 'IPv6');

/** The running negotiator of one node. */
export class Daemon {
  private readonly epoch = BigInt(Date.now());
  private seq = 0n;
  private readonly t0 = performance.now();
  private readonly peers = new Map<string, Peer>();
  private readonly replay = new Map<string, ReplayState>();
  private readonly pairs = new Map<string, PairState>();
  private local = new Map<string, LocalEndpoint>();
  private readonly remoteOwner = new Map<string, { node: string; cnf: string }>();
  private readonly switches: SwitchEvent[] = [];
  private switchesTotal = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly transport: Transport;
  private announceGen = 0;
  private readonly startedAt: number;
  /** Remote pods whose node went silent (or that a previous run registered), kept registered —
   * so this node still decapsulates their packets, should that node's pinned steering still
   * encapsulate — until remoteRetentionMs; by their IPv6 address. */
  private readonly retained = new Map<string, { ipv4: string; ipv6: string; until: number }>();
  /** When each sender's replay state last accepted a message. */
  private readonly replaySeen = new Map<string, number>();
  /** Pairs found in the maps at start-up, waiting for their peer: "ifindex|remote ipv6". */
  private readonly orphans = new Map<string, { ifindex: number; remoteIpv6: string; wire: WireName }>();
  /** Datagrams received by type, dropped by reason. */
  readonly counters = { rx: {} as Record<string, number>, tx: {} as Record<string, number>, drops: {} as Record<string, number>, events: {} as Record<string, number> };
  private readonly prm: ProbeParams & { minSamples: number };
  /** The probe tick, and when it last ran (to see the event loop stall). */
  private readonly tickMs: number;
  private lastTickAt = 0;
  private skippedExpiry = false;
  private readonly sel: PolicyParams;
  private etcd: EtcdDiscovery | undefined;

  constructor(
    private readonly cfg: DaemonConfig,
    private readonly key: Buffer,
    private readonly addresses: { ipv4?: string; ipv6?: string },
    private readonly maps: SteeringMaps,
  ) {
    this.transport = new Transport(cfg.port, (b, src) => {
      // Nothing a datagram carries may take the daemon down: an unexpected error is logged and counted.
      try {
        this.receive(b, src);
      } catch (err) {
        this.count(this.counters.drops, 'internal');
        log.error('internal error on receive', { error: String((err as Error).stack ?? err) });
      }
    });
    this.prm = cfg.probe;
    this.tickMs = Math.max(2, Math.min(10, Math.floor(cfg.probe.activeIntervalMs / 2)));
    this.sel = cfg.selection;
    this.startedAt = this.now();
  }

  /** Monotonic ms since start-up. */
  private now(): number {
    return performance.now() - this.t0;
  }

  /** Starts sockets and timers; adopts the steering found in the maps. */
  async start(): Promise<void> {
    this.rescanLocal();
    // Remotes a previous run registered stay (their nodes' steering may still encapsulate) until
    // claimed by an announcement or the retention runs out.
    for (const r of this.maps.listRemotes()) this.retained.set(r.ipv6, { ...r, until: this.now() + this.cfg.timers.remoteRetentionMs });
    for (const p of this.maps.listPairs()) {
      this.orphans.set(`${p.ifindex}|${p.remote.ipv6}`, { ifindex: p.ifindex, remoteIpv6: p.remote.ipv6, wire: p.wire });
    }
    const mc = this.cfg.discovery.multicast;
    await this.transport.start(this.addresses, mc ? mc : undefined);
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(() => {
        try {
          fn();
        } catch (err) {
          log.error('internal error', { error: String((err as Error).stack ?? err) });
        }
      }, ms);
      this.timers.push(t);
    };
    const etcd = this.cfg.discovery.etcd;
    if (etcd) {
      const families = FAMILIES.filter((f) => (f === 4 ? this.addresses.ipv4 : this.addresses.ipv6)).map(famName);
      this.etcd = new EtcdDiscovery({ config: etcd, key: this.key, self: { node: this.cfg.nodeName, addresses: this.addresses, port: this.cfg.port, families } });
      await this.etcd.start();
    }
    every(this.tickMs, () => this.probeTick());
    every(this.cfg.timers.evalIntervalMs, () => this.evaluateAll());
    every(this.cfg.timers.demandPollMs, () => this.pollDemand());
    every(this.cfg.timers.announceIntervalMs, () => this.announce());
    every(Math.min(1000, this.cfg.timers.peerTimeoutMs / 4), () => this.housekeeping());
    every(this.cfg.timers.rescanMs, () => this.rescanLocal());
    this.announce();
    log.info('afsteerd started', {
      node: this.cfg.nodeName, epoch: String(this.epoch), addresses: this.addresses, port: this.cfg.port,
      endpoints: this.local.size, adoptedRoutes: this.orphans.size, multicast: Boolean(mc), staticPeers: this.cfg.discovery.static.length,
    });
  }

  /** Stops timers and sockets; the steering in the maps stays as it is. */
  stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.transport.close();
    this.maps.close();
    return this.etcd?.stop() ?? Promise.resolve();
  }

  // ---- sending ------------------------------------------------------------------------------

  private frame(type: FrameTypeName, payload: Buffer): Buffer {
    this.seq += 1n;
    return encodeFrame(this.key, { type, epoch: this.epoch, seq: this.seq, node: this.cfg.nodeName, payload });
  }

  private count(where: Record<string, number>, k: string): void {
    where[k] = (where[k] ?? 0) + 1;
  }

  /** Sends a message to a peer over every family both have (each copy with its own counter). */
  private sendToPeer(peer: Peer, type: FrameTypeName, payload: Buffer): void {
    for (const f of FAMILIES) {
      const to = f === 4 ? peer.addresses.ipv4 : peer.addresses.ipv6;
      const mine = f === 4 ? this.addresses.ipv4 : this.addresses.ipv6;
      if (!to || !mine) continue;
      let frame: Buffer;
      try {
        frame = this.frame(type, payload);
      } catch (err) {
        log.error('message not sent', { peer: peer.node, type, error: (err as Error).message });
        return;
      }
      this.transport.send(f, to, peer.port, frame);
      this.count(this.counters.tx, type);
    }
  }

  // ---- receive path -------------------------------------------------------------------------

  /** Handles one datagram: authenticated, fresh and well-formed, or dropped and counted. */
  receive(b: Buffer, src: Source): void {
    const drop = (reason: RejectReason | 'self' | 'unknown-peer' | 'unknown-pair') => this.count(this.counters.drops, reason);
    const f = decodeFrame(this.key, b);
    if (typeof f === 'string') return drop(f);
    if (f.node === this.cfg.nodeName) return drop('self');
    const r = checkReplay(this.replay.get(f.node), f.epoch, f.seq);
    if (!r) return drop('replay');
    // The payload is parsed before the replay state is kept, so a malformed message changes nothing.
    const ok = this.dispatch(f, src);
    if (ok === false) return drop('payload');
    if (ok === 'unknown-peer') return drop('unknown-peer');
    this.replay.set(f.node, r);
    this.replaySeen.set(f.node, this.now());
    this.count(this.counters.rx, f.type);
  }

  private dispatch(f: Frame, src: Source): boolean | 'unknown-peer' {
    switch (f.type) {
      case 'announce': {
        const a = parsePayload(AnnounceSchema, f.payload);
        if (!a) return false;
        this.onAnnounce(f.node, a, src);
        return true;
      }
      case 'negotiate': {
        const m = parsePayload(NegotiateSchema, f.payload);
        // Bound to its receiver: a copy replayed to another node is not for it.
        if (!m || m.to !== this.cfg.nodeName) return false;
        const peer = this.peers.get(f.node);
        if (!peer) return 'unknown-peer';
        this.heard(peer, src.family);
        this.onNegotiate(peer, m, f.epoch);
        return true;
      }
      case 'probe': {
        const p = decodeProbe(f.payload);
        if (!p || p.family !== src.family) return false;
        const peer = this.peers.get(f.node);
        if (peer) this.heard(peer, src.family);
        // Reflect at once, over the family it came in on, to where it came from.
        this.transport.send(src.family, src.address, src.port, this.frame('probeReply', f.payload));
        this.count(this.counters.tx, 'probeReply');
        return true;
      }
      case 'probeReply': {
        const p = decodeProbe(f.payload);
        if (!p || p.family !== src.family) return false;
        const peer = this.peers.get(f.node);
        if (!peer) return 'unknown-peer';
        const path = peer.paths[src.family];
        if (!path) return true;
        // A reply to another prober's probe (captured and replayed to us) is not ours.
        if (p.nonce !== path.nonce) return false;
        this.heard(peer, src.family);
        const wasBlackhole = path.blackhole;
        replyReceived(path, p.id, this.now(), this.prm);
        if (wasBlackhole && !path.blackhole) {
          log.info('path recovered', { peer: peer.node, family: famName(src.family) });
          this.evaluatePeer(peer);
        }
        return true;
      }
    }
  }

  private heard(peer: Peer, family: 4 | 6): void {
    const now = this.now();
    peer.lastHeard[family] = now;
    peer.lastHeardAny = now;
  }

  // ---- discovery ----------------------------------------------------------------------------

  /** Sends this node's announcement (in parts when its pods do not fit one datagram). */
  private announce(): void {
    const eps: AnnouncedEndpoint[] = [...this.local.values()]
      .filter((e): e is LocalEndpoint & { ipv4: string; ipv6: string } => Boolean(e.ipv4 && e.ipv6))
      .map((e) => ({ cnf: e.cnf, ipv4: e.ipv4, ipv6: e.ipv6 }));
    const base = {
      addresses: this.addresses,
      port: this.cfg.port,
      supported_families: FAMILIES.filter((f) => (f === 4 ? this.addresses.ipv4 : this.addresses.ipv6)).map(famName),
      capabilities: ['encap-4in6', 'encap-6in4', 'probe-v1', 'negotiate-v1'],
    };
    const room = payloadRoom(this.cfg.nodeName);
    const chunks: AnnouncedEndpoint[][] = [];
    let cur: AnnouncedEndpoint[] = [];
    const size = (c: AnnouncedEndpoint[]) => Buffer.byteLength(JSON.stringify({ ...base, gen: this.announceGen, part: 1023, parts: 1024, endpoints: c }));
    for (const e of eps) {
      if (cur.length >= 64 || size([...cur, e]) > room) {
        chunks.push(cur);
        cur = [];
      }
      cur.push(e);
    }
    chunks.push(cur);
    this.announceGen++;
    const targets = new Map<string, { ipv4?: string; ipv6?: string; port: number }>();
    for (const s of this.cfg.discovery.static) targets.set(`${s.ipv4}|${s.ipv6}`, { ...s, port: s.port ?? this.cfg.port });
    for (const t of this.etcd?.targets() ?? []) targets.set(`${t.addresses.ipv4}|${t.addresses.ipv6}`, { ...t.addresses, port: t.port });
    for (const p of this.peers.values()) targets.set(`${p.addresses.ipv4}|${p.addresses.ipv6}`, { ...p.addresses, port: p.port });
    chunks.slice(0, 1024).forEach((c, part) => {
      const payload = Buffer.from(JSON.stringify({ ...base, gen: this.announceGen, part, parts: chunks.length, endpoints: c }));
      this.transport.sendMulticast(this.frame('announce', payload));
      if (this.cfg.discovery.multicast) this.count(this.counters.tx, 'announce');
      for (const t of targets.values()) {
        if (t.ipv4 === this.addresses.ipv4 && t.ipv6 === this.addresses.ipv6) continue;
        for (const f of FAMILIES) {
          const to = f === 4 ? t.ipv4 : t.ipv6;
          if (!to || !(f === 4 ? this.addresses.ipv4 : this.addresses.ipv6)) continue;
          this.transport.send(f, to, t.port, this.frame('announce', payload));
          this.count(this.counters.tx, 'announce');
        }
      }
    });
  }

  private onAnnounce(node: string, a: Announce, src: Source): void {
    const now = this.now();
    let peer = this.peers.get(node);
    if (!peer) {
      peer = { node, addresses: {}, port: a.port, lastHeard: {}, lastHeardAny: now, endpoints: new Map(), paths: {}, lastNegotiateAt: 0, negotiateDue: false, dropped: new Set() };
      this.peers.set(node, peer);
      log.info('peer discovered', { peer: node, addresses: a.addresses, via: famName(src.family) });
    }
    this.heard(peer, src.family);
    peer.addresses = { ...(a.addresses.ipv4 ? { ipv4: canonical(a.addresses.ipv4) } : {}), ...(a.addresses.ipv6 ? { ipv6: canonical(a.addresses.ipv6) } : {}) };
    peer.port = a.port;
    for (const f of FAMILIES) {
      const both = (f === 4 ? peer.addresses.ipv4 && this.addresses.ipv4 : peer.addresses.ipv6 && this.addresses.ipv6);
      if (both && !peer.paths[f]) peer.paths[f] = newPath(now);
      if (!both) delete peer.paths[f];
    }
    if (!peer.assembling || peer.assembling.gen !== a.gen || peer.assembling.total !== a.parts) peer.assembling = { gen: a.gen, parts: new Map(), total: a.parts };
    peer.assembling.parts.set(a.part, a.endpoints);
    if (peer.assembling.parts.size === peer.assembling.total) {
      const all = new Map<string, AnnouncedEndpoint>();
      for (const list of peer.assembling.parts.values()) for (const e of list) all.set(e.cnf, { cnf: e.cnf, ipv4: canonical(e.ipv4), ipv6: canonical(e.ipv6) });
      peer.assembling = undefined;
      this.applyPeerEndpoints(peer, all);
    }
  }

  /** A peer's complete pod list: new pods registered as remotes, gone ones unregistered. */
  private applyPeerEndpoints(peer: Peer, next: Map<string, AnnouncedEndpoint>): void {
    for (const [cnf, e] of peer.endpoints) {
      const n = next.get(cnf);
      if (n && n.ipv4 === e.ipv4 && n.ipv6 === e.ipv6) continue;
      this.forgetRemote(peer, e, 'pod gone from peer');
    }
    for (const [cnf, e] of next) {
      const old = peer.endpoints.get(cnf);
      if (old && old.ipv4 === e.ipv4 && old.ipv6 === e.ipv6) continue;
      try {
        this.maps.registerRemote({ ipv4: e.ipv4, ipv6: e.ipv6 });
      } catch (err) {
        log.warn('cannot register remote pod', { peer: peer.node, cnf, error: (err as Error).message });
        next.delete(cnf);
        continue;
      }
      this.remoteOwner.set(e.ipv4, { node: peer.node, cnf });
      this.remoteOwner.set(e.ipv6, { node: peer.node, cnf });
      this.adoptOrphans(peer, e);
    }
    peer.endpoints = next;
  }

  /** A peer's pod is gone (from its list, or with the peer): pairs dropped; the remote unregistered now, or after the retention. */
  private forgetRemote(peer: Peer, e: AnnouncedEndpoint, why: string, retain = false): void {
    for (const [k, p] of this.pairs) {
      if (p.peerNode === peer.node && p.remoteCnf === e.cnf) this.dropPair(k, why, false);
    }
    this.remoteOwner.delete(e.ipv4);
    this.remoteOwner.delete(e.ipv6);
    if (retain && this.cfg.timers.remoteRetentionMs > 0) this.retained.set(e.ipv6, { ipv4: e.ipv4, ipv6: e.ipv6, until: this.now() + this.cfg.timers.remoteRetentionMs });
    else this.maps.unregisterRemote({ ipv4: e.ipv4, ipv6: e.ipv6 });
  }

  /** Pairs left in the maps by a previous run, toward this remote pod: kept as they are. */
  private adoptOrphans(peer: Peer, e: AnnouncedEndpoint): void {
    for (const [k, o] of this.orphans) {
      if (o.remoteIpv6 !== e.ipv6) continue;
      this.orphans.delete(k);
      const l = [...this.local.values()].find((x) => x.ifindex === o.ifindex);
      if (!l) continue;
      const p = newPair(this.pairBase(l, peer, e), this.now(), o.wire);
      p.adopted = true;
      p.wireReason = 'adopted from the maps after a restart';
      this.pairs.set(pairKey(l.cnf, e.cnf), p);
      peer.negotiateDue = true;
      log.info('pair adopted', { pair: pairKey(l.cnf, e.cnf), peer: peer.node, wire: o.wire });
    }
  }

  private pairBase(l: LocalEndpoint, peer: Peer, e: AnnouncedEndpoint) {
    return {
      localCnf: l.cnf, remoteCnf: e.cnf, peerNode: peer.node, ifindex: l.ifindex, remote: { ipv4: e.ipv4, ipv6: e.ipv6 },
      policy: l.policy ?? this.cfg.policy, leader: isLeader(l.cnf, e.cnf, this.cfg.nodeName, peer.node),
    };
  }

  // ---- probes -------------------------------------------------------------------------------

  private peerActive(peer: Peer): boolean {
    for (const p of this.pairs.values()) if (p.peerNode === peer.node) return true;
    return false;
  }

  private probeTick(): void {
    const now = this.now();
    // After the event loop stalled (GC, a starved CPU), the replies that came in meanwhile are
    // still queued on the sockets: the timers run before them. Expiring probes now would count
    // this daemon's own stall as loss, so expiry waits one tick for them (never two in a row).
    const stalled = this.lastTickAt > 0 && now - this.lastTickAt > this.tickMs + this.prm.minTimeoutMs / 2;
    this.lastTickAt = now;
    const expire = !stalled || this.skippedExpiry;
    this.skippedExpiry = !expire;
    if (!expire) this.count(this.counters.events, 'event-loop-stall');
    for (const peer of this.peers.values()) {
      const active = this.peerActive(peer);
      let changed = false;
      for (const f of FAMILIES) {
        const path = peer.paths[f];
        const to = f === 4 ? peer.addresses.ipv4 : peer.addresses.ipv6;
        if (!path || !to) continue;
        if (expire && expireProbes(path, now, this.prm)) {
          log.warn('blackhole', { peer: peer.node, family: famName(f), consecutiveLost: path.consecutiveLost });
          changed = true;
        }
        if (probeDue(path, now)) {
          const id = probeSent(path, now, active, this.prm);
          const payload = encodeProbe({ family: f, active, id, t1: BigInt(Math.round(now * 1000)), nonce: path.nonce });
          this.transport.send(f, to, peer.port, this.frame('probe', payload));
          this.count(this.counters.tx, 'probe');
        }
      }
      if (changed) this.evaluatePeer(peer);
    }
  }

  /** This node's metrics toward a peer (a family counts once it has minSamples outcomes, or is a blackhole). */
  private metricsOf(peer: Peer): PairMetrics {
    const out: PairMetrics = {};
    for (const f of FAMILIES) {
      const path = peer.paths[f];
      const m = path && pathMetrics(path);
      if (m && (path.outcomes.length >= this.prm.minSamples || m.blackhole)) out[famName(f)] = m;
    }
    return out;
  }

  // ---- demand -------------------------------------------------------------------------------

  private pollDemand(): void {
    for (const d of this.maps.drainDemand()) {
      const l = [...this.local.values()].find((x) => x.ifindex === d.ifindex);
      const owner = this.remoteOwner.get(canonical(d.address));
      const peer = owner && this.peers.get(owner.node);
      const e = peer?.endpoints.get(owner!.cnf);
      if (!l || !peer || !e || !l.ipv4 || !l.ipv6) continue;
      const k = pairKey(l.cnf, e.cnf);
      if (this.pairs.has(k)) continue;
      this.createPair(l, peer, e, 'first packet');
    }
  }

  private createPair(l: LocalEndpoint, peer: Peer, e: AnnouncedEndpoint, why: string): PairState {
    const k = pairKey(l.cnf, e.cnf);
    const p = newPair(this.pairBase(l, peer, e), this.now());
    this.pairs.set(k, p);
    peer.dropped.delete(`${l.cnf}|${e.cnf}`);
    log.info('pair created', { pair: k, peer: peer.node, why, leader: p.leader, policy: p.policy.criterion });
    // A native route at once: the pair's packets are counted and no longer recorded as demand.
    this.write(p, 'native', 'new pair (native until negotiated)');
    for (const f of FAMILIES) if (peer.paths[f]) probeSoon(peer.paths[f]!, this.now());
    peer.negotiateDue = true;
    this.sendNegotiate(peer);
    return p;
  }

  // ---- negotiation --------------------------------------------------------------------------

  private pairMessage(p: PairState, metrics: PairMetrics): PairMessage {
    const now = this.now();
    return {
      source_CNF_ID: p.localCnf,
      destination_CNF_ID: p.remoteCnf,
      supported_families: ['IPv4', 'IPv6'],
      performance_metrics: metrics,
      preferred_family: agreedPreference(p),
      policy: p.policy,
      decap: this.maps.remoteByAddress(p.remote.ipv6) !== undefined,
      round: p.round,
      active: now - p.lastActiveAt < this.cfg.timers.pairIdleMs,
    };
  }

  /** Sends every pair with this peer (and the ones dropped since), in as many datagrams as it takes. */
  private sendNegotiate(peer: Peer): void {
    const metrics = this.metricsOf(peer);
    const entries = [...this.pairs.values()].filter((p) => p.peerNode === peer.node).map((p) => this.pairMessage(p, metrics));
    const dropped = [...peer.dropped];
    peer.dropped.clear();
    peer.negotiateDue = false;
    peer.lastNegotiateAt = this.now();
    for (const m of packNegotiate(peer.node, entries, dropped, payloadRoom(this.cfg.nodeName))) {
      this.sendToPeer(peer, 'negotiate', Buffer.from(JSON.stringify(m)));
    }
  }

  private onNegotiate(peer: Peer, m: Negotiate, epoch: bigint): void {
    const now = this.now();
    for (const d of m.dropped ?? []) {
      const [src, dst] = d.split('|');
      const k = pairKey(dst ?? '', src ?? '');
      const p = this.pairs.get(k);
      if (p && p.peerNode === peer.node && p.peer) p.peer = { ...p.peer, active: false, decap: p.peer.decap };
    }
    let reply = false;
    for (const e of m.pairs) {
      const l = this.local.get(e.destination_CNF_ID);
      const r = peer.endpoints.get(e.source_CNF_ID);
      if (!l || !r || !l.ipv4 || !l.ipv6) {
        this.count(this.counters.drops, 'unknown-pair');
        continue;
      }
      const k = pairKey(l.cnf, r.cnf);
      let p = this.pairs.get(k);
      // A pair with a pod another node hosts (a CNF id announced twice) is not this peer's to change.
      if (p && p.peerNode !== peer.node) {
        this.count(this.counters.drops, 'unknown-pair');
        continue;
      }
      if (!p) {
        if (!e.active) continue;
        p = this.createPair(l, peer, r, `peer ${peer.node} negotiates`);
        reply = true;
      }
      // A leader's older decision (reordered between families) never undoes a newer one; rounds
      // count within one boot of the sender (a restarted leader starts again at 0).
      if (p.peer && !p.leader && epoch === p.peer.epoch && e.round < p.peer.round) continue;
      if (!p.peer?.decap && e.decap) reply = true;
      p.peer = { preferred: e.preferred_family, round: e.round, epoch, decap: e.decap, active: e.active, metrics: e.performance_metrics, policy: e.policy, at: now };
      if (e.active) p.lastActiveAt = Math.max(p.lastActiveAt, now);
      if (p.adopted) {
        p.adopted = false;
        log.info('pair resumed', { pair: k, peer: peer.node, wire: p.wire });
      }
      this.reconcile(p);
    }
    if (reply) this.sendNegotiate(peer);
  }

  // ---- selection and reconcile --------------------------------------------------------------

  private evaluatePeer(peer: Peer): void {
    const mine = this.metricsOf(peer);
    let changed = false;
    for (const [k, p] of this.pairs) {
      if (p.peerNode !== peer.node) continue;
      const next = stepSelection(p, mine, this.now(), this.cfg.timers.peerTimeoutMs, this.sel);
      if (next.round !== p.round) {
        changed = true;
        const c = next.selection.lastChange!;
        log.info('decision', { pair: k, peer: peer.node, from: c.from ?? 'native', to: c.to ?? 'native', reason: c.reason });
      }
      this.pairs.set(k, next);
      this.reconcile(next, mine);
    }
    if (changed || (peer.negotiateDue && this.now() - peer.lastNegotiateAt > 5)) this.sendNegotiate(peer);
  }

  private evaluateAll(): void {
    const now = this.now();
    for (const peer of this.peers.values()) {
      this.evaluatePeer(peer);
      if (now - peer.lastNegotiateAt >= this.cfg.timers.negotiateIntervalMs) this.sendNegotiate(peer);
    }
  }

  private peerAlive(peer: Peer | undefined): boolean {
    return peer !== undefined && this.now() - peer.lastHeardAny < this.cfg.timers.peerTimeoutMs;
  }

  /** Brings the pair's route to the wire its state calls for. */
  private reconcile(p: PairState, mine?: PairMetrics): void {
    const peer = this.peers.get(p.peerNode);
    if (p.adopted) {
      // Left exactly as the previous run left it until the peer speaks, or for one peer timeout.
      if (this.peerAlive(peer) && this.now() - p.createdAt < this.cfg.timers.peerTimeoutMs) return;
      p.adopted = false;
    }
    const { wire, reason } = sendingWire(p, mine ?? (peer ? this.metricsOf(peer) : {}), this.peerAlive(peer), { now: this.now(), maxAgeMs: this.cfg.timers.peerTimeoutMs });
    const inMap = this.maps.getPair(p.ifindex, p.remote.ipv6);
    if (wire === p.wire && inMap?.wire === wire) return;
    this.write(p, wire, reason);
  }

  private write(p: PairState, wire: WireName, reason: string): void {
    const from = p.wire;
    try {
      this.maps.setWire(p.ifindex, p.remote.ipv6, wire, p.round);
    } catch (err) {
      log.error('cannot write steering', { pair: pairKey(p.localCnf, p.remoteCnf), wire, error: (err as Error).message });
      return;
    }
    p.wire = wire;
    p.wireReason = reason;
    if (from !== wire) {
      const ev: SwitchEvent = { at: new Date().toISOString(), pair: pairKey(p.localCnf, p.remoteCnf), peer: p.peerNode, from, to: wire, reason };
      this.switches.push(ev);
      this.switchesTotal++;
      if (this.switches.length > 100) this.switches.shift();
      log.info('switch', { ...ev });
    }
  }

  private dropPair(k: string, why: string, tellPeer = true): void {
    const p = this.pairs.get(k);
    if (!p) return;
    this.pairs.delete(k);
    this.maps.clear(p.ifindex, p.remote.ipv6);
    if (tellPeer) this.peers.get(p.peerNode)?.dropped.add(`${p.localCnf}|${p.remoteCnf}`);
    log.info('pair dropped', { pair: k, peer: p.peerNode, why, wire: p.wire });
  }

  // ---- housekeeping -------------------------------------------------------------------------

  private housekeeping(): void {
    const now = this.now();
    for (const peer of [...this.peers.values()]) {
      if (this.peerAlive(peer)) continue;
      log.warn('peer aged out', { peer: peer.node, silentMs: Math.round(now - peer.lastHeardAny) });
      for (const e of peer.endpoints.values()) this.forgetRemote(peer, e, 'peer silent', true);
      this.peers.delete(peer.node);
    }
    // Replay state of senders no longer heard from: a node whose clock went back (a lower epoch)
    // is accepted again once it has been silent for a peer timeout.
    for (const [node, at] of this.replaySeen) {
      if (this.peers.has(node) || now - at <= this.cfg.timers.peerTimeoutMs) continue;
      this.replaySeen.delete(node);
      this.replay.delete(node);
    }
    for (const [ipv6, r] of this.retained) {
      if (this.remoteOwner.has(ipv6)) {
        this.retained.delete(ipv6);
      } else if (now >= r.until) {
        this.retained.delete(ipv6);
        this.maps.unregisterRemote(r);
        log.info('remote pod unregistered', { ipv4: r.ipv4, ipv6: r.ipv6, why: 'its node stayed silent' });
      }
    }
    for (const [k, p] of [...this.pairs]) {
      const packets = this.maps.pairPackets(p.ifindex, p.remote.ipv6);
      if (packets !== undefined && packets !== p.lastPackets) {
        p.lastPackets = packets;
        p.lastActiveAt = now;
      }
      const peerActive = p.peer?.active && now - p.peer.at < this.cfg.timers.peerTimeoutMs;
      if (now - p.lastActiveAt > this.cfg.timers.pairIdleMs && !peerActive) this.dropPair(k, 'idle');
    }
    // Routes of a previous run whose peer never came back: native.
    if (this.orphans.size && now - this.startedAt > this.cfg.timers.peerTimeoutMs) {
      for (const o of this.orphans.values()) {
        this.maps.clear(o.ifindex, o.remoteIpv6);
        log.info('stale pair from a previous run reverted to native', { ifindex: o.ifindex, remote: o.remoteIpv6, wire: o.wire });
      }
      this.orphans.clear();
    }
  }

  /** Re-reads the plugin's state files (start-up, notifications, periodic healing); the periodic one also re-reads the maps. */
  rescanLocal(resyncMaps = true): void {
    const next = readLocalEndpoints(this.cfg.stateDir, (file, err) => log.warn('unreadable state file', { file, error: String((err as Error).message ?? err) }));
    for (const [cnf, l] of this.local) {
      const n = next.get(cnf);
      if (n && n.ifindex === l.ifindex && n.ipv4 === l.ipv4 && n.ipv6 === l.ipv6) continue;
      for (const [k, p] of [...this.pairs]) if (p.localCnf === cnf) this.dropPair(k, 'local pod gone');
    }
    for (const [cnf, n] of next) {
      const old = this.local.get(cnf);
      if (old && n.policy && JSON.stringify(old.policy) !== JSON.stringify(n.policy)) {
        for (const p of this.pairs.values()) if (p.localCnf === cnf) p.policy = n.policy;
      }
    }
    const changed = next.size !== this.local.size || [...next.keys()].some((k) => !this.local.has(k));
    this.local = next;
    // Re-reading every route and remote is O(N) syscalls: periodic only, not on each ADD/DEL.
    if (resyncMaps) this.maps.resync();
    if (changed && this.timers.length) this.announce();
  }

  /** Handles one control-socket request. */
  control(req: Record<string, unknown>): Record<string, unknown> {
    switch (req.op) {
      case 'status':
        return { ok: true, ...this.status() };
      case 'endpoint':
        this.rescanLocal(false);
        return { ok: true, endpoints: this.local.size };
      default:
        return { ok: false, error: `unknown op ${JSON.stringify(req.op)}` };
    }
  }

  /** Everything `afsteerd status` shows. */
  status(): Record<string, unknown> {
    const now = this.now();
    const r = (x: number) => Math.round(x);
    return {
      node: this.cfg.nodeName,
      epoch: String(this.epoch),
      uptimeMs: r(now),
      addresses: this.addresses,
      port: this.cfg.port,
      endpoints: [...this.local.values()].map((l) => ({ cnf: l.cnf, ifindex: l.ifindex, ipv4: l.ipv4, ipv6: l.ipv6, policy: (l.policy ?? this.cfg.policy).criterion })),
      peers: [...this.peers.values()].map((p) => ({
        node: p.node,
        addresses: p.addresses,
        lastHeardMsAgo: r(now - p.lastHeardAny),
        endpoints: p.endpoints.size,
        active: this.peerActive(p),
        families: Object.fromEntries(FAMILIES.filter((f) => p.paths[f]).map((f) => {
          const path = p.paths[f]!;
          const m = pathMetrics(path);
          return [famName(f), {
            state: path.blackhole ? 'blackhole' : m ? 'up' : 'probing',
            ...(m ?? {}),
            samples: path.outcomes.length, sent: path.sent, received: path.received,
            lastHeardMsAgo: p.lastHeard[f] !== undefined ? r(now - p.lastHeard[f]!) : null,
          }];
        })),
      })),
      pairs: [...this.pairs.values()].map((p) => ({
        local: p.localCnf, remote: p.remoteCnf, peer: p.peerNode, leader: p.leader,
        policy: p.policy.criterion, preferred: agreedPreference(p), wire: p.wire, reason: p.wireReason,
        lastChange: p.selection.lastChange ? { ...p.selection.lastChange, msAgo: r(now - p.selection.lastChange.at) } : null,
        heldDown: p.selection.heldDown && p.selection.heldDown.until > now ? { family: p.selection.heldDown.family, msLeft: r(p.selection.heldDown.until - now) } : null,
        peerDecap: p.peer?.decap ?? false, round: p.round, adopted: p.adopted,
      })),
      switches: this.switches.slice(-20),
      switchesTotal: this.switchesTotal,
      counters: { ...this.counters, sendErrors: this.transport.sendErrors },
      ...(this.etcd ? { etcd: this.etcd.status() } : {}),
    };
  }
}

