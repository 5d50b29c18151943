/**
 * One probed path (this node → a peer node, over one family): probes in flight, a sliding window
 * of outcomes, the metrics derived from it and blackhole detection. Pure, clock injected (ms).
 */
import { randomInt } from 'node:crypto';
import type { FamilyMetrics } from '../protocol/messages';
import { OutcomeWindow } from './outcome-window';
import type { DemandState } from './traffic-proof';

/** Probing parameters (from the daemon config). */
export interface ProbeParams {
  /** Interval toward peers with active pairs. */
  activeIntervalMs: number;
  /** Interval toward idle peers (≥ 1000: at most one probe per second per family). */
  idleIntervalMs: number;
  /** Outcomes kept for latency, jitter and loss. */
  window: number;
  /** Consecutive losses that make a blackhole. */
  blackholeAfter: number;
  /** Lower bound of the per-probe timeout. */
  minTimeoutMs: number;
}

/** Default probing parameters: a blackhole is declared ≤ 2 × 20 + 40 + 20 ms after it starts on a fast path. */
export const DEFAULT_PROBE: ProbeParams = { activeIntervalMs: 20, idleIntervalMs: 1000, window: 200, blackholeAfter: 3, minTimeoutMs: 40 };

/** Outcomes a path needs before a pair over it is judged on anything but a blackhole. */
export const DEFAULT_MIN_SAMPLES = 50;

/** State of one path. */
export interface PathState {
  /** Random per path; echoed by the reflector (see protocol/probe.ts). */
  nonce: number;
  nextId: number;
  nextSendAt: number;
  /** Probe id → send time. */
  inFlight: Map<number, number>;
  /** Outcomes, oldest first: an RTT in ms, or a loss (outcome-window.ts). */
  outcomes: OutcomeWindow;
  consecutiveLost: number;
  blackhole: boolean;
  lastReplyAt?: number;
  sent: number;
  received: number;
  /** Probes already counted lost (id → send time), the last 64, so a late reply is recognised. */
  expired: Map<number, number>;
  /** Send time of the first probe of the current run of losses. */
  streakSentAt?: number;
  /** Replies that came after their probe was counted lost, and the largest such RTT lately. */
  late: number;
  lateRttMs?: number;
  lateAt?: number;
  /** Outcomes pushed so far (pathMetrics' cache key). */
  pushes?: number;
  /** pathMetrics' cache: the metrics as of a count of outcomes and a blackhole flag. */
  metricsAt?: { pushes: number; blackhole: boolean; m: FamilyMetrics };
  /** Demand-style probing's state (traffic-proof.ts), once the path's peer has pairs and the data plane says what they carry. */
  demand?: DemandState;
}

/** How long a late reply keeps lifting the probe timeout. */
export const LATE_MEMORY_MS = 10_000;

/** A new path, first probe due now. */
export function newPath(now: number, nonce = randomInt(0, 0x100000000)): PathState {
  return {
    nonce,
    nextId: 1,
    nextSendAt: now,
    inFlight: new Map(),
    outcomes: new OutcomeWindow(),
    consecutiveLost: 0,
    blackhole: false,
    sent: 0,
    received: 0,
    expired: new Map(),
    late: 0,
  };
}

/** True when a probe should go out now; active selects the fast interval. */
export function probeDue(p: PathState, now: number): boolean {
  return now >= p.nextSendAt;
}

/** Records a probe sent now; returns its id. The next one is due one interval later (active: the fast interval). */
export function probeSent(p: PathState, now: number, active: boolean, prm: ProbeParams): number {
  return probeSentEvery(p, now, active ? prm.activeIntervalMs : prm.idleIntervalMs);
}

/** Records a probe sent at sentAt (default now: the tick's time, which keeps the cadence); returns its id. The next one is due intervalMs later. */
export function probeSentEvery(p: PathState, now: number, intervalMs: number, sentAt = now): number {
  const id = p.nextId;
  p.nextId = (p.nextId % 0xffffffff) + 1;
  p.inFlight.set(id, sentAt);
  p.sent++;
  // Keep the cadence when the caller's tick was a little late; restart it after a long gap.
  p.nextSendAt = (now - p.nextSendAt < intervalMs ? p.nextSendAt : now) + intervalMs;
  return id;
}

/** Makes the next probe due at once (a peer just became active). */
export function probeSoon(p: PathState, now: number): void {
  p.nextSendAt = Math.min(p.nextSendAt, now);
}

function push(p: PathState, v: number | null, prm: ProbeParams): void {
  p.pushes = (p.pushes ?? 0) + 1;
  p.outcomes.push(v, prm.window);
}

/**
 * A reply for probe id arrived now: returns its RTT, or undefined for an unknown or expired id.
 * A reply to a probe already counted lost stays a loss in the window, but it proves the path
 * delivers (no blackhole) and lifts the timeout to 1.5 × its RTT for LATE_MEMORY_MS: a sudden
 * rise in latency beyond the timeout is not taken for a blackhole twice.
 */
