/**
 * One read of the daemon's parts for operators (metrics, history, logs): per peer and family the
 * window's metrics and state, pairs per peer and wire family, pins. Computed once per scrape or
 * sample (a window's median sorts its RTTs), never per series.
 */
import type { WireName } from '../../bpf/maps-layout';
import { FAMILIES, type FamilyName, familyName } from '../../net/family';
import { pathMetrics } from '../probing/probe-path';
import type { FamilyMetrics } from '../protocol/messages';
import type { DaemonParts } from './daemon-view';
import { type FamilyState, familyState } from './vocabulary';

/** One family toward one peer. */
export interface FamilySnapshot {
  state: FamilyState;
  metrics?: FamilyMetrics;
}

/** One peer. */
export interface PeerSnapshot {
  node: string;
  alive: boolean;
  /** Has pairs (probed fast). */
  active: boolean;
  families: Partial<Record<FamilyName, FamilySnapshot>>;
  pairs: Record<WireName, number>;
  pinned: { honoured: number; overridden: number };
}

/** The whole read. */
export interface Snapshot {
  at: number;
  peers: PeerSnapshot[];
}

/** Reads the parts now. Work: O(peers × window + pairs). */
export function takeSnapshot(parts: DaemonParts): Snapshot {
  const now = parts.clock.now();
  const peers: PeerSnapshot[] = [];
  for (const p of parts.peers.values()) {
    const families: PeerSnapshot['families'] = {};
    for (const f of FAMILIES) {
      const path = p.paths[f];
      if (!path) continue;
      const m = pathMetrics(path);
      families[familyName(f)] = { state: familyState(m), ...(m ? { metrics: m } : {}) };
    }
    const pairs: Record<WireName, number> = { native: 0, ipv4: 0, ipv6: 0 };
    const pinned = { honoured: 0, overridden: 0 };
    for (const [, pair] of parts.pairs.ofPeer(p.node)) {
      pairs[pair.wire]++;
      if (pair.pin) pinned[pair.pin.honoured ? 'honoured' : 'overridden']++;
    }
    peers.push({ node: p.node, alive: parts.peers.alive(p, now), active: parts.pairs.peerHasPairs(p.node), families, pairs, pinned });
  }
  return { at: now, peers };
}
