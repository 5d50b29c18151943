/**
 * afsteerd's negotiators, one per network (network-plan.ts): each a Daemon with the network's config,
 * addresses, key and transport, whose pods are the attachments on that network — so discovery,
 * probing and negotiation run per network and a pair is only ever between two attachments of one
 * network. They share the node's one steering writer; the demand map is drained once and shared
 * out by endpoint; a pair a previous run left is adopted by the network its endpoint is on; a
 * remote another network holds is never unregistered by retention. Attachments on a network this
 * node does not know are never steered (logged once each, listed by status). With no networks
 * configured this is the one Daemon it always was.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Demand, SteeringWriter } from '../../bpf/steering-writer';
import type { NodeIdentity } from '../../identity/identity-files';
import type { RevocationList } from '../../identity/revocation';
import { log } from '../../util/log';
import type { Clock } from '../clock';
import type { StatusReport } from '../control/status-report';
import type { DaemonCounters } from '../counters';
import { Daemon, type DiscoverySource } from '../daemon';
import type { DaemonConfig } from '../daemon-config';
import type { LocalEndpoint } from '../local/pods';
import { byCnf } from '../local/pods';
import type { DaemonParts } from '../ops/daemon-view';
import type { KernelEcho } from '../probing/echo-allow';
import type { PairSeenReader } from '../probing/pair-traffic';
import type { DatagramTransport } from '../transport/udp';
import { type NetworkPlan, type NodeAddresses, networkKey, networkOf, planNetworks } from './network-plan';

/** What the negotiators are built from. */
export interface NetworkSetDeps {
  cfg: DaemonConfig;
  /** The cluster key (auth cluster-key or both): each secondary network authenticates with its own, derived from it. */
  key?: Buffer;
  /** This node's identity (auth identity or both), the same on every network. */
  identity?: NodeIdentity;
  /** A fresh reader of the revocation list for each negotiator (each reader reports a change once). */
  readRevocationsFor?: () => () => RevocationList | undefined;
  /** The kernel echo reflector (on the primary's links): the primary's only. */
  echoKernel?: KernelEcho;
  /** This node's addresses on the primary network. */
  addresses: NodeAddresses;
  writer: SteeringWriter;
  clock: Clock;
  /** Every attachment on this node (the plugin's state files), each with its network. */
  readAttachments: () => LocalEndpoint[];
  /** The datagram transport of a network's negotiator (its port, bound to its addresses at start). */
  transportFor: (plan: NetworkPlan) => DatagramTransport;
  /** Its echo transport (port + 1), if it answers echo probes in userspace. */
  echoTransportFor?: (plan: NetworkPlan) => DatagramTransport | undefined;
  epoch?: bigint;
  /** Where operator pins persist (the stateDir); a secondary network's under networks/<name>/. */
  pinsDir?: string;
  /** The data plane's per-pair traffic times (one map for every network's pairs); none: no demand-style probing. */
  pairSeen?: PairSeenReader;
  /** etcd discovery: the primary network's only (its records carry the primary's addresses). */
  discoverySource?: () => DiscoverySource | undefined;
}

/** The node's negotiators. */
export class NetworkSet {
  /** The plans, primary first. */
  readonly plans: NetworkPlan[];
  /** The daemons, in the plans' order. */
  readonly daemons: Daemon[] = [];
  private readonly multi: boolean;
  private readonly pending = new Map<Daemon, Demand[]>();
  /** Attachments on networks this node does not know, by network: "containerId/ifname". */
  private readonly unknown = new Map<string, Set<string>>();

  constructor(private readonly deps: NetworkSetDeps) {
    this.plans = planNetworks(deps.cfg, deps.addresses);
    this.multi = deps.cfg.networks.length > 0;
    for (const plan of this.plans) {
      const pinsDir = deps.pinsDir && (plan.primary ? deps.pinsDir : this.networkDir(deps.pinsDir, plan.name!));
      const echo = deps.echoTransportFor?.(plan);
      const d: Daemon = new Daemon({
        cfg: plan.cfg,
        ...(deps.key ? { key: networkKey(deps.key, plan) } : {}),
        ...(deps.identity ? { identity: deps.identity } : {}),
        ...(deps.readRevocationsFor ? { readRevocations: deps.readRevocationsFor() } : {}),
        ...(plan.primary && deps.echoKernel ? { echoKernel: deps.echoKernel } : {}),
        ...(deps.pairSeen ? { pairSeen: deps.pairSeen } : {}),
        addresses: plan.addresses,
        writer: deps.writer,
        transport: deps.transportFor(plan),
        ...(echo ? { echoTransport: echo } : {}),
        clock: deps.clock,
        readLocal: () => this.localOf(plan),
        ...(deps.epoch !== undefined ? { epoch: deps.epoch } : {}),
        ...(pinsDir ? { pinsDir } : {}),
        ...(plan.primary && deps.discoverySource ? { discoverySource: deps.discoverySource } : {}),
        ...(this.multi
          ? {
              network: {
                ...(plan.name !== undefined ? { name: plan.name } : {}),
                primary: plan.primary,
                measuredBy: plan.measuredBy,
                drainDemand: () => this.drainFor(d),
                ownsEndpoint: (k: number) => this.ownerOf(k) === d,
                remoteClaimed: (a: string) => this.daemons.some((o) => o !== d && o.ownsRemote(a)),
              },
            }
          : {}),
      });
      this.daemons.push(d);
    }
  }

