/**
 * afsteerd's parts, listed once in the order they are built, each with what it is for (as
 * cilium's daemon/cmd/cells.go lists the agent's cells): each gets its dependencies in one object,
 * nothing is set after construction; callbacks between parts are closures over parts built later.
 * daemon.ts runs them (timers, start, stop, status).
 */
import type { SteeringWriter } from '../bpf/steering-writer';
import { log } from '../util/log';
import type { Clock } from './clock';
import { type DaemonCounters, newCounters } from './counters';
import { authModeOf, type DaemonConfig } from './daemon-config';
import type { DaemonDeps } from './daemon-deps';
import { Discovery } from './discovery/announcer';
import { type Peer, PeerTable } from './discovery/peers';
import { RemoteRegistry } from './discovery/remotes';
import { LocalPods } from './local/pods';
import { PairLifecycle } from './pairs/lifecycle';
import { Negotiation } from './pairs/negotiation';
import { PairTable } from './pairs/pair-table';
import { PinStore } from './pairs/pins';
import { SwitchLog } from './pairs/switch-log';
import { EchoPeerList } from './probing/echo-allow';
import { EchoReflector } from './probing/echo-fallback';
import { PairTraffic } from './probing/pair-traffic';
import { ECHO_CAPABILITY, Prober, probeTickMs } from './probing/prober';
import { DEFAULT_DEMAND } from './probing/traffic-proof';
import { Protection } from './protection/protector';
import { echoPortOf } from './protocol/echo';
import { receiveHandlers } from './transport/dispatch';
import { Receiver } from './transport/receiver';
import { Sender } from './transport/sender';
import { IDENTITY_CAPABILITY } from './trust/frame-auth';
import { Trust } from './trust/trust';

/** The parts of one daemon, built in this order by assemble(). */
export interface Parts {
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
export function assemble(deps: DaemonDeps, epoch: bigint, echoRunning: () => boolean): Parts {
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
  const tickMs = probeTickMs(cfg.probe.activeIntervalMs);
  // Demand-style probing (probing/traffic-proof.ts) where the data plane notes each pair's traffic.
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
