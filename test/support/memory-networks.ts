/**
 * Nodes with a primary and a secondary network, each node's negotiators a real NetworkSet (one
 * Daemon per network) over the real SteeringWriter on in-memory maps, the two networks two
 * MemoryNetworks on one ManualClock (so one family can be blackholed on one network only). Each
 * node has one pod with two attachments: eth0 on the primary network ("k8s", endpoint key 10+i)
 * and net1 on the transport network ("transport", an in-pod key), as Multus gives a CNF.
 */
import { EP_KEY_POD } from '../../src/bpf/maps-layout';
import { SteeringWriter } from '../../src/bpf/steering-writer';
import { type DaemonConfig, parseDaemonConfig } from '../../src/negotiator/daemon-config';
import type { LocalEndpoint } from '../../src/negotiator/local/pods';
import { NetworkSet } from '../../src/negotiator/networks/network-set';
import { ManualClock } from './manual-clock';
import { MEMORY_KEY } from './memory-cluster';
import { addMemoryEndpoint, MemoryLock, type MemoryLockState, type MemoryMapSet, memoryMaps, pushMemoryDemand } from './memory-maps';
import { MemoryNetwork } from './memory-net';

/** One attachment of a node's pod. */
export type Attachment = LocalEndpoint & { ipv4: string; ipv6: string; network: string };

/** One node. */
export interface NetNode {
  name: string;
  i: number;
  cfg: DaemonConfig;
  maps: MemoryMapSet;
  lockState: MemoryLockState;
  writer: SteeringWriter;
  set: NetworkSet;
  eth0: Attachment;
  net1: Attachment;
  /** Attachments on networks the node's config does not list. */
  extra: Attachment[];
}

/** The primary network's name and the transport network's. */
export const PRIMARY = 'k8s';
export const TRANSPORT = 'transport';

/** n nodes (≤ 9) with eth0 on the primary and net1 on the transport network, not started. */
export class NetworksCluster {
  readonly clock = new ManualClock();
  readonly primaryNet = new MemoryNetwork(this.clock);
  readonly transportNet = new MemoryNetwork(this.clock);
  readonly nodes: NetNode[] = [];

  /** transport: the transport network's entry in each node's config (default: own addresses and static peers); extra: more config. */
  constructor(n: number, opts: { transport?: (i: number) => Record<string, unknown>; extra?: Record<string, unknown> } = {}) {
    for (let i = 1; i <= n; i++) {
      const name = `node-${i}`;
      const others = [...Array(n).keys()].map((k) => k + 1).filter((j) => j !== i);
      const transport = opts.transport?.(i) ?? {
        name: TRANSPORT,
        addresses: { ipv4: `172.30.0.${i}`, ipv6: `fd30::${i}` },
        static: others.map((j) => ({ ipv4: `172.30.0.${j}`, ipv6: `fd30::${j}` })),
      };
      const cfg = parseDaemonConfig(
        JSON.stringify({
          nodeName: name,
          keyFile: '/unused',
          addresses: { ipv4: `10.0.0.${i}`, ipv6: `fd00::${i}` },
          discovery: { static: others.map((j) => ({ ipv4: `10.0.0.${j}`, ipv6: `fd00::${j}` })) },
          primaryNetwork: PRIMARY,
          networks: [transport],
          ...opts.extra,
        }),
      );
      const eth0: Attachment = {
        cnf: `cnf/upf-${i}`,
        containerId: `c${i}`,
        ifname: 'eth0',
        ifindex: 10 + i,
        network: PRIMARY,
        ipv4: `10.244.${i}.2`,
        ipv6: `fd00:244:${i}::2`,
      };
      const net1: Attachment = {
        cnf: `cnf/upf-${i}`,
        containerId: `c${i}`,
        ifname: 'net1',
        ifindex: (EP_KEY_POD | 1) >>> 0,
        network: TRANSPORT,
        ipv4: `172.30.1${i}.10`,
        ipv6: `fd30:1${i}::10`,
      };
      const maps = memoryMaps();
      addMemoryEndpoint(maps, eth0.ifindex, eth0, 0);
      addMemoryEndpoint(maps, net1.ifindex, net1, 1);
      const node = { name, i, cfg, maps, lockState: { gen: 0n, held: false }, eth0, net1, extra: [] } as unknown as NetNode;
      node.writer = new SteeringWriter(maps, new MemoryLock(node.lockState));
      node.set = new NetworkSet({
        cfg,
        key: MEMORY_KEY,
        addresses: cfg.addresses!,
        writer: node.writer,
        clock: this.clock,
        readAttachments: () => [node.eth0, node.net1, ...node.extra],
        transportFor: (plan) =>
          (plan.primary || plan.measuredBy === 'primary' ? this.primaryNet : this.transportNet).transport(plan.cfg.port),
        echoTransportFor: (plan) =>
          (plan.primary || plan.measuredBy === 'primary' ? this.primaryNet : this.transportNet).transport(plan.cfg.port + 1),
        epoch: BigInt(i),
      });
      this.nodes.push(node);
    }
  }

  /** Adds an attachment on another network to node's pod (before start). */
  addAttachment(node: NetNode, a: Attachment, slot: number): void {
    addMemoryEndpoint(node.maps, a.ifindex, a, slot);
    node.extra.push(a);
  }

  /** Starts every node's negotiators. */
  async start(): Promise<void> {
    for (const n of this.nodes) await n.set.start();
  }

  /** A first packet from one attachment to an address, as the data plane records it. */
  firstPacket(node: NetNode, from: Attachment, to: string): void {
    pushMemoryDemand(node.maps, from.ifindex, to);
  }

  /** The wire node's writer has for (local attachment, remote address). */
  wire(node: NetNode, from: Attachment, to: string): string | undefined {
    return node.writer.getPair(from.ifindex, to)?.wire;
  }

  /** Stops every node. */
  stop(): void {
    for (const n of this.nodes) n.set.stop();
  }
}
