/**
 * afsteerd, wired: the table of contents of the daemon. Its parts are listed once, in the order
 * they are built, each with what it is for (as cilium's daemon/cmd/cells.go lists the agent's
 * cells); each gets its dependencies in one object, nothing is set after construction. The
 * decisions live in pure modules (protocol/, probing/probe-path.ts, pairs/selection.ts,
 * pairs/pair.ts, protection/protect-rules.ts). The transport, the clock, the map writer and the
 * local-pod reader are injected, so tests run several daemons in one process.
 */
import type { SteeringWriter } from '../bpf/steering-writer';
import { log } from '../util/log';
import { type Cancel, type Clock, everyGuarded } from './clock';
import { handleRequest } from './control/operator-requests';
import { buildStatus, type StatusReport } from './control/status-report';
import { type DaemonCounters, newCounters } from './counters';
import { authModeOf, type DaemonConfig } from './daemon-config';
import type { DaemonDeps } from './daemon-deps';
import { Discovery } from './discovery/announcer';
import { PeerTable } from './discovery/peers';
import { RemoteRegistry } from './discovery/remotes';
import { housekeeping } from './housekeeping';
import { LocalPods } from './local/pods';
import { rescanLocal } from './local/rescan';
import { type DaemonParts, echoView } from './ops/daemon-view';
import { pollDemand } from './pairs/demand';
import { PairLifecycle } from './pairs/lifecycle';
import { Negotiation } from './pairs/negotiation';
import { PairTable } from './pairs/pair-table';
import { PinStore } from './pairs/pins';
import { SwitchLog } from './pairs/switch-log';
import { EchoPeerList } from './probing/echo-allow';
import { EchoReflector } from './probing/echo-fallback';
import { ECHO_CAPABILITY, Prober, probeTickMs } from './probing/prober';
import { Protection } from './protection/protector';
import { echoPortOf } from './protocol/echo';
import { receiveHandlers } from './transport/dispatch';
import { Receiver } from './transport/receiver';
import { Sender } from './transport/sender';
import { IDENTITY_CAPABILITY } from './trust/frame-auth';
import { Trust } from './trust/trust';

export type { DaemonDeps } from './daemon-deps';
export type { DiscoverySource } from './discovery/announcer';
export type { SwitchEvent } from './pairs/switch-log';

/** The parts of one daemon, built in this order by assemble(). */
interface Parts {
  /** The configuration, the clock and the one writer of the steering maps, as injected. */
  cfg: DaemonConfig;
  clock: Clock;
  writer: SteeringWriter;
  /** Datagrams received by type, dropped by reason; notable events. */
  counters: DaemonCounters;
  /** Who may speak for whom: frame authentication (cluster key, pairwise keys), certificates, claims, revocation. */
  trust: Trust;
  /** Frames, authenticates and sends every datagram (this boot's epoch, a fresh counter). */
  sender: Sender;
  /** Nodes heard from: addresses, pods, probe paths, age. */
  peers: PeerTable;
  /** Every negotiated pair, indexed by peer. */
  pairs: PairTable;
  /** This node's pods, from the plugin's state files. */
  local: LocalPods;
  /** Remote pods registered in the maps, with their owners and retention. */
  remotes: RemoteRegistry;
  /** The last switches of this node's sending wires. */
  switches: SwitchLog;
  /** Operator pins (`afsteerd prefer`), persisted in the stateDir. */
  pins: PinStore;
  /** Probes per peer and family; blackhole detection. */
  prober: Prober;
  /** Protected pairs: agreed mode, suspicion, duplication budget. */
  protection: Protection;
  /** A pair's life: created, adopted, reconciled, dropped; every map write of a pair. */
  lifecycle: PairLifecycle;
  /** Pair messages in and out; the leader's evaluation. */
  negotiation: Negotiation;
  /** This node's announcements out; peers' announcements in. */
  discovery: Discovery;
  /** Authenticate → replay window → dispatch (transport/dispatch.ts). */
  receiver: Receiver;
  /** The echo reflectors' allow-list: the peers' control addresses, following the peer table. */
  echoPeers: EchoPeerList;
  /** The userspace echo reflector (the kernel's answers first where it is attached); known peers only. */
  echo?: EchoReflector;
}

