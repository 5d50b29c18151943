/** Demand: a pod's first packet toward a registered remote pod with no route (the data plane's demand map) starts a pair. */
import type { Demand, SteeringWriter } from '../../bpf/steering-writer';
import { canonical } from '../../net/ip';
import type { PeerTable } from '../discovery/peers';
import type { RemoteRegistry } from '../discovery/remotes';
import type { LocalPods } from '../local/pods';
import type { PairLifecycle } from './lifecycle';
import { pairKey } from './pair';
import type { PairTable } from './pair-table';

/** The parts demand polling reads and creates pairs through. */
export interface DemandParts {
  writer: SteeringWriter;
  /** This daemon's share of the demand map (another network's negotiator takes its own); default: all of it. */
  drainDemand?: () => Demand[];
  local: LocalPods;
  remotes: RemoteRegistry;
  peers: PeerTable;
  pairs: PairTable;
  lifecycle: PairLifecycle;
}

/** Drains the demand map: each first packet of a local pod toward a known remote pod without a pair creates the pair. */
export function pollDemand(p: DemandParts): void {
  for (const d of p.drainDemand ? p.drainDemand() : p.writer.drainDemand()) {
    const l = p.local.byHostIfindex(d.ifindex);
    const owner = p.remotes.ownerOf(canonical(d.address));
    const peer = owner && p.peers.get(owner.node);
    const e = owner && peer?.endpoints.get(owner.cnf);
    if (!l || !peer || !e || !l.ipv4 || !l.ipv6) continue;
    if (p.pairs.has(pairKey(l.cnf, e.cnf))) continue;
    p.lifecycle.create(l, peer, e, 'first packet');
  }
}
