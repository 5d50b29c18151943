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
import type { DaemonConfig } from './daemon-config';
import { Discovery, type DiscoverySource } from './discovery/announcer';
import { type Peer, PeerTable } from './discovery/peers';
import { RemoteRegistry } from './discovery/remotes';
import { housekeeping } from './housekeeping';
import { LocalPods, type LocalReader } from './local/pods';
import { rescanLocal } from './local/rescan';
import type { DaemonParts } from './ops/daemon-view';
import { pollDemand } from './pairs/demand';
import { PairLifecycle } from './pairs/lifecycle';
import { Negotiation } from './pairs/negotiation';
import { PairTable } from './pairs/pair-table';
import { PinStore } from './pairs/pins';
import { SwitchLog } from './pairs/switch-log';
import { EchoReflector } from './probing/echo-fallback';
import { type PairSeenReader, PairTraffic } from './probing/pair-traffic';
import { ECHO_CAPABILITY, Prober, probeTickMs } from './probing/prober';
import { DEFAULT_DEMAND } from './probing/traffic-proof';
import { Protection } from './protection/protector';
import { echoPortOf } from './protocol/echo';
import { receiveHandlers } from './transport/dispatch';
import { Receiver } from './transport/receiver';
import { Sender } from './transport/sender';
import type { DatagramTransport } from './transport/udp';

export type { DiscoverySource } from './discovery/announcer';
export type { SwitchEvent } from './pairs/switch-log';

/** What a daemon is built from. */
export interface DaemonDeps {
  cfg: DaemonConfig;
  key: Buffer;
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
  /** More announcement targets (etcd discovery, which may start after the daemon: asked at each announcement). */
  discoverySource?: () => DiscoverySource | undefined;
  /** The data plane's per-pair last-sent and last-received times (src/bpf/pair-seen.ts); none: no demand-style probing. */
  pairSeen?: PairSeenReader;
}

/** The parts of one daemon, built in this order by assemble(). */
interface Parts {
  /** The configuration, the clock and the one writer of the steering maps, as injected. */
  cfg: DaemonConfig;
  clock: Clock;
  writer: SteeringWriter;
  /** Datagrams received by type, dropped by reason; notable events. */
  counters: DaemonCounters;
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
  /** The userspace echo reflector (the kernel's answers first where it is attached). */
  echo?: EchoReflector;
}

/** Builds the parts; callbacks between parts are closures over parts built later, called only once all exist. */
function assemble(deps: DaemonDeps, epoch: bigint, echoRunning: () => boolean): Parts {
  const { cfg, clock, writer } = deps;
  const counters = newCounters();
  const sender = new Sender({ key: deps.key, node: cfg.nodeName, epoch, own: deps.addresses, transport: deps.transport, counters });
  const peers = new PeerTable(cfg.timers.peerTimeoutMs);
  const pairs = new PairTable();
  const local = new LocalPods(deps.readLocal);
  const remotes = new RemoteRegistry(writer, cfg.timers.remoteRetentionMs);
  const switches = new SwitchLog();
  const pins = new PinStore(deps.pinsDir, (err) => log.error('operator pins not loaded', { error: err.message }));
  const protection = new Protection(cfg, clock, writer, counters);
  const tickMs = probeTickMs(cfg.probe.activeIntervalMs);
  const traffic = deps.pairSeen && new PairTraffic(writer, deps.pairSeen);
  const prober = new Prober({
    prm: cfg.probe,
    tickMs,
    sender,
    counters,
    sendClock: () => clock.now(),
    ...(traffic && cfg.probe.demandIntervalMs > 0
      ? {
          demand: {
            prm: {
              demandIntervalMs: cfg.probe.demandIntervalMs,
              activeIntervalMs: cfg.probe.activeIntervalMs,
              burstIntervalMs: tickMs,
              burstProbes: cfg.probe.blackholeAfter,
              minUnansweredMs: DEFAULT_DEMAND.minUnansweredMs,
              holdMs: DEFAULT_DEMAND.holdMs,
            },
            trafficOf: (peer: Peer, now: number) => traffic.of(pairs.pairsOfPeer(peer.node), now),
          },
        }
      : {}),
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
  const lifecycle = new PairLifecycle({ ...common, switches, onCreated: (peer) => negotiation.send(peer) });
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
    extraCapabilities: () => [...(echoRunning() ? [ECHO_CAPABILITY] : []), ...protection.capabilities()],
  });
  const handlers = receiveHandlers({ clock, counters, sender, peers, discovery, negotiation, prober });
  const receiver = new Receiver({ key: deps.key, node: cfg.nodeName, counters, handlers, now: () => clock.now() });
  const echo = deps.echoTransport && new EchoReflector(deps.echoTransport, echoPortOf(cfg.port));
  const parts = { cfg, clock, writer, counters, sender, peers, pairs, local, remotes, switches, pins, prober, protection };
  return { ...parts, lifecycle, negotiation, discovery, receiver, echo };
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
    await this.deps.transport.start(this.deps.addresses, mc ? mc : undefined, (b, src, agoMs) => p.receiver.receive(b, src, agoMs));
    if (p.echo) {
      await p.echo.start(this.deps.addresses);
      this.echoRunning = true;
    }
    const t = cfg.timers;
    this.every(p.prober.tickMs, () => {
      // A polled transport hands over what came in since the last tick first: replies count before probes expire.
      this.deps.transport.poll?.();
      const changed = p.prober.tick(p.peers.values(), (peer) => p.pairs.peerHasPairs(peer.node), clock.now());
      for (const peer of changed) p.negotiation.evaluatePeer(peer);
    });
    this.every(t.evalIntervalMs, () => p.negotiation.evaluateAll());
    this.every(t.demandPollMs, () => pollDemand(p));
    this.every(t.announceIntervalMs, () => p.discovery.announce());
    this.every(Math.min(1000, t.peerTimeoutMs / 4), () => housekeeping(p, this.startedAt));
    this.every(t.rescanMs, () => this.rescanLocal());
    p.discovery.announce();
    log.info('afsteerd started', {
      node: cfg.nodeName,
      epoch: String(this.epoch),
      addresses: this.deps.addresses,
      port: cfg.port,
      endpoints: p.local.size,
      adoptedRoutes: adopted,
      multicast: Boolean(mc),
      staticPeers: cfg.discovery.static.length,
    });
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
    this.deps.writer.close();
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
    const { peers, pairs, prober, switches, counters, pins } = this.p;
    return { cfg, clock, peers, pairs, prober, switches, counters, sendErrors: transport.sendErrors, pins };
  }

  /** Everything `afsteerd status` shows. */
  status(): StatusReport {
    const { cfg, clock, transport, addresses } = this.deps;
    const p = this.p;
    return buildStatus({ ...p, cfg, epoch: this.epoch, addresses, sendErrors: transport.sendErrors }, clock.now(), this.startedAt, {
      etcd: this.deps.discoverySource?.()?.status(),
      pins: p.pins.list(),
    });
  }
}
