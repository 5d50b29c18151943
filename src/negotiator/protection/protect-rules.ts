/**
 * The decisions of pair protection, pure (table tests in test/unit/afsteerd/protect-rules.test.ts):
 * the mode both ends agree on, what counts as a sign of trouble on a family, how long
 * on-suspicion keeps duplicating, and what this node writes for a pair. Times are monotonic ms.
 */
import type { WireName } from '../../bpf/maps-layout';
import type { ProtectionMode } from '../../bpf/protect-maps';
import { mergeProtect, type ProtectMode } from '../../policy/schema';
import type { PathState } from '../probing/probe-path';
import type { FamilyMetrics, FamilyName } from '../protocol/messages';

/** The capability a node announces when it deduplicates protected pairs (and understands the pair message's protect fields). */
export const DEDUP_CAPABILITY = 'dedup-v1';

/** What the two ends know of a pair's protection. */
export interface ProtectInputs {
  leader: boolean;
  /** This end's policy.protect. */
  own?: ProtectMode;
  /** The peer's policy.protect, as its last message said. */
  peerPolicy?: ProtectMode;
  /** The leader's decided mode, as its last message said (follower only). */
  leaderSays?: ProtectMode;
  /** The peer announced DEDUP_CAPABILITY (and this node protects at all). */
  capable: boolean;
}

/**
 * The pair's agreed mode: off unless both nodes can deduplicate; the leader's merge of both
 * ends' asks (stronger wins); a follower takes what the leader said, and the same merge until then.
 */
export function agreedProtect(i: ProtectInputs): ProtectMode {
  if (!i.capable) return 'off';
  if (!i.leader && i.leaderSays !== undefined) return i.leaderSays;
  return mergeProtect(i.own, i.peerPolicy);
}

/** The families a sending wire puts the pair's packets on. */
export function familiesInUse(wire: WireName): FamilyName[] {
  return wire === 'ipv4' ? ['IPv4'] : wire === 'ipv6' ? ['IPv6'] : ['IPv4', 'IPv6'];
}

/** A latency rise: the newest LATENCY_RISE_RUN RTTs all this far above the median before them (and LATENCY_RISE_MS at least) are a sign of trouble; one spike is not. */
export const LATENCY_RISE_RATIO = 2;
/** How many newest replies in a row must show the rise. */
export const LATENCY_RISE_RUN = 3;
/** The smallest latency rise that counts, ms. */
export const LATENCY_RISE_MS = 10;
/** Replies the median needs before a rise is judged. */
export const LATENCY_RISE_MIN_SAMPLES = 10;

/**
 * Lost probes in a row that count as trouble. One alone is too often a late reply on a loaded
 * host (a starved daemon on either end: the root test on a 2-core VM saw it within 15 s healthy);
 * two cost one more probe interval (20 ms) of detection.
 */
export const SUSPECT_AFTER_LOST = 2;

/**
 * The first sign of trouble on one family, or undefined: SUSPECT_AFTER_LOST probes lost in a row
 * (or a blackhole), the newest RTTs well above the median, or the peer's own measurement saying
 * blackhole. (A reply later than its timeout is not one by itself: it is the same starved host.)
 */
export function familyTrouble(
  path: PathState | undefined,
  peer: FamilyMetrics | undefined,
  _now: number,
  _recentMs: number,
): string | undefined {
  if (peer?.blackhole) return 'peer sees a blackhole';
  if (!path) return undefined;
  if (path.blackhole) return 'blackhole';
  if (path.consecutiveLost >= SUSPECT_AFTER_LOST) return `${path.consecutiveLost} probes lost in a row`;
  const rtts = path.outcomes.recentRtts(64);
  if (rtts.length >= LATENCY_RISE_MIN_SAMPLES + LATENCY_RISE_RUN) {
    const newest = rtts.slice(0, LATENCY_RISE_RUN);
    const sorted = rtts.slice(LATENCY_RISE_RUN).sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1]!;
    const low = Math.min(...newest);
    if (low > Math.max(LATENCY_RISE_RATIO * median, median + LATENCY_RISE_MS))
      return `latency rise (${low.toFixed(1)} ms, median ${median.toFixed(1)} ms)`;
  }
  return undefined;
}

/**
 * The peer's duplication starting (its dup flag false, or unknown, then true) is a sign of trouble
 * for this end too: the two directions of a pair fail together, and the peer's probes may see it
 * a probe interval or more before this node's do — a TCP stream's ACKs, this end's copies, are
 * needed as soon as its data is. Only the edge counts, never the flag itself: the two ends
 * would otherwise keep each other duplicating after both settled.
 */
export function peerStartedTrouble(before: boolean | undefined, now: boolean): string | undefined {
  return now && !before ? 'the peer started duplicating' : undefined;
}

/** on-suspicion's memory of a pair: when trouble was last seen, and why. */
export interface Suspicion {
  lastTroubleAt?: number;
  reason?: string;
}

/**
 * One step of on-suspicion: duplicating from the first sign of trouble on a family the pair
 * uses, until its families have looked healthy for settleMs and the pair's last switch is
 * settleMs old (so a pair that switched off the troubled family stops once it settled).
 */
export function stepSuspicion(
  s: Suspicion,
  trouble: string | undefined,
  lastSwitchAt: number | undefined,
  now: number,
  settleMs: number,
): { state: Suspicion; suspect: boolean } {
  if (trouble) return { state: { lastTroubleAt: now, reason: trouble }, suspect: true };
  if (s.lastTroubleAt === undefined) return { state: s, suspect: false };
  const quietSince = Math.max(s.lastTroubleAt, lastSwitchAt ?? -Infinity);
  if (now - quietSince < settleMs) return { state: s, suspect: true };
  return { state: {}, suspect: false };
}

/** What the peer last said of its side of the pair's protection. */
export interface PeerProtectView {
  /** It has the pair's window (deduplicates the copies it receives). */
  dedup: boolean;
  /** It is sending both copies now. */
  dup: boolean;
  /** It decapsulates this node's tunnelled packets for the pair, and said so recently. */
  decap: boolean;
}

/**
 * What this node writes for the pair (SteeringWriter.setProtection): 'send' when the mode asks
 * for duplication now and the peer confirmed it deduplicates (and decapsulates); else 'dedup'
 * while the pair is protected or the peer still sends copies (its copies are never delivered
 * twice); else 'off'.
 */
export function localProtection(mode: ProtectMode, suspect: boolean, peer: PeerProtectView | undefined): ProtectionMode {
  const wantDup = mode === 'always' || (mode === 'on-suspicion' && suspect);
  if (wantDup && peer?.dedup && peer.decap) return 'send';
  if (mode !== 'off' || peer?.dup) return 'dedup';
  return 'off';
}

/** A pair's protection state on this node. */
export interface PairProtection {
  mode: ProtectMode;
  /** What is in the maps, as this node last wrote or found it. */
  written: ProtectionMode;
  suspicion: Suspicion;
  suspect: boolean;
  lastWire?: string;
  lastSwitchAt?: number;
  /** The peer's dup flag as last seen (its rising edge is a sign of trouble: peerStartedTrouble). */
  peerDup?: boolean;
}
