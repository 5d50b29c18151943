/**
 * Several afsteerd daemons in one process: each with its own in-memory maps (the real
 * SteeringWriter over them), one local pod, static peers toward the others, all on one
 * MemoryNetwork and one ManualClock. For unit tests of the daemon's behaviour without root.
 * With opts.auth, nodes get identities from one test authority (node i certified for its pod
 * ranges 10.244.i.0/24 and fd00:244:i::/64 and its control addresses); their wall clock follows
 * the manual clock, so certificates expire as it advances.
 */
import { SteeringWriter } from '../../src/bpf/steering-writer';
import type { NodeIdentity } from '../../src/identity/identity-files';
import type { RevocationList } from '../../src/identity/revocation';
import { Daemon } from '../../src/negotiator/daemon';
import { type DaemonConfig, parseDaemonConfig } from '../../src/negotiator/daemon-config';
import type { LocalEndpoint } from '../../src/negotiator/local/pods';
import type { AuthMode } from '../../src/negotiator/trust/frame-auth';
import { type TestAuthority, testAuthority, testIdentity } from './identities';
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
  /** Its identity (with opts.auth other than cluster-key); replace it before restart() to rotate. */
  identity?: NodeIdentity;
  /** Set to hand the daemon a new revocation list at its next housekeeping tick. */
  revocations?: RevocationList;
}

/** The cluster's shared key. */
export const MEMORY_KEY = Buffer.alloc(32, 7);

/** A cluster of n nodes (n ≤ 9), not started. */
export class MemoryCluster {
  readonly clock = new ManualClock();
  readonly net = new MemoryNetwork(this.clock);
  readonly nodes: MemoryNode[] = [];
  /** The authority certifying the nodes (opts.auth). */
  readonly authority: TestAuthority = testAuthority();
  /** Wall-clock time (ms since 1970) at simulated time 0. */
  readonly wall0 = Date.now();

  /** overrides apply to every node's config, nodeOverrides[i] to node i+1's on top (shallow). */
  /** nodes named in opts.noEcho run without the echo reflector (as an older afsteerd: no echo-v1). */
  constructor(
    n: number,
    readonly overrides: Record<string, unknown> = {},
    nodeOverrides: Record<string, unknown>[] = [],
    private readonly opts: { noEcho?: string[]; auth?: AuthMode | AuthMode[] } = {},
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
      const auth = Array.isArray(opts.auth) ? opts.auth[i - 1] : opts.auth;
      const creds = auth === undefined ? { keyFile: '/unused' } : { auth, keyFile: '/unused', identity: '/unused' };
      const cfg = parseDaemonConfig(
        JSON.stringify({ nodeName: name, ...creds, discovery: { static: statics }, ...overrides, ...nodeOverrides[i - 1] }),
      );
      const node = { name, cfg, addresses, maps, lockState: { gen: 0n, held: false }, pod, epoch: BigInt(i) } as MemoryNode;
      if (auth !== undefined && auth !== 'cluster-key')
        node.identity = this.certify(name, [`10.244.${i}.0/24`, `fd00:244:${i}::/64`], addresses);
      this.build(node);
      this.nodes.push(node);
    }
  }

  /** An identity from this cluster's authority (valid from an hour before simulated time 0 for a year unless said otherwise). */
  certify(
    node: string,
    podCidrs: string[],
    addresses: { ipv4: string; ipv6: string },
    validity: { issuedAt?: number; notAfter?: number } = {},
  ): NodeIdentity {
    return testIdentity(this.authority, { node, podCidrs, addresses: [addresses.ipv4, addresses.ipv6], ...validity }, this.wall0);
  }

  /** Wall-clock time now (ms since 1970). */
  wallNow(): number {
    return this.wall0 + this.clock.now();
  }

  private build(node: MemoryNode): void {
    node.writer = new SteeringWriter(node.maps, new MemoryLock(node.lockState));
    const mode = node.cfg.auth ?? 'cluster-key';
    node.daemon = new Daemon({
      cfg: node.cfg,
      ...(mode !== 'identity' ? { key: MEMORY_KEY } : {}),
      ...(mode !== 'cluster-key' ? { identity: node.identity } : {}),
      wallNow: () => this.wallNow(),
      readRevocations: () => {
        const l = node.revocations;
        node.revocations = undefined;
        return l;
      },
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
