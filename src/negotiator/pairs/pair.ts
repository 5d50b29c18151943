/**
 * One negotiated pair (a local pod, a remote pod on a peer node): who decides, which metrics the
 * decision uses, and which wire family this node's sending direction takes. Pure.
 *
 * Both ends must reach the same answer. The pair's *leader* decides: the end whose CNF id sorts
 * first (byte order; node name breaks a tie), with its own endpoint's policy, on metrics combined
 * from both ends' measurements (worst of the two per family). The follower adopts the leader's
 * preferred family from its negotiation messages. Either end moves its own sending direction
 * off a family it sees blackholed at once (the far end decapsulates any registered remote's
 * packets), and encapsulates only while the peer has said it decapsulates (decap: true).
 */
import type { WireName } from '../../bpf/maps-layout';
import { otherName } from '../../net/family';
import type { Policy, ProtectMode } from '../../policy/schema';
import type { PairProtection } from '../protection/protect-rules';
import type { FamilyMetrics, FamilyName } from '../protocol/messages';
import { evaluate, initialSelection, type PairMetrics, type PolicyParams, type Preference, type SelectionState } from './selection';

/** What the peer last said about the pair. */
export interface PeerView {
  preferred: Preference;
  round: number;
  /** The sender's boot epoch (rounds compare within one). */
  epoch: bigint;
  decap: boolean;
  active: boolean;
  metrics: PairMetrics;
  policy: Policy;
  at: number;
  /** The peer's operator pin for the pair, if any (prefer-v1). */
  pinned?: FamilyName;
  /** Protection, from a peer that announces dedup-v1: its agreed mode, its dedup window, its duplication. */
  protect?: ProtectMode;
  dedup?: boolean;
  dup?: boolean;
}

/** The daemon's state of one pair. */
export interface PairState {
  localCnf: string;
  remoteCnf: string;
  peerNode: string;
  ifindex: number;
  remote: { ipv4: string; ipv6: string };
  policy: Policy;
  leader: boolean;
  selection: SelectionState;
  /** This node's decision counter (leader) for the pair. */
  round: number;
  peer?: PeerView;
  /** The wire family written for this node's sending direction, and why. */
  wire: WireName;
  wireReason: string;
  /** Last time traffic was seen on the pair (counters moved, demand, peer active). */
  lastActiveAt: number;
  lastPackets?: bigint;
  createdAt: number;
  /** Restored from the maps after a restart: left as found until the peer is heard. */
  adopted: boolean;
  /** An operator pin in force for the pair (prefer.ts), and whether the pinned family is what the pair uses. */
  pin?: PinInfo;
  /** This node's protection of the pair (protection.ts), once reconciled. */
  protection?: PairProtection;
}

/** An operator pin as applied to one pair. */
export interface PinInfo {
  family: FamilyName;
  /** Where it comes from: this node's pin of the peer node or of a CNF, or the peer's pin. */
  source: 'node' | 'cnf' | 'peer';
  /** False while the pinned family is blackholed (the pair is on the other) or the peer cannot honour it. */
  honoured: boolean;
  note?: string;
}

/** Key of a pair in maps and messages: "local|remote". */
export function pairKey(localCnf: string, remoteCnf: string): string {
  return `${localCnf}|${remoteCnf}`;
}

/** True when this end leads the pair. */
export function isLeader(localCnf: string, remoteCnf: string, localNode: string, peerNode: string): boolean {
  if (localCnf !== remoteCnf) return Buffer.compare(Buffer.from(localCnf), Buffer.from(remoteCnf)) < 0;
  return Buffer.compare(Buffer.from(localNode), Buffer.from(peerNode)) < 0;
}

/** A new pair (native). */
export function newPair(
  p: Omit<PairState, 'selection' | 'round' | 'wire' | 'wireReason' | 'createdAt' | 'adopted' | 'lastActiveAt'>,
  now: number,
  wire: WireName = 'native',
): PairState {
  return {
    ...p,
    selection: initialSelection(preferenceOf(wire)),
    round: 0,
    wire,
    wireReason: 'new pair',
    createdAt: now,
    lastActiveAt: now,
    adopted: false,
  };
}

/** The preference a wire family expresses. */
export function preferenceOf(wire: WireName): Preference {
  return wire === 'ipv4' ? 'IPv4' : wire === 'ipv6' ? 'IPv6' : null;
}

/** The wire family that carries a preference. */
export function wireOf(p: Preference): WireName {
  return p === 'IPv4' ? 'ipv4' : p === 'IPv6' ? 'ipv6' : 'native';
}

