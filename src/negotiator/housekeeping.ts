/**
 * afsteerd's housekeeping, about once a second: silent peers aged out, replay state of gone
 * senders pruned, expired remotes unregistered, the steering index following other writers, pair
 * activity read from the counters (idle pairs dropped), and orphaned routes of a previous run
 * reverted once their peer had its chance.
 */
import type { SteeringWriter } from '../bpf/steering-writer';
import { log } from '../util/log';
import type { Clock } from './clock';
import type { DaemonConfig } from './daemon-config';
import type { Discovery } from './discovery/announcer';
import type { PeerTable } from './discovery/peers';
import type { RemoteRegistry } from './discovery/remotes';
import type { PairLifecycle } from './pairs/lifecycle';
import { isIdle } from './pairs/pair';
import type { PairTable } from './pairs/pair-table';
import type { EchoPeerList } from './probing/echo-allow';
import type { Receiver } from './transport/receiver';
import type { Trust } from './trust/trust';

/** The parts housekeeping tends. */
export interface HousekeepingParts {
  cfg: DaemonConfig;
  clock: Clock;
  writer: SteeringWriter;
  discovery: Discovery;
  receiver: Receiver;
  peers: PeerTable;
  remotes: RemoteRegistry;
  pairs: PairTable;
  lifecycle: PairLifecycle;
  trust: Trust;
  echoPeers: EchoPeerList;
}

/** One round of housekeeping; startedAt is when the daemon started (orphans wait one peer timeout from it). */
export function housekeeping(p: HousekeepingParts, startedAt: number): void {
  const now = p.clock.now();
  const t = p.cfg.timers;
  p.discovery.ageOut();
  // Revoked or expired certificates: their nodes go now, pods unregistered (not retained).
  for (const { node, why } of p.trust.tick()) p.discovery.dropPeer(node, why);
  p.receiver.prune((node) => p.peers.has(node), now, t.peerTimeoutMs);
  p.remotes.expire(now);
  // Another writer (afsteer steer, a DEL) changed the maps: the index follows before anything reads it.
  try {
    p.writer.refresh();
  } catch (err) {
    log.error('cannot refresh the steering index', { error: (err as Error).message });
  }
  for (const [k, pair] of [...p.pairs.entries()]) {
    const packets = p.writer.pairPackets(pair.ifindex, pair.remote.ipv6);
    if (packets !== undefined && packets !== pair.lastPackets) {
      pair.lastPackets = packets;
      pair.lastActiveAt = now;
    }
    if (isIdle(pair, now, t.pairIdleMs, t.peerTimeoutMs)) p.lifecycle.drop(k, 'idle');
  }
  p.lifecycle.expireOrphans(startedAt);
  // The previous run's echo allow-list served while its peers were heard again; now only the known ones.
  if (now - startedAt > t.peerTimeoutMs) p.echoPeers.dropLeftovers();
}
