/** What `afsteerd status` shows, as a typed report built from the daemon's parts. */

import type { WireName } from '../../bpf/maps-layout';
import { FAMILIES, familyName } from '../../net/family';
import { effectivePolicy, type ProtectMode } from '../../policy/schema';
import type { DaemonCounters } from '../counters';
import type { DaemonConfig } from '../daemon-config';
import type { PeerTable } from '../discovery/peers';
import type { LocalPods } from '../local/pods';
import { agreedPreference, type PinInfo } from '../pairs/pair';
import type { PairTable } from '../pairs/pair-table';
import type { Preference } from '../pairs/selection';
import type { SwitchEvent, SwitchLog } from '../pairs/switch-log';
import { pathMetrics } from '../probing/probe-path';
import type { PairProtectStatus, Protection } from '../protection/protector';
import type { FamilyMetrics } from '../protocol/messages';

/** One family toward a peer. */
export interface FamilyStatus extends Partial<FamilyMetrics> {
  state: 'blackhole' | 'up' | 'probing';
  samples: number;
  sent: number;
  received: number;
  lastHeardMsAgo: number | null;
  /** How the path is probed: fast (a peer with pairs), demand (its pairs' traffic proves it: probing/traffic-proof.ts) or idle (no pairs). */
  probing: 'fast' | 'demand' | 'idle';
  /** Times demand probing went fast again: on traffic sent and not answered, on a lost probe. */
  demandTriggers?: { unanswered: number; lost: number };
}

/** One peer. */
export interface PeerStatus {
  node: string;
  addresses: { ipv4?: string; ipv6?: string };
  lastHeardMsAgo: number;
  endpoints: number;
  active: boolean;
  families: Partial<Record<'IPv4' | 'IPv6', FamilyStatus>>;
}

/** One pair. */
export interface PairStatus {
  local: string;
  remote: string;
  peer: string;
  leader: boolean;
  policy: string;
  preferred: Preference;
  wire: WireName;
  reason: string;
  lastChange: { at: number; from: Preference; to: Preference; reason: string; msAgo: number } | null;
  heldDown: { family: string; msLeft: number } | null;
  peerDecap: boolean;
  round: number;
  adopted: boolean;
  /** An operator pin in force (`afsteerd prefer`): honoured false while its family is blackholed. */
  pin: PinInfo | null;
  /** Its protection: agreed mode, what this node wrote (off / dedup / send), duplicating, the peer's side, counters. */
  protection: PairProtectStatus;
}

/** This node's protection: whether it deduplicates, its budget, and the pairs' duplication summed. */
export interface ProtectionStatus {
  dedup: boolean;
  budgetBytesPerSecond: number;
  burstBytes: number;
  protectedPairs: number;
  duplicatingPairs: number;
  dupPackets: number;
  dupBytes: number;
  dupCapped: number;
  rxDup: number;
}

/** Everything `afsteerd status` shows. */
export interface StatusReport {
  node: string;
  epoch: string;
  uptimeMs: number;
  addresses: { ipv4?: string; ipv6?: string };
  port: number;
  endpoints: { cnf: string; ifindex: number; ipv4?: string; ipv6?: string; policy: string; protect: ProtectMode }[];
  peers: PeerStatus[];
  pairs: PairStatus[];
  switches: SwitchEvent[];
  switchesTotal: number;
  protection: ProtectionStatus;
  counters: DaemonCounters & { sendErrors: { 4: number; 6: number } };
  /** etcd discovery (reachable, outages, targets, refused records), when configured. */
  etcd?: unknown;
  /** This node's operator pins, by peer node and by CNF. */
  pins?: { nodes: Record<string, string>; cnfs: Record<string, string> };
  /** How this node authenticates; its certificate and the certificates near expiry. */
  identity?: unknown;
  /**
   * The network this report is of, when networks are configured: its name and whose measurements
   * steer its pairs (its own addresses', or — none configured — the primary network's).
   */
  network?: NetworkIdentity;
  /** The secondary networks' reports (on the primary's). */
  networks?: StatusReport[];
  /** Attachments on networks this node does not know (on the primary's): never steered. */
  unknownNetworks?: { network: string; attachments: string[] }[];
}

/** Which network a report is of. */
export interface NetworkIdentity {
  name?: string;
  primary: boolean;
  measuredBy: 'own' | 'primary';
  /** In words, for a network measured over the primary's addresses. */
  note?: string;
}