function worst(a: FamilyMetrics | undefined, b: FamilyMetrics | undefined): FamilyMetrics | undefined {
  if (!a || !b) return a ?? b;
  return {
    latency_ms: Math.max(a.latency_ms, b.latency_ms),
    jitter_ms: Math.max(a.jitter_ms, b.jitter_ms),
    packet_loss: Math.max(a.packet_loss, b.packet_loss),
    blackhole: a.blackhole || b.blackhole,
    samples: Math.min(a.samples, b.samples),
  };
}

/** Both ends' measurements combined: the worst of the two, per family (the peer's only while fresh). */
export function combinedMetrics(mine: PairMetrics, peer: PairMetrics | undefined): PairMetrics {
  const out: PairMetrics = {};
  for (const f of ['IPv4', 'IPv6'] as FamilyName[]) {
    const m = worst(mine[f], peer?.[f]);
    if (m) out[f] = m;
  }
  return out;
}

/** The leader's evaluation step (a follower keeps its selection). */
export function stepSelection(p: PairState, mine: PairMetrics, now: number, freshMs: number, prm: PolicyParams): PairState {
  if (!p.leader) return p;
  const peerMetrics = p.peer && now - p.peer.at <= freshMs ? p.peer.metrics : undefined;
  const selection = evaluate(p.selection, combinedMetrics(mine, peerMetrics), p.policy, now, prm);
  if (selection.current === p.selection.current) return { ...p, selection };
  return { ...p, selection, round: p.round + 1 };
}

/** The agreed preference: the leader's own, or what the leader last said (native before that). */
export function agreedPreference(p: PairState): Preference {
  return p.leader ? p.selection.current : (p.peer?.preferred ?? null);
}

/**
 * This node's sending wire for the pair, with the reason: native unless the peer is alive and
 * decapsulates; the agreed preference otherwise, moved off a family this node sees blackholed.
 */
export function sendingWire(
  p: PairState,
  mine: PairMetrics,
  peerAlive: boolean,
  fresh?: { now: number; maxAgeMs: number },
): { wire: WireName; reason: string } {
  if (!peerAlive) return { wire: 'native', reason: 'peer silent' };
  if (!p.peer?.decap) return { wire: 'native', reason: 'peer has not confirmed decapsulation' };
  // The confirmation is per pair and must be recent: a peer that dropped the pair, or cannot hear
  // this node (so stopped speaking of the pair), no longer vouches for decapsulating it.
  if (fresh && fresh.now - p.peer.at > fresh.maxAgeMs) return { wire: 'native', reason: 'peer has not confirmed decapsulation lately' };
  let pref = agreedPreference(p);
  let reason = p.leader ? (p.selection.lastChange?.reason ?? 'negotiated') : `peer ${p.peerNode} chose ${pref ?? 'native'}`;
  const used: FamilyName[] = pref === null ? ['IPv4', 'IPv6'] : [pref];
  for (const f of used) {
    const o = otherName(f);
    if (mine[f]?.blackhole && mine[o] && !mine[o].blackhole) {
      pref = o;
      reason = `blackhole on ${f} (own sending direction)`;
      break;
    }
  }
  return { wire: wireOf(pref), reason };
}

/**
 * A leader's older decision (reordered between the two families) never undoes a newer one.
 * Rounds count within one boot of the sender: a restarted leader starts again at 0.
 */
export function isStaleRound(p: Pick<PairState, 'leader' | 'peer'>, round: number, epoch: bigint): boolean {
  return p.peer !== undefined && !p.leader && epoch === p.peer.epoch && round < p.peer.round;
}

/**
 * A pair adopted from the maps after a restart is left exactly as the previous run left it
 * until its peer speaks of it — but only while the peer is alive, and at most one peer timeout.
 */
export function adoptionHolds(p: Pick<PairState, 'createdAt'>, peerIsAlive: boolean, now: number, peerTimeoutMs: number): boolean {
  return peerIsAlive && now - p.createdAt < peerTimeoutMs;
}

/** The peer says the pair carries traffic on its side, and said so recently. */
export function peerSaysActive(p: Pick<PairState, 'peer'>, now: number, peerTimeoutMs: number): boolean {
  return Boolean(p.peer?.active && now - p.peer.at < peerTimeoutMs);
}

/** A pair is idle (and dropped) when neither end saw traffic on it for pairIdleMs. */
export function isIdle(p: Pick<PairState, 'lastActiveAt' | 'peer'>, now: number, pairIdleMs: number, peerTimeoutMs: number): boolean {
  return now - p.lastActiveAt > pairIdleMs && !peerSaysActive(p, now, peerTimeoutMs);
}

/** Routes a previous run left, whose peer never came back, are reverted once a peer timeout has passed since start-up. */
export function orphansExpired(now: number, startedAt: number, peerTimeoutMs: number): boolean {
  return now - startedAt > peerTimeoutMs;
}
