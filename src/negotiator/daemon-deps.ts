/** What a daemon is built from: its configuration, keys or identity, and the injected resources (maps, sockets, clock, pods). */
import type { Demand, SteeringWriter } from '../bpf/steering-writer';
import type { NodeIdentity } from '../identity/identity-files';
import type { RevocationList } from '../identity/revocation';
import type { Clock } from './clock';
import type { DaemonConfig } from './daemon-config';
import type { DiscoverySource } from './discovery/announcer';
import type { LocalReader } from './local/pods';
import type { KernelEcho } from './probing/echo-allow';
import type { PairSeenReader } from './probing/pair-traffic';
import type { DatagramTransport } from './transport/udp';

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
  /** More announcement targets (etcd discovery, which may start after the daemon: asked at each announcement). */
  discoverySource?: () => DiscoverySource | undefined;
  /** The data plane's per-pair last-sent and last-received times (src/bpf/pair-seen.ts); none: no demand-style probing. */
  pairSeen?: PairSeenReader;
  /** The kernel echo reflector, when attached: its allow-list map and its counts. */
  echoKernel?: KernelEcho;
  /**
   * One network's negotiator among several on this node (networks/network-set.ts): the writer is
   * shared (stop() leaves it open), the demand map is shared out (drainDemand), pairs a previous
   * run left are adopted only for its own endpoints (ownsEndpoint), and a retained remote another
   * network holds is never unregistered (remoteClaimed).
   */
  network?: NetworkRole;
}

/** A network negotiator's place among the node's networks. */
export interface NetworkRole {
  name?: string;
  primary: boolean;
  measuredBy: 'own' | 'primary';
  drainDemand: () => Demand[];
  ownsEndpoint: (ifindex: number) => boolean;
  remoteClaimed: (address: string) => boolean;
}
