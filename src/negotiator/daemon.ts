/**
 * afsteerd: the per-node negotiator, wired together — timers and wiring only. The parts, each in
 * its own file: receiver.ts (authenticate → replay window → dispatch), discovery.ts
 * (announcements → peers.ts and remotes.ts), prober.ts (probes per peer and family),
 * negotiation.ts (pair messages, the leader's evaluation), pair-lifecycle.ts (create, adopt,
 * reconcile, drop), protection.ts (protected pairs: mode, suspicion, dedup window, duplication),
 * housekeeping below, status.ts. Decisions live in pure modules (protocol/,
 * probe/path.ts, policy.ts, pair.ts, rules.ts). The transport, the clock, the map writer and the
 * local-pod reader are injected, so tests can run several daemons in one process.
 */
import type { SteeringWriter } from '../bpf/steering-writer';
import type { NodeIdentity } from '../identity/identity-files';
import type { RevocationList } from '../identity/revocation';
import { canonical } from '../net/ip';
import { effectivePolicy } from '../policy/schema';
import { log } from '../util/log';
import type { Cancel, Clock } from './clock';
import { buildStatus, type StatusReport } from './control/status-report';
import { count, type DaemonCounters, newCounters } from './counters';
import { authModeOf, type DaemonConfig } from './daemon-config';
import { Discovery } from './discovery/announcer';
import type { RecordCodec } from './discovery/book';
import { PeerTable } from './discovery/peers';
import { RemoteRegistry } from './discovery/remotes';
import { LocalPods, type LocalReader } from './local/pods';
import { PairLifecycle } from './pairs/lifecycle';
import { Negotiation } from './pairs/negotiation';
import { pairKey } from './pairs/pair';
import { PairTable } from './pairs/pair-table';
import { PinStore, preferTarget } from './pairs/pins';
import { SwitchLog } from './pairs/switch-log';
import { EchoReflector } from './probing/echo-fallback';
import { ECHO_CAPABILITY, Prober } from './probing/prober';
import { Protection } from './protection/protector';
import { decodeEcho, echoPortOf } from './protocol/echo';
import { isIdle, probeTickMs } from './rules';
import { Receiver } from './transport/receiver';
import { Sender, type Target } from './transport/sender';
import type { DatagramTransport } from './transport/udp';
import { IDENTITY_CAPABILITY } from './trust/frame-auth';
import { Trust } from './trust/trust';

export type { SwitchEvent } from './pairs/switch-log';

/** A source of announcement targets (etcd discovery). */
export interface DiscoverySource {
  targets(): Iterable<Target>;
  status(): unknown;
}

/** What a daemon is built from. */
export interface DaemonDeps {
  cfg: DaemonConfig;
  /** The cluster key (auth cluster-key or both). */
  key?: Buffer;
  /** This node's identity (auth identity or both). */
  identity?: NodeIdentity;
  /** The authority's revocation list when it changed (file, etcd); undefined: unchanged or none. */
  readRevocations?: () => RevocationList | undefined;
  /** Wall clock in ms since 1970, for certificate validity (default Date.now). */
  wallNow?: () => number;
  /** This node's control addresses. */
  addresses: { ipv4?: string; ipv6?: string };
  writer: SteeringWriter;
  transport: DatagramTransport;
  clock: Clock;
  /** Reads this node's pods (the plugin's state files). */
  readLocal: LocalReader;
  /** This boot's epoch (default: the wall clock in ms). */
  epoch?: bigint;
  /** Where operator pins persist (the stateDir); none: kept in memory only. */
  pinsDir?: string;
  /** A transport on the echo port (port + 1) for the userspace echo reflector; none: this node does not announce echo-v1. */
  echoTransport?: DatagramTransport;
}

/** Read-only views of a daemon's parts (metrics, history, the page). */
export interface DaemonParts {
  cfg: DaemonConfig;
  clock: Clock;
  peers: PeerTable;
  pairs: PairTable;
  prober: Prober;
  switches: SwitchLog;
  counters: DaemonCounters;
  sendErrors: { 4: number; 6: number };
  pins: PinStore;
  trust: Trust;
}

/** The running negotiator of one node. */
export class Daemon {
  private readonly cfg: DaemonConfig;
  private readonly clock: Clock;
  private readonly writer: SteeringWriter;
  private readonly transport: DatagramTransport;
  private readonly epoch: bigint;
  private readonly startedAt: number;
  private readonly cancels: Cancel[] = [];
  /** Datagrams received by type, dropped by reason; events. */
  readonly counters: DaemonCounters = newCounters();
  private readonly peers: PeerTable;
  private readonly pairs = new PairTable();
  private readonly local: LocalPods;
  private readonly switches = new SwitchLog();
  private readonly remotes: RemoteRegistry;
  private readonly prober: Prober;
  private readonly protection: Protection;
  private readonly lifecycle: PairLifecycle;
  private readonly negotiation: Negotiation;
  private readonly discovery: Discovery;
  private readonly receiver: Receiver;
  private discoveryStatus?: () => unknown;
  private readonly pins: PinStore;
  private readonly echo?: EchoReflector;
  private readonly trust: Trust;
  private lastResyncAt = -Infinity;

