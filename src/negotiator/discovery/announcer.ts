/**
 * Discovery: this node's announcement (its control addresses and pods) to the multicast groups,
 * the static peers and every known peer; announcements taken in as peers and their pods, which
 * are registered as remotes (or unregistered when gone).
 */
import { addressOf, FAMILIES, familyName } from '../../net/family';
import { log } from '../../util/log';
import type { Clock } from '../clock';
import type { DaemonConfig } from '../daemon-config';
import type { LocalEndpoint, LocalPods } from '../local/pods';
import type { PairLifecycle } from '../pairs/lifecycle';
import type { PairTable } from '../pairs/pair-table';
import { type AnnounceBase, addAnnouncePart, announcementPayloads } from '../protocol/announce';
import type { Announce, AnnouncedEndpoint } from '../protocol/messages';
import type { Sender, Target } from '../transport/sender';
import type { Source } from '../transport/udp';
import type { Peer, PeerTable } from './peers';
import type { RemoteRegistry } from './remotes';

/** A source of announcement targets besides multicast and static peers (etcd discovery). */
export interface DiscoverySource {
  targets(): Iterable<Target>;
  status(): unknown;
}

/** Capabilities this node announces. */
export const CAPABILITIES = ['encap-4in6', 'encap-6in4', 'probe-v1', 'negotiate-v1', 'prefer-v1'];

/** What discovery is built from. */
export interface DiscoveryDeps {
  cfg: DaemonConfig;
  addresses: { ipv4?: string; ipv6?: string };
  clock: Clock;
  sender: Sender;
  peers: PeerTable;
  pairs: PairTable;
  local: LocalPods;
  remotes: RemoteRegistry;
  lifecycle: PairLifecycle;
  /** More targets to announce to (e.g. from etcd), besides the static and known peers. */
  extraTargets?: () => Iterable<Target>;
  /** Capabilities announced besides CAPABILITIES (protection's dedup-v1; echo-v1 once the reflector runs). */
  extraCapabilities?: () => readonly string[];
  /** Whether a peer may register this pod (trust/claims.ts); refused pods are not registered nor kept. */
  mayRegister?: (node: string, pod: AnnouncedEndpoint) => boolean;
  /** Told when a peer is removed (aged out or dropped). */
  onPeerGone?: (node: string) => void;
}

/** Announcing and taking in announcements. */
export class Discovery {
  private gen = 0;

  private readonly cfg: DaemonConfig;
  private readonly addresses: { ipv4?: string; ipv6?: string };
  private readonly clock: Clock;
  private readonly sender: Sender;
  private readonly peers: PeerTable;
  private readonly pairs: PairTable;
  private readonly local: LocalPods;
  private readonly remotes: RemoteRegistry;
  private readonly lifecycle: PairLifecycle;
  private readonly extraTargets: () => Iterable<Target>;
  private readonly extraCapabilities: () => readonly string[];
  private readonly mayRegister: (node: string, pod: AnnouncedEndpoint) => boolean;
  private readonly onPeerGone: (node: string) => void;

  constructor(deps: DiscoveryDeps) {
    this.cfg = deps.cfg;
    this.addresses = deps.addresses;
    this.clock = deps.clock;
    this.sender = deps.sender;
    this.peers = deps.peers;
    this.pairs = deps.pairs;
    this.local = deps.local;
    this.remotes = deps.remotes;
    this.lifecycle = deps.lifecycle;
    this.extraTargets = deps.extraTargets ?? (() => []);
    this.extraCapabilities = deps.extraCapabilities ?? (() => []);
    this.mayRegister = deps.mayRegister ?? (() => true);
    this.onPeerGone = deps.onPeerGone ?? (() => {});
  }

  /** What the last full announcement said, when it went, and the targets that have it. */
  private lastSaid = '';
  private lastFullAt = -Infinity;
  private readonly told = new Set<string>();