/** Builds the parts; callbacks between parts are closures over parts built later, called only once all exist. */
function assemble(deps: DaemonDeps, epoch: bigint, echoRunning: () => boolean): Parts {
  const { cfg, clock, writer } = deps;
  const counters = newCounters();
  const { key, identity, readRevocations } = deps;
  const now = () => clock.now();
  const wallNow = deps.wallNow ?? Date.now;
  const trust = new Trust({ mode: authModeOf(cfg), node: cfg.nodeName, epoch, key, identity, counters, wallNow, now, readRevocations });
  const sender = new Sender({ auth: trust.auth, epoch, own: deps.addresses, transport: deps.transport, counters });
  const echoPeers = new EchoPeerList(deps.echoKernel?.list);
  const peers = new PeerTable(cfg.timers.peerTimeoutMs, (address, known) => echoPeers.set(address, known));
  const pairs = new PairTable();
  const local = new LocalPods(deps.readLocal);
  const remotes = new RemoteRegistry(writer, cfg.timers.remoteRetentionMs, deps.network?.remoteClaimed);
  const switches = new SwitchLog();
  const pins = new PinStore(deps.pinsDir, (err) => log.error('operator pins not loaded', { error: err.message }));
  const protection = new Protection(cfg, clock, writer, counters);
  const prober = new Prober({
    prm: cfg.probe,
    tickMs: probeTickMs(cfg.probe.activeIntervalMs),
    sender,
    counters,
    onProbeLost: (peer) => {
      protection.review(
        peer,
        pairs.ofPeer(peer.node).map(([, pair]) => pair),
      );
      // Duplication just started (or stopped): the peer is told now, not at the next evaluation
      // (evalIntervalMs): its copies — a stream's ACKs — follow at once (protect-rules, peerStartedTrouble).
      if (peer.negotiateDue) negotiation.evaluatePeer(peer);
    },
  });
  const common = { cfg, clock, writer, pairs, peers, local, prober, protection };
  const lifecycle = new PairLifecycle({
    ...common,
    switches,
    onCreated: (peer) => negotiation.send(peer),
    ...(deps.network ? { ownsEndpoint: deps.network.ownsEndpoint } : {}),
  });
  const negotiation = new Negotiation({ ...common, sender, lifecycle, counters, pins });
  const discovery = new Discovery({
    cfg,
    clock,
    sender,
    peers,
    pairs,
    local,
    remotes,
    lifecycle,
    addresses: deps.addresses,
    extraTargets: () => deps.discoverySource?.()?.targets() ?? [],
    extraCapabilities: () => [
      ...(echoRunning() ? [ECHO_CAPABILITY] : []),
      ...protection.capabilities(),
      ...(trust.mode !== 'cluster-key' ? [IDENTITY_CAPABILITY] : []),
    ],
    mayRegister: (node, pod) => trust.mayRegister(node, pod),
    onPeerGone: (node) => trust.forget(node),
  });
  const handlers = receiveHandlers({ clock, counters, sender, peers, discovery, negotiation, prober, trust });
  const receiver = new Receiver({ auth: trust.auth, node: cfg.nodeName, counters, handlers, now });
  const echo = deps.echoTransport && new EchoReflector(deps.echoTransport, echoPortOf(cfg.port), echoPeers, () => clock.now());
  const parts = { cfg, clock, writer, counters, trust, sender, peers, pairs, local, remotes, switches, pins, prober, protection };
  return { ...parts, lifecycle, negotiation, discovery, receiver, echoPeers, echo };
}

/** The running negotiator of one node. */
export class Daemon {
  private readonly p: Parts;
  private readonly epoch: bigint;
  private readonly startedAt: number;
  private readonly cancels: Cancel[] = [];
  private echoRunning = false;
  private readonly resync = { lastAt: -Infinity };

  constructor(private readonly deps: DaemonDeps) {
    this.epoch = deps.epoch ?? BigInt(Date.now());
    this.startedAt = deps.clock.now();
    this.p = assemble(deps, this.epoch, () => this.echoRunning);
  }

  /** Datagrams received by type, dropped by reason; events. */
  get counters(): DaemonCounters {
    return this.p.counters;
  }

  /** Who may speak for whom (etcd discovery writes and judges its records with it, and takes revocations into it). */
  get trust(): Trust {
    return this.p.trust;
  }