/** The parts a report is read from. */
export interface StatusSources {
  cfg: DaemonConfig;
  epoch: bigint;
  addresses: { ipv4?: string; ipv6?: string };
  local: LocalPods;
  peers: PeerTable;
  pairs: PairTable;
  switches: SwitchLog;
  counters: DaemonCounters;
  sendErrors: { 4: number; 6: number };
  protection: Protection;
}

/** Builds the report at time now (uptime counted from startedAt). */
export function buildStatus(
  s: StatusSources,
  now: number,
  startedAt: number,
  extra: Pick<StatusReport, 'etcd' | 'pins' | 'identity' | 'network'> = {},
): StatusReport {
  const r = (x: number) => Math.round(x);
  const pairs: PairStatus[] = [...s.pairs.values()].map((p) => ({
    local: p.localCnf,
    remote: p.remoteCnf,
    peer: p.peerNode,
    leader: p.leader,
    policy: p.policy.criterion,
    preferred: agreedPreference(p),
    wire: p.wire,
    reason: p.wireReason,
    lastChange: p.selection.lastChange ? { ...p.selection.lastChange, msAgo: r(now - p.selection.lastChange.at) } : null,
    heldDown:
      p.selection.heldDown && p.selection.heldDown.until > now
        ? { family: p.selection.heldDown.family, msLeft: r(p.selection.heldDown.until - now) }
        : null,
    peerDecap: p.peer?.decap ?? false,
    round: p.round,
    adopted: p.adopted,
    pin: p.pin ?? null,
    protection: s.protection.status(p),
  }));
  const sum = (k: 'dupPackets' | 'dupBytes' | 'dupCapped' | 'rxDup') => pairs.reduce((a, p) => a + (p.protection.counters?.[k] ?? 0), 0);
  return {
    node: s.cfg.nodeName,
    epoch: String(s.epoch),
    uptimeMs: r(now - startedAt),
    addresses: s.addresses,
    port: s.cfg.port,
    endpoints: [...s.local.values()].map((l) => ({
      cnf: l.cnf,
      ifindex: l.ifindex,
      ipv4: l.ipv4,
      ipv6: l.ipv6,
      policy: effectivePolicy(l.policy, s.cfg.policy).criterion,
      protect: effectivePolicy(l.policy, s.cfg.policy).protect ?? 'off',
    })),
    peers: [...s.peers.values()].map((p) => ({
      node: p.node,
      addresses: p.addresses,
      lastHeardMsAgo: r(now - p.lastHeardAny),
      endpoints: p.endpoints.size,
      active: s.pairs.peerHasPairs(p.node),
      families: Object.fromEntries(
        FAMILIES.filter((f) => p.paths[f]).map((f) => {
          const path = p.paths[f]!;
          const m = pathMetrics(path);
          const fs: FamilyStatus = {
            state: path.blackhole ? 'blackhole' : m ? 'up' : 'probing',
            ...(m ?? {}),
            samples: path.outcomes.length,
            sent: path.sent,
            received: path.received,
            lastHeardMsAgo: p.lastHeard[f] !== undefined ? r(now - p.lastHeard[f]!) : null,
            probing: !s.pairs.peerHasPairs(p.node) ? 'idle' : (path.demand?.mode ?? 'fast'),
            ...(path.demand ? { demandTriggers: { ...path.demand.triggers } } : {}),
          };
          return [familyName(f), fs];
        }),
      ),
    })),
    pairs,
    switches: s.switches.last(20),
    switchesTotal: s.switches.total,
    protection: {
      dedup: s.protection.enabled,
      budgetBytesPerSecond: s.protection.enabled ? s.cfg.protection.budgetBytesPerSecond : 0,
      burstBytes: s.protection.enabled ? s.protection.burstBytes() : 0,
      protectedPairs: pairs.filter((p) => p.protection.protect !== 'off').length,
      duplicatingPairs: pairs.filter((p) => p.protection.duplicating).length,
      dupPackets: sum('dupPackets'),
      dupBytes: sum('dupBytes'),
      dupCapped: sum('dupCapped'),
      rxDup: sum('rxDup'),
    },
    counters: { ...s.counters, sendErrors: s.sendErrors },
    ...(extra.etcd !== undefined ? { etcd: extra.etcd } : {}),
    ...(extra.pins ? { pins: extra.pins } : {}),
    ...(extra.identity ? { identity: extra.identity } : {}),
    ...(extra.network ? { network: extra.network } : {}),
  };
}