  /**
   * Announces this node (in parts when its pods do not fit one datagram): to every target when
   * what it says changed or the refresh is due (timers.announceRefreshMs, default a quarter of
   * the peer timeout), otherwise only to targets that have not had it yet (a peer or static
   * target just known). Called every announceIntervalMs and on a change of the local pods.
   */
  announce(): void {
    const eps: AnnouncedEndpoint[] = [...this.local.values()]
      .filter((e): e is LocalEndpoint & { ipv4: string; ipv6: string } => Boolean(e.ipv4 && e.ipv6))
      .map((e) => ({ cnf: e.cnf, ipv4: e.ipv4, ipv6: e.ipv6 }));
    const base: AnnounceBase = {
      addresses: this.addresses,
      port: this.cfg.port,
      supported_families: FAMILIES.filter((f) => addressOf(this.addresses, f)).map(familyName),
      capabilities: [...CAPABILITIES, ...this.extraCapabilities()],
    };
    const now = this.clock.now();
    const said = JSON.stringify([base, eps]);
    const full = said !== this.lastSaid || announceRefreshDue(this.lastFullAt, now, this.refreshMs);
    const targets = new Map<string, Target>();
    for (const s of this.cfg.discovery.static) targets.set(`${s.ipv4}|${s.ipv6}`, { addresses: s, port: s.port ?? this.cfg.port });
    for (const t of this.extraTargets()) targets.set(`${t.addresses.ipv4}|${t.addresses.ipv6}`, t);
    for (const p of this.peers.values()) targets.set(`${p.addresses.ipv4}|${p.addresses.ipv6}`, p);
    for (const k of targets.keys()) if (k === `${this.addresses.ipv4}|${this.addresses.ipv6}`) targets.delete(k);
    if (full) {
      // A new generation only for new content: an unchanged refresh is the same bytes, which a
      // receiver takes as a sign of life without parsing it again (repeated()).
      if (said !== this.lastSaid) this.gen++;
      this.lastSaid = said;
      this.lastFullAt = now;
      this.told.clear();
    } else {
      // Known peers that have it are not told again; a target not heard from yet is, each time.
      const known = new Set([...this.peers.values()].map((p) => `${p.addresses.ipv4}|${p.addresses.ipv6}`));
      for (const k of targets.keys()) if (this.told.has(k) && known.has(k)) targets.delete(k);
      if (targets.size === 0) return;
    }
    for (const payload of announcementPayloads(base, eps, this.gen, this.sender.room('announce'))) {
      if (full) this.sender.multicast('announce', payload, Boolean(this.cfg.discovery.multicast));
      for (const t of targets.values()) this.sender.toTarget(t, 'announce', payload, 'announcement target');
    }
    for (const k of targets.keys()) this.told.add(k);
  }

  /** The refresh period of unchanged announcements. */
  get refreshMs(): number {
    return this.cfg.timers.announceRefreshMs ?? Math.max(this.cfg.timers.announceIntervalMs, this.cfg.timers.peerTimeoutMs / 4);
  }

  /**
   * A repeat of the peer's last applied announcement (the same bytes: an unchanged refresh, or
   * its copy over the other family) only says the peer is alive over that family: true when so
   * (nothing parsed, nothing re-applied); false when it must go through receive().
   */
  repeated(node: string, payload: Buffer, src: Source, epoch?: bigint): boolean {
    const peer = this.peers.get(node);
    if (!peer?.lastAnnounce?.equals(payload)) return false;
    // The same bytes from a new boot: the peer restarted, which receive() must see.
    if (epoch !== undefined && peer.bootEpoch !== undefined && peer.bootEpoch !== epoch) return false;
    this.peers.heard(peer, src.family, this.clock.now());
    return true;
  }