  /** Starts the transport and timers; adopts the steering found in the maps. */
  async start(): Promise<void> {
    const { cfg, clock } = this.deps;
    const p = this.p;
    this.rescanLocal();
    // Remotes a previous run registered stay (their nodes' steering may still encapsulate) until
    // claimed by an announcement or the retention runs out.
    p.remotes.retainAll(clock.now());
    const adopted = p.lifecycle.loadOrphans();
    p.protection.applyBudget();
    const mc = cfg.discovery.multicast;
    await this.deps.transport.start(this.deps.addresses, mc ? mc : undefined, (b, src) => p.receiver.receive(b, src));
    if (p.echo) {
      await p.echo.start(this.deps.addresses);
      this.echoRunning = true;
    }
    const t = cfg.timers;
    this.every(p.prober.tickMs, () => {
      const changed = p.prober.tick(p.peers.values(), (peer) => p.pairs.peerHasPairs(peer.node), clock.now());
      for (const peer of changed) p.negotiation.evaluatePeer(peer);
    });
    this.every(t.evalIntervalMs, () => p.negotiation.evaluateAll());
    this.every(t.demandPollMs, () => pollDemand({ ...p, ...(this.deps.network ? { drainDemand: this.deps.network.drainDemand } : {}) }));
    this.every(t.announceIntervalMs, () => p.discovery.announce());
    this.every(Math.min(1000, t.peerTimeoutMs / 4), () => housekeeping(p, this.startedAt));
    this.every(t.rescanMs, () => this.rescanLocal());
    p.discovery.announce();
    const n = this.deps.network;
    const said = { node: cfg.nodeName, epoch: String(this.epoch), addresses: this.deps.addresses, port: cfg.port };
    const found = { endpoints: p.local.size, adoptedRoutes: adopted, multicast: Boolean(mc), staticPeers: cfg.discovery.static.length };
    const which = n ? { network: n.name ?? '(primary)', measuredBy: n.measuredBy } : {};
    log.info(n && !n.primary ? 'network negotiator started' : 'afsteerd started', { ...said, ...which, ...found });
  }

  /** A repeating timer whose errors are logged, never thrown into the clock. */
  private every(ms: number, fn: () => void): void {
    this.cancels.push(everyGuarded(this.deps.clock, ms, fn));
  }

  /** Stops timers and the transport; the steering in the maps stays as it is. */
  stop(): void {
    for (const c of this.cancels.splice(0)) c();
    this.deps.transport.close();
    this.p.echo?.close();
    this.p.echoPeers.close();
    if (!this.deps.network) this.deps.writer.close();
  }

  /** Remote addresses this daemon registered for its peers' pods. */
  ownsRemote(address: string): boolean {
    return this.p.remotes.ownerOf(address) !== undefined;
  }

  /** True when this daemon's pods include the local endpoint with this key. */
  hasLocalEndpoint(ifindex: number): boolean {
    return this.p.local.byHostIfindex(ifindex) !== undefined;
  }

  /** Re-reads the plugin's state files (start-up, notifications, periodic healing); the periodic one also re-reads the maps. */
  rescanLocal(resyncMaps = true): void {
    rescanLocal(this.p, this.resync, resyncMaps, this.cancels.length > 0);
  }

  /** Handles one control-socket request (control/operator-requests.ts). */
  control(req: Record<string, unknown>): Record<string, unknown> {
    return handleRequest({ ...this.p, status: () => this.status(), rescanLocal: () => this.rescanLocal(false) }, req);
  }

  /** Read-only views of the parts, for metrics, history and the page (ops/). */
  parts(): DaemonParts {
    const { cfg, clock, transport } = this.deps;
    const { peers, pairs, prober, switches, counters, pins, echoPeers, echo } = this.p;
    const views = { echo: () => echoView(echoPeers, this.deps.echoKernel, echo), conntrack: () => this.deps.writer.conntrackStats() };
    return { cfg, clock, peers, pairs, prober, switches, counters, sendErrors: transport.sendErrors, pins, trust: this.p.trust, ...views };
  }

  /** Everything `afsteerd status` shows. */
  status(): StatusReport {
    const { cfg, clock, transport, addresses } = this.deps;
    const n = this.deps.network;
    const network = n && {
      ...(n.name !== undefined ? { name: n.name } : {}),
      primary: n.primary,
      measuredBy: n.measuredBy,
      ...(n.measuredBy === 'primary'
        ? {
            note: "no addresses of its own on this network: probed and negotiated over the primary network's addresses (the primary's measurements)",
          }
        : {}),
    };
    const extra = {
      etcd: this.deps.discoverySource?.()?.status(),
      pins: this.p.pins.list(),
      identity: this.p.trust.status(),
      ...(network ? { network } : {}),
    };
    const sources = { ...this.p, cfg, epoch: this.epoch, addresses, sendErrors: transport.sendErrors };
    return buildStatus(sources, clock.now(), this.startedAt, extra);
  }
}
