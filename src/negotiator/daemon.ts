/**
 * afsteerd, running: the parts (parts.ts, each built from one object of its dependencies) started,
 * driven by timers, stopped, and read for status and operators. The decisions live in pure
 * modules (protocol/, probing/probe-path.ts, pairs/selection.ts, pairs/pair.ts,
 * protection/protect-rules.ts). The transport, the clock, the map writer and the local-pod reader
 * are injected, so tests run several daemons in one process.
 */
import { log } from '../util/log';
import { type Cancel, everyGuarded } from './clock';
import { handleRequest } from './control/operator-requests';
import { buildStatus, type StatusReport } from './control/status-report';
import type { DaemonCounters } from './counters';
import type { DaemonDeps } from './daemon-deps';
import { housekeeping } from './housekeeping';
import { rescanLocal } from './local/rescan';
import { networkStatus, startedLine } from './networks/network-status';
import { type DaemonParts, echoView } from './ops/daemon-view';
import { pollDemand } from './pairs/demand';
import { assemble, type Parts } from './parts';
import type { Trust } from './trust/trust';

export type { DaemonDeps } from './daemon-deps';
export type { DiscoverySource } from './discovery/announcer';
export type { SwitchEvent } from './pairs/switch-log';

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
    this.every(t.demandPollMs, () => pollDemand({ ...p, ...(this.deps.network ? { drainDemand: this.deps.network.drainDemand } : {}) }));
    this.every(t.announceIntervalMs, () => p.discovery.announce());
    this.every(Math.min(1000, t.peerTimeoutMs / 4), () => housekeeping(p, this.startedAt));
    this.every(t.rescanMs, () => this.rescanLocal());
    p.discovery.announce();
    const said = { node: cfg.nodeName, epoch: String(this.epoch), addresses: this.deps.addresses, port: cfg.port };
    const found = { endpoints: p.local.size, adoptedRoutes: adopted, multicast: Boolean(mc), staticPeers: cfg.discovery.static.length };
    const { msg, fields } = startedLine(this.deps.network);
    log.info(msg, { ...said, ...fields, ...found });
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
    const network = networkStatus(this.deps.network);
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
