/**
 * Several afsteerd daemons in one process: each with its own in-memory maps (the real
 * SteeringWriter over them), one local pod, static peers toward the others, all on one
 * MemoryNetwork and one ManualClock. For unit tests of the daemon's behaviour without root.
 */
import { SteeringWriter } from '../../src/bpf/steering-writer';
import { Daemon } from '../../src/negotiator/daemon';
import { type DaemonConfig, parseDaemonConfig } from '../../src/negotiator/daemon-config';
import type { LocalEndpoint } from '../../src/negotiator/local/pods';
import { ManualClock } from './manual-clock';
import { addMemoryEndpoint, MemoryLock, type MemoryLockState, type MemoryMapSet, memoryMaps, pushMemoryDemand } from './memory-maps';
import { MemoryNetwork } from './memory-net';

/** One simulated node. */
export interface MemoryNode {
  name: string;
  cfg: DaemonConfig;
  addresses: { ipv4: string; ipv6: string };
  maps: MemoryMapSet;
  lockState: MemoryLockState;
  pod: LocalEndpoint & { ipv4: string; ipv6: string };
  daemon: Daemon;
  writer: SteeringWriter;
  epoch: bigint;
  /** Where its operator pins persist (set before start to keep them across restart()). */
  pinsDir?: string;
}

/** The cluster's shared key. */
export const MEMORY_KEY = Buffer.alloc(32, 7);

/** A cluster of n nodes (n ≤ 9), not started. */
export class MemoryCluster {
  readonly clock = new ManualClock();
  readonly net = new MemoryNetwork(this.clock);
  readonly nodes: MemoryNode[] = [];

  /** overrides apply to every node's config, nodeOverrides[i] to node i+1's on top (shallow). */
  /** nodes named in opts.noEcho run without the echo reflector (as an older afsteerd: no echo-v1). */
  constructor(
    n: number,
    private readonly overrides: Record<string, unknown> = {},
    nodeOverrides: Record<string, unknown>[] = [],
    private readonly opts: { noEcho?: string[] } = {},
  ) {
    for (let i = 1; i <= n; i++) {
      const name = `node-${i}`;
      const addresses = { ipv4: `10.0.0.${i}`, ipv6: `fd00::${i}` };
      const pod = {
        cnf: `ns/pod-${i}`,
        containerId: `c${i}`,
        ifname: 'eth0',
        ifindex: 10 + i,
        ipv4: `10.244.${i}.2`,
        ipv6: `fd00:244:${i}::2`,
      };
      const maps = memoryMaps();
      addMemoryEndpoint(maps, pod.ifindex, pod);
      const statics = [];
      for (let j = 1; j <= n; j++) if (j !== i) statics.push({ ipv4: `10.0.0.${j}`, ipv6: `fd00::${j}` });
      const cfg = parseDaemonConfig(
        JSON.stringify({ nodeName: name, keyFile: '/unused', discovery: { static: statics }, ...overrides, ...nodeOverrides[i - 1] }),
      );
      const node = { name, cfg, addresses, maps, lockState: { gen: 0n, held: false }, pod, epoch: BigInt(i) } as MemoryNode;
      this.build(node);
      this.nodes.push(node);
    }
  }

  private build(node: MemoryNode): void {
    node.writer = new SteeringWriter(node.maps, new MemoryLock(node.lockState));
    node.daemon = new Daemon({
      cfg: node.cfg,
      key: MEMORY_KEY,
      addresses: node.addresses,
      writer: node.writer,
      clock: this.clock,
      transport: this.net.transport(node.cfg.port),
      ...(this.opts.noEcho?.includes(node.name) ? {} : { echoTransport: this.net.transport(node.cfg.port + 1) }),
      readLocal: () => new Map([[node.pod.cnf, node.pod]]),
      epoch: node.epoch,
      pinsDir: node.pinsDir,
    });
  }

  /** Starts every daemon. */
  async start(): Promise<void> {
    for (const n of this.nodes) await n.daemon.start();
  }

  /** Stops a node's daemon and starts a new one (new boot epoch) over the same maps, as a restart does. */
  async restart(node: MemoryNode): Promise<void> {
    node.daemon.stop();
    node.epoch += 100n;
    this.build(node);
    await node.daemon.start();
  }

  /** A first packet from a's pod to b's pod, as the data plane records it. */
  firstPacket(a: MemoryNode, b: MemoryNode): void {
    pushMemoryDemand(a.maps, a.pod.ifindex, b.pod.ipv4);
  }

  /** The wire a's writer has for the pair toward b's pod. */
  wire(a: MemoryNode, b: MemoryNode): string | undefined {
    return a.writer.getPair(a.pod.ifindex, b.pod.ipv6)?.wire;
  }

  /** Stops every daemon. */
  stop(): void {
    for (const n of this.nodes) n.daemon.stop();
  }
}