  /**
   * Takes in one announcement part from node (payload: its bytes, kept for repeated() when it is
   * the whole list; epoch: the sender's boot epoch). A peer new or restarted (a new epoch) is told
   * about this node at once: its echo reflectors answer only the peers it knows, and a restarted
   * peer knows none until told, so waiting for the next announcement would lose probes.
   */
  receive(node: string, a: Announce, src: Source, payload?: Buffer, epoch?: bigint): void {
    const now = this.clock.now();
    const known = this.peers.get(node);
    const isNew = !known;
    const restarted = known !== undefined && epoch !== undefined && known.bootEpoch !== undefined && known.bootEpoch !== epoch;
    const peer = this.peers.getOrAdd(node, a.port, now, src.family, a.addresses);
    if (epoch !== undefined) peer.bootEpoch = epoch;
    this.peers.heard(peer, src.family, now);
    this.peers.setAddresses(peer, a.addresses, a.port, this.addresses, now);
    peer.capabilities = a.capabilities;
    // A peer just heard may have missed what was sent to its address before it was up: told again at the next announce.
    if (isNew || restarted) this.told.delete(`${peer.addresses.ipv4}|${peer.addresses.ipv6}`);
    if (restarted) this.announce();
    const { state, complete } = addAnnouncePart(peer.assembling, a);
    peer.assembling = state;
    peer.lastAnnounce = undefined;
    if (!complete) return;
    // Kept only when every pod of a one-part list is registered: a refused one is tried again at the next copy.
    if (this.applyPeerEndpoints(peer, complete) && a.parts === 1 && payload) peer.lastAnnounce = Buffer.from(payload);
  }

  /** A peer's complete pod list: new pods registered as remotes, gone ones unregistered; false when the maps refused one. */
  private applyPeerEndpoints(peer: Peer, next: Map<string, AnnouncedEndpoint>): boolean {
    let all = true;
    for (const [cnf, e] of peer.endpoints) {
      const n = next.get(cnf);
      if (n && n.ipv4 === e.ipv4 && n.ipv6 === e.ipv6) continue;
      this.forgetPod(peer, e, 'pod gone from peer', false);
    }
    for (const [cnf, e] of next) {
      const old = peer.endpoints.get(cnf);
      if (old && old.ipv4 === e.ipv4 && old.ipv6 === e.ipv6) continue;
      if (!this.mayRegister(peer.node, e) || !this.remotes.register(peer.node, e)) {
        next.delete(cnf);
        all = false;
        continue;
      }
      this.lifecycle.adoptOrphans(peer, e);
    }
    peer.endpoints = next;
    return all;
  }

  /** A peer's pod is gone (from its list, or with the peer): its pairs dropped; the remote unregistered now, or after the retention. */
  private forgetPod(peer: Peer, e: AnnouncedEndpoint, why: string, retain: boolean): void {
    for (const [k, p] of this.pairs.ofPeer(peer.node)) if (p.remoteCnf === e.cnf) this.lifecycle.drop(k, why, false);
    this.remotes.forget(e, retain, this.clock.now());
  }

  /** Peers silent for a peer timeout: their pods forgotten (retained in the maps), the peers removed. */
  ageOut(): void {
    const now = this.clock.now();
    for (const peer of this.peers.silent(now)) {
      log.warn('peer aged out', { peer: peer.node, silentMs: Math.round(now - peer.lastHeardAny) });
      for (const e of peer.endpoints.values()) this.forgetPod(peer, e, 'peer silent', true);
      this.peers.delete(peer.node);
      this.onPeerGone(peer.node);
    }
  }

  /** Drops a peer at once (its certificate revoked or expired): pairs dropped, pods unregistered now (not retained). */
  dropPeer(node: string, why: string): void {
    const peer = this.peers.get(node);
    if (!peer) return;
    log.warn('peer dropped', { peer: node, why });
    for (const e of peer.endpoints.values()) this.forgetPod(peer, e, why, false);
    this.peers.delete(node);
    this.onPeerGone(node);
  }
}

/** An unchanged announcement is sent again to every target once refreshMs have passed since the last full one. */
export function announceRefreshDue(lastFullAt: number, now: number, refreshMs: number): boolean {
  return now - lastFullAt >= refreshMs;
}