export function replyReceived(p: PathState, id: number, now: number, prm: ProbeParams): number | undefined {
  const sentAt = p.inFlight.get(id);
  if (sentAt === undefined) {
    const lostAt = p.expired.get(id);
    if (lostAt === undefined) return undefined;
    p.expired.delete(id);
    const rtt = Math.max(0, now - lostAt);
    p.late++;
    p.lateRttMs = p.lateAt !== undefined && now - p.lateAt < LATE_MEMORY_MS ? Math.max(p.lateRttMs ?? 0, rtt) : rtt;
    p.lateAt = now;
    // Only a probe of the current run of losses says the path delivers *now*; an older one's
    // late reply (sent before a blackhole began) proves nothing about it.
    if (p.streakSentAt !== undefined && lostAt >= p.streakSentAt) {
      p.consecutiveLost = 0;
      p.streakSentAt = undefined;
      p.blackhole = false;
    }
    return undefined;
  }
  p.inFlight.delete(id);
  const rtt = Math.max(0, now - sentAt);
  push(p, rtt, prm);
  p.consecutiveLost = 0;
  p.streakSentAt = undefined;
  p.blackhole = false;
  p.lastReplyAt = now;
  p.received++;
  return rtt;
}

/** How far late replies may lift the timeout, as a multiple of minTimeoutMs (keeps blackhole detection bounded). */
export const LATE_LIFT_CAP = 2.5;

/** Per-probe timeout: three times the median RTT plus slack, at least minTimeoutMs (and 1.5 × a recent late reply's RTT, up to LATE_LIFT_CAP × minTimeoutMs), at most 2 s. */
export function probeTimeout(p: PathState, prm: ProbeParams, now?: number): number {
  const med = p.outcomes.median();
  const late =
    p.lateRttMs !== undefined && p.lateAt !== undefined && now !== undefined && now - p.lateAt < LATE_MEMORY_MS
      ? Math.min(1.5 * p.lateRttMs, LATE_LIFT_CAP * prm.minTimeoutMs)
      : 0;
  return Math.min(2000, Math.max(prm.minTimeoutMs, 3 * med + 10, late));
}

/** Chance, per probe, that random loss alone is taken for a blackhole (sets the adaptive threshold). */
export const FALSE_BLACKHOLE_ODDS = 1e-6;

/**
 * Consecutive losses that make a blackhole on this path: blackholeAfter on a clean path; more on
 * a lossy one, so that random loss at the window's rate (before the current run of losses) makes
 * that many in a row with odds below FALSE_BLACKHOLE_ODDS. Capped at 4 × blackholeAfter.
 */
export function blackholeThreshold(p: PathState, prm: ProbeParams): number {
  const n = p.outcomes.length - p.consecutiveLost;
  if (n < 20) return prm.blackholeAfter;
  const lost = p.outcomes.lostAmongFirst(n);
  if (lost === 0) return prm.blackholeAfter;
  const rate = Math.min(0.9, lost / n);
  const need = Math.ceil(Math.log(FALSE_BLACKHOLE_ODDS) / Math.log(rate));
  return Math.min(4 * prm.blackholeAfter, Math.max(prm.blackholeAfter, need));
}

/** Expires probes older than the timeout as losses; returns true when the path just became a blackhole. */
export function expireProbes(p: PathState, now: number, prm: ProbeParams): boolean {
  // The oldest probe in flight comes first (ids go in in send order); none old enough: nothing to do.
  if (p.inFlight.size === 0) return false;
  const oldest = p.inFlight.values().next();
  if (oldest.done || now - oldest.value < prm.minTimeoutMs) return false;
  const timeout = probeTimeout(p, prm, now);
  let became = false;
  for (const [id, sentAt] of p.inFlight) {
    if (now - sentAt < timeout) continue;
    p.inFlight.delete(id);
    p.expired.set(id, sentAt);
    if (p.expired.size > 64) p.expired.delete(p.expired.keys().next().value!);
    push(p, null, prm);
    if (p.consecutiveLost === 0) p.streakSentAt = sentAt;
    p.consecutiveLost++;
    if (!p.blackhole && p.consecutiveLost >= blackholeThreshold(p, prm)) {
      p.blackhole = true;
      became = true;
    }
  }
  return became;
}

/** Latency (median RTT), jitter (mean absolute difference of successive RTTs) and loss over the window. */
export function pathMetrics(p: PathState): FamilyMetrics | undefined {
  if (p.outcomes.length === 0) return undefined;
  // The window changes only with an outcome (and the flag with a late reply): computed once per change, not per read.
  const c = p.metricsAt;
  if (c && c.pushes === (p.pushes ?? 0) && c.blackhole === p.blackhole) return { ...c.m };
  const m = computeMetrics(p);
  p.metricsAt = { pushes: p.pushes ?? 0, blackhole: p.blackhole, m };
  return { ...m };
}

function computeMetrics(p: PathState): FamilyMetrics {
  const w = p.outcomes;
  return {
    latency_ms: round3(w.median()),
    jitter_ms: round3(w.jitter()),
    packet_loss: round3(w.lost / w.length),
    blackhole: p.blackhole,
    samples: w.length,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