  constructor(private readonly deps: DaemonDeps) {
    const { cfg, clock, writer, transport } = deps;
    this.cfg = cfg;
    this.clock = clock;
    this.writer = writer;
    this.transport = transport;
    this.epoch = deps.epoch ?? BigInt(Date.now());
    this.startedAt = clock.now();
    this.trust = new Trust({
      mode: authModeOf(cfg),
      node: cfg.nodeName,
      epoch: this.epoch,
      key: deps.key,
      identity: deps.identity,
      counters: this.counters,
      wallNow: deps.wallNow ?? Date.now,
      now: () => clock.now(),
      readRevocations: deps.readRevocations,
    });
    const sender = new Sender(this.trust.auth, this.epoch, deps.addresses, transport, this.counters);
    this.peers = new PeerTable(cfg.timers.peerTimeoutMs);
    this.local = new LocalPods(deps.readLocal);
    this.remotes = new RemoteRegistry(writer, cfg.timers.remoteRetentionMs);
    this.prober = new Prober(cfg.probe, probeTickMs(cfg.probe.activeIntervalMs), sender, this.counters);
    this.protection = new Protection(cfg, clock, writer, this.counters);
    this.prober.onProbeLost = (peer) => {
      this.protection.review(
        peer,
        this.pairs.ofPeer(peer.node).map(([, p]) => p),
      );
      // Duplication just started (or stopped): the peer is told now, not at the next evaluation
      // (evalIntervalMs): its copies — a stream's ACKs — follow at once (protect-rules, peerStartedTrouble).
      if (peer.negotiateDue) this.negotiation.evaluatePeer(peer);
    };
    this.lifecycle = new PairLifecycle(cfg, clock, writer, this.pairs, this.peers, this.local, this.prober, this.switches, this.protection);
    this.negotiation = new Negotiation(
      cfg,
      clock,
      sender,
      writer,
      this.peers,
      this.pairs,
      this.local,
      this.lifecycle,
      this.prober,
      this.counters,
      this.protection,
    );
    this.lifecycle.onCreated = (peer) => this.negotiation.send(peer);
    this.pins = new PinStore(deps.pinsDir, (err) => log.error('operator pins not loaded', { error: err.message }));
    this.negotiation.pins = this.pins;
    this.echo = deps.echoTransport && new EchoReflector(deps.echoTransport, echoPortOf(cfg.port));
    this.discovery = new Discovery(cfg, deps.addresses, clock, sender, this.peers, this.pairs, this.local, this.remotes, this.lifecycle);
    this.discovery.extraCapabilities = this.protection.capabilities();
    if (this.trust.mode !== 'cluster-key') this.discovery.capabilities.push(IDENTITY_CAPABILITY);
    this.discovery.mayRegister = (node, pod) => this.trust.mayRegister(node, pod);
    this.discovery.onPeerGone = (node) => this.trust.forget(node);
    this.receiver = new Receiver(
      this.trust.auth,
      cfg.nodeName,
      this.counters,
      {
        announce: (f, a, src) => {
          // A certified node announces only the control addresses its certificate names.
          if (!this.trust.addressesCertified(f.cert, a.addresses)) return 'uncertified-address';
          this.discovery.receive(f.node, a, src, f.payload);
          return true;
        },
        announceRepeat: (f, src) => {
          const repeat = this.discovery.repeated(f.node, f.payload, src);
          if (repeat) count(this.counters.events, 'announce-repeat');
          return repeat;
        },
        negotiate: (f, m, src) => {
          const peer = this.peers.get(f.node);
          if (!peer) return 'unknown-peer';
          this.peers.heard(peer, src.family, clock.now());
          this.negotiation.receive(peer, m, f.epoch);
          return true;
        },
        probe: (f, p, src) => {
          const peer = this.peers.get(f.node);
          if (peer) this.peers.heard(peer, src.family, clock.now());
          // Reflect at once, over the family it came in on, to where it came from.
          sender.to(src.family, src.address, src.port, 'probeReply', f.payload, f.node);
          return true;
        },
        echo: (b, src) => {
          const p = decodeEcho(b);
          if (!p || p.family !== src.family) return false;
          const peer = this.peers.byAddress(src.family, src.address);
          if (!peer) return 'unknown-peer';
          // From the peer's echo port, with this path's nonce and an id in flight (prober.reply).
          if (src.port !== echoPortOf(peer.port) || !peer.paths[src.family]) return false;
          const r = this.prober.reply(peer, src.family, p, clock.now());
          if (r === 'foreign') return false;
          if (r === 'recovered') this.negotiation.evaluatePeer(peer);
          return true;
        },
        probeReply: (f, p, src) => {
          const peer = this.peers.get(f.node);
          if (!peer) return 'unknown-peer';
          if (!peer.paths[src.family]) return true;
          const r = this.prober.reply(peer, src.family, p, clock.now());
          if (r === 'foreign') return false;
          this.peers.heard(peer, src.family, clock.now());
          if (r === 'recovered') this.negotiation.evaluatePeer(peer);
          return true;
        },
      },
      () => clock.now(),
    );
  }

