/**
 * A re-read of this node's pods (start-up, the plugin's notifications, a periodic healer): pairs of
 * pods gone are dropped, a changed pod policy reaches its pairs, a change of membership is
 * announced at once; the periodic re-read also re-reads the maps, at most once per mapsResyncMs.
 */
import type { SteeringWriter } from '../../bpf/steering-writer';
import { effectivePolicy } from '../../policy/schema';
import type { Clock } from '../clock';
import type { DaemonConfig } from '../daemon-config';
import type { Discovery } from '../discovery/announcer';
import type { PairLifecycle } from '../pairs/lifecycle';
import type { PairTable } from '../pairs/pair-table';
import type { LocalPods } from './pods';

/** The parts a re-read changes. */
export interface RescanParts {
  cfg: DaemonConfig;
  clock: Clock;
  writer: SteeringWriter;
  local: LocalPods;
  pairs: PairTable;
  lifecycle: PairLifecycle;
  discovery: Discovery;
}

/** Re-reads the pods; resync carries when the maps were last re-read; running: the daemon's timers run (announce a change). */
export function rescanLocal(p: RescanParts, resync: { lastAt: number }, resyncMaps: boolean, running: boolean): void {
  const change = p.local.rescan();
  for (const cnf of change.gone) {
    for (const [k, pair] of [...p.pairs.entries()]) if (pair.localCnf === cnf) p.lifecycle.drop(k, 'local pod gone');
  }
  for (const n of change.policyChanged) {
    for (const pair of p.pairs.values()) if (pair.localCnf === n.cnf) pair.policy = effectivePolicy(n.policy, p.cfg.policy);
  }
  // Re-reading every route and remote is O(N) syscalls (20,000 for 1,000 peers of 10 pods): a
  // healer against writes outside the writer lock, once per mapsResyncMs, never on an ADD/DEL.
  // Writers that take the lock are followed at once (writer.refresh in housekeeping).
  const now = p.clock.now();
  if (resyncMaps && now - resync.lastAt >= p.cfg.timers.mapsResyncMs) {
    resync.lastAt = now;
    p.writer.resync();
  }
  if (change.membershipChanged && running) p.discovery.announce();
}