  /** The primary network's daemon. */
  get primary(): Daemon {
    return this.daemons[0]!;
  }

  /** The primary network's counters (refusals on the control socket are counted there). */
  get counters(): DaemonCounters {
    return this.primary.counters;
  }

  /** A revocation list from etcd, offered to every network's trust; true when the primary took it. */
  offerRevocations(value: Buffer): boolean {
    const taken = this.daemons.map((d) => d.trust.offerRevocations(value));
    return taken[0]!;
  }

  /** The daemon of the network called name (undefined: the primary's). */
  daemonOf(name: string | undefined): Daemon | undefined {
    if (name === undefined) return this.primary;
    const i = this.plans.findIndex((p) => p.name === name);
    return i < 0 ? undefined : this.daemons[i];
  }

  private networkDir(root: string, name: string): string {
    const dir = join(root, 'networks', name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** A network's pods: the attachments on it (the primary's also notes those on networks nobody here knows). */
  private localOf(plan: NetworkPlan): Map<string, LocalEndpoint> {
    const all = this.deps.readAttachments();
    if (plan.primary && this.multi) this.noteUnknown(all);
    return byCnf(all, (l) => networkOf(l.network ?? '', this.deps.cfg) === plan.name);
  }

  private noteUnknown(all: LocalEndpoint[]): void {
    const now = new Map<string, Set<string>>();
    for (const l of all) {
      const net = l.network ?? '';
      if (networkOf(net, this.deps.cfg) !== null) continue;
      const id = `${l.containerId}/${l.ifname}`;
      if (!now.has(net)) now.set(net, new Set());
      now.get(net)!.add(id);
      if (!this.unknown.get(net)?.has(id))
        log.warn('attachment on a network afsteerd does not know: never steered (add it to networks, or fix its name)', {
          network: net,
          container: l.containerId,
          ifname: l.ifname,
        });
    }
    this.unknown.clear();
    for (const [k, v] of now) this.unknown.set(k, v);
  }

  /** The daemon whose pods include the endpoint with key (the primary's when none does). */
  private ownerOf(key: number): Daemon {
    for (let i = 1; i < this.daemons.length; i++) if (this.daemons[i]!.hasLocalEndpoint(key)) return this.daemons[i]!;
    return this.primary;
  }

  /** d's share of the demand map: drained once for every network, handed out by endpoint. */
  private drainFor(d: Daemon): Demand[] {
    for (const x of this.deps.writer.drainDemand()) {
      const owner = this.ownerOf(x.ifindex);
      const q = this.pending.get(owner);
      if (q) q.push(x);
      else this.pending.set(owner, [x]);
    }
    const mine = this.pending.get(d) ?? [];
    this.pending.delete(d);
    return mine;
  }

  /** Starts the secondary networks' negotiators, then the primary's (its "afsteerd started" means all run). */
  async start(): Promise<void> {
    for (const d of [...this.daemons.slice(1), this.primary]) await d.start();
  }

  /** Stops every negotiator; the steering stays in the maps. */
  stop(): void {
    for (const d of this.daemons) d.stop();
    if (this.multi) this.deps.writer.close();
  }

  /** Re-reads the plugin's state files in every network. */
  rescanLocal(): void {
    for (const d of this.daemons) d.rescanLocal(false);
  }

  /** One control-socket request: status of every network; prefer in the network it names (default the primary); a notification to all. */
  control(req: Record<string, unknown>): Record<string, unknown> {
    if (req.op === 'status') return { ok: true, ...this.status() };
    if (req.op === 'endpoint') {
      const answers = this.daemons.map((d) => d.control(req));
      return { ok: true, endpoints: answers.reduce((n, a) => n + Number(a.endpoints ?? 0), 0) };
    }
    if (req.network !== undefined) {
      const d = typeof req.network === 'string' ? this.daemonOf(req.network) : undefined;
      if (!d) return { ok: false, error: `unknown network ${JSON.stringify(req.network)}` };
      return d.control(req);
    }
    return this.primary.control(req);
  }

  /** `afsteerd status`: the primary network's report, with the secondary networks' and the unknown networks' attachments. */
  status(): StatusReport {
    const r = this.primary.status();
    if (!this.multi) return r;
    return {
      ...r,
      networks: this.daemons.slice(1).map((d) => d.status()),
      unknownNetworks: [...this.unknown].map(([network, ids]) => ({ network, attachments: [...ids].sort() })),
    };
  }

  /** The primary network's parts, for metrics and the page. */
  parts(): DaemonParts {
    return this.primary.parts();
  }
}