  /** A discovery source besides multicast and static peers (etcd): its targets are announced to at each announcement; its status is shown. */
  addDiscoverySource(src: DiscoverySource): void {
    this.discovery.extraTargets = () => src.targets();
    this.discoveryStatus = () => src.status();
  }

  /** How this node writes and judges etcd records (by its auth mode). */
  recordCodec(): RecordCodec {
    return this.trust.recordCodec();
  }

  /** The authority's revocation list as etcd holds it (armored text): taken at the next housekeeping tick when valid. */
  offerRevocations(value: Buffer): void {
    this.trust.offerRevocations(value);
  }

  /** Starts the transport and timers; adopts the steering found in the maps. */
  async start(): Promise<void> {
    this.rescanLocal();
    // Remotes a previous run registered stay (their nodes' steering may still encapsulate) until
    // claimed by an announcement or the retention runs out.
    this.remotes.retainAll(this.clock.now());
    const adopted = this.lifecycle.loadOrphans();
    this.protection.applyBudget();
    const mc = this.cfg.discovery.multicast;
    await this.transport.start(this.deps.addresses, mc ? mc : undefined, (b, src) => this.receiver.receive(b, src));
    if (this.echo) {
      await this.echo.start(this.deps.addresses);
      this.discovery.capabilities.push(ECHO_CAPABILITY);
    }
    const every = (ms: number, fn: () => void) => {
      this.cancels.push(
        this.clock.every(ms, () => {
          try {
            fn();
          } catch (err) {
            log.error('internal error', { error: String((err as Error).stack ?? err) });
          }
        }),
      );
    };
    const t = this.cfg.timers;
    every(this.prober.tickMs, () => this.probeTick());
    every(t.evalIntervalMs, () => this.negotiation.evaluateAll());
    every(t.demandPollMs, () => this.pollDemand());
    every(t.announceIntervalMs, () => this.discovery.announce());
    every(Math.min(1000, t.peerTimeoutMs / 4), () => this.housekeeping());
    every(t.rescanMs, () => this.rescanLocal());
    this.discovery.announce();
    log.info('afsteerd started', {
      node: this.cfg.nodeName,
      epoch: String(this.epoch),
      addresses: this.deps.addresses,
      port: this.cfg.port,
      endpoints: this.local.size,
      adoptedRoutes: adopted,
      multicast: Boolean(mc),
      staticPeers: this.cfg.discovery.static.length,
    });
  }

  /** Stops timers and the transport; the steering in the maps stays as it is. */
  stop(): void {
    for (const c of this.cancels.splice(0)) c();
    this.transport.close();
    this.echo?.close();
    this.writer.close();
  }

  private probeTick(): void {
    const changed = this.prober.tick(this.peers.values(), (peer) => this.pairs.peerHasPairs(peer.node), this.clock.now());
    for (const peer of changed) this.negotiation.evaluatePeer(peer);
  }

  /** First packets of pods toward registered remote pods without a route: new pairs. */
  private pollDemand(): void {
    for (const d of this.writer.drainDemand()) {
      const l = this.local.byHostIfindex(d.ifindex);
      const owner = this.remotes.ownerOf(canonical(d.address));
      const peer = owner && this.peers.get(owner.node);
      const e = peer?.endpoints.get(owner!.cnf);
      if (!l || !peer || !e || !l.ipv4 || !l.ipv6) continue;
      if (this.pairs.has(pairKey(l.cnf, e.cnf))) continue;
      this.lifecycle.create(l, peer, e, 'first packet');
    }
  }

  private housekeeping(): void {
    const now = this.clock.now();
    const t = this.cfg.timers;
    this.discovery.ageOut();
    // Revoked or expired certificates: their nodes go now, pods unregistered (not retained).
    for (const { node, why } of this.trust.tick()) this.discovery.dropPeer(node, why);
    this.receiver.prune((node) => this.peers.has(node), now, t.peerTimeoutMs);
    this.remotes.expire(now);
    // Another writer (afsteer steer, a DEL) changed the maps: the index follows before anything reads it.
    try {
      this.writer.refresh();
    } catch (err) {
      log.error('cannot refresh the steering index', { error: (err as Error).message });
    }
    for (const [k, p] of [...this.pairs.entries()]) {
      const packets = this.writer.pairPackets(p.ifindex, p.remote.ipv6);
      if (packets !== undefined && packets !== p.lastPackets) {
        p.lastPackets = packets;
        p.lastActiveAt = now;
      }
      if (isIdle(p, now, t.pairIdleMs, t.peerTimeoutMs)) this.lifecycle.drop(k, 'idle');
    }
    this.lifecycle.expireOrphans(this.startedAt);
  }

  /** Re-reads the plugin's state files (start-up, notifications, periodic healing); the periodic one also re-reads the maps. */
  rescanLocal(resyncMaps = true): void {
    const change = this.local.rescan();
    for (const cnf of change.gone) {
      for (const [k, p] of [...this.pairs.entries()]) if (p.localCnf === cnf) this.lifecycle.drop(k, 'local pod gone');
    }
    for (const n of change.policyChanged) {
      for (const p of this.pairs.values()) if (p.localCnf === n.cnf) p.policy = effectivePolicy(n.policy, this.cfg.policy);
    }
    // Re-reading every route and remote is O(N) syscalls (20,000 for 1,000 peers of 10 pods): a
    // healer against writes outside the writer lock, once per mapsResyncMs, never on an ADD/DEL.
    // Writers that take the lock are followed at once (writer.refresh in housekeeping).
    const now = this.clock.now();
    if (resyncMaps && now - this.lastResyncAt >= this.cfg.timers.mapsResyncMs) {
      this.lastResyncAt = now;
      this.writer.resync();
    }
    if (change.membershipChanged && this.cancels.length) this.discovery.announce();
  }

  /** Handles one control-socket request. */
  control(req: Record<string, unknown>): Record<string, unknown> {
    switch (req.op) {
      case 'status':
        return { ok: true, ...this.status() };
      case 'prefer':
        return this.prefer(String(req.target ?? ''), String(req.family ?? ''));
      case 'endpoint':
        this.rescanLocal(false);
        return { ok: true, endpoints: this.local.size };
      default:
        return { ok: false, error: `unknown op ${JSON.stringify(req.op)}` };
    }
  }

  /** Read-only views of the parts, for metrics, history and the page (observe.ts). */
  parts(): DaemonParts {
    return {
      cfg: this.cfg,
      clock: this.clock,
      peers: this.peers,
      pairs: this.pairs,
      prober: this.prober,
      switches: this.switches,
      counters: this.counters,
      sendErrors: this.transport.sendErrors,
      pins: this.pins,
      trust: this.trust,
    };
  }

  /** `afsteerd prefer`: pins a family for a peer node or a CNF ('auto' clears it); applied and told to the peers at once. */
  prefer(target: string, family: string): Record<string, unknown> {
    const fam = family === 'ipv4' ? 'IPv4' : family === 'ipv6' ? 'IPv6' : family === 'auto' ? 'auto' : undefined;
    if (!fam) return { ok: false, error: `family must be ipv4, ipv6 or auto, not ${JSON.stringify(family)}` };
    const kind = preferTarget(target, this.peers, this.local, this.pins);
    if (!kind) return { ok: false, error: `${JSON.stringify(target)} is neither a known peer node nor a known CNF id` };
    try {
      this.pins.set(kind, target, fam);
    } catch (err) {
      return { ok: false, error: `cannot persist the pin: ${(err as Error).message}` };
    }
    log.info('operator pin', { target, kind, family: fam });
    for (const peer of this.peers.values()) {
      this.negotiation.evaluatePeer(peer);
      this.negotiation.send(peer);
    }
    return { ok: true, target, kind, family: fam, pairs: [...this.pairs.values()].filter((p) => p.pin).length };
  }

  /** Everything `afsteerd status` shows. */
  status(): StatusReport {
    return buildStatus(
      {
        cfg: this.cfg,
        epoch: this.epoch,
        addresses: this.deps.addresses,
        local: this.local,
        peers: this.peers,
        pairs: this.pairs,
        switches: this.switches,
        counters: this.counters,
        sendErrors: this.transport.sendErrors,
        protection: this.protection,
      },
      this.clock.now(),
      this.startedAt,
      { etcd: this.discoveryStatus?.(), pins: this.pins.list(), identity: this.trust.status() },
    );
  }
}
