/**
 * Family selection for one pair, with hysteresis. Pure: (state, metrics, policy, now) → state.
 *
 * - A pair starts native (null: each packet in its own family, no encapsulation).
 * - A family wins when it beats the other by the margin; it must win for `intervals`
 *   consecutive evaluations before the pair moves to it (and the same to move back to native,
 *   when neither wins).
 * - A family the pair just left is held down for holdDownMs: the pair neither moves to it nor
 *   back to native (which uses it) until then.
 * - A blackhole on a family the pair uses switches at once to the other family, if that one is
 *   alive, whatever the hold-down.
 * - Exact ties never win, so two ends that see the same metrics reach the same answer; which end
 *   decides is settled by the negotiation (the leader, see pair.ts).
 */
import { otherName as other } from '../../net/family';
import type { Policy } from '../../policy/schema';
import type { FamilyMetrics, FamilyName } from '../protocol/messages';

/** A pair's preferred family; null = native. */
export type Preference = FamilyName | null;

/** Margins and timers of the selection. */
export interface PolicyParams {
  /** A challenger must be better by this fraction of the current value ... */
  marginRatio: number;
  /** ... and, for lowest-latency, by at least this many ms. */
  latencyMarginMs: number;
  /** lowest-loss: by at least this loss fraction. */
  lossMargin: number;
  /** weighted: by at least this many score points. */
  scoreMargin: number;
  /** Consecutive evaluations a change must win. */
  intervals: number;
  /** How long a family just left is held down. */
  holdDownMs: number;
}

/** Defaults: 20% and 5 ms / 5% loss / 5 points, 3 intervals, 10 s hold-down. */
export const DEFAULT_POLICY_PARAMS: PolicyParams = {
  marginRatio: 0.2,
  latencyMarginMs: 5,
  lossMargin: 0.05,
  scoreMargin: 5,
  intervals: 3,
  holdDownMs: 10_000,
};

/** Default weights of the weighted criterion (per ms latency, per ms jitter, per % loss). */
export const DEFAULT_WEIGHTS = { latency: 1, jitter: 1, loss: 1 };

/** Selection state of one pair. */
export interface SelectionState {
  current: Preference;
  /** The change being considered and for how many consecutive evaluations it has won. */
  candidate?: Preference;
  streak: number;
  heldDown?: { family: FamilyName; until: number };
  /** The last change: when, from what, to what, why. */
  lastChange?: { at: number; from: Preference; to: Preference; reason: string };
}

/** Both families' metrics (a family without metrics cannot be chosen). */
export type PairMetrics = Partial<Record<FamilyName, FamilyMetrics>>;

/** A new pair: native. */
export function initialSelection(current: Preference = null): SelectionState {
  return { current, streak: 0 };
}

const alive = (m: FamilyMetrics | undefined): m is FamilyMetrics => m !== undefined && !m.blackhole;

/** How many standard errors a challenger's figures are held against it (and for the incumbent). */
export const CONFIDENCE_Z = 3;

/**
 * A family's figures taken pessimistically (for a challenger) or optimistically (for the family
 * it must beat): loss moved by CONFIDENCE_Z standard errors of a proportion over `samples`
 * outcomes, latency by CONFIDENCE_Z standard errors of a median (≈ 1.25 σ/√n, σ from the
 * jitter). With few samples the bounds are wide, so noise alone never makes a winner.
 */
export function bounded(m: FamilyMetrics, side: 'pessimistic' | 'optimistic'): FamilyMetrics {
  const n = Math.max(1, m.samples);
  const p = m.packet_loss;
  const seLoss = Math.sqrt(Math.max(p * (1 - p), 0.5 / n) / n);
  const seLat = (1.25 * m.jitter_ms) / Math.sqrt(n);
  const k = side === 'pessimistic' ? CONFIDENCE_Z : -CONFIDENCE_Z;
  return { ...m, packet_loss: Math.min(1, Math.max(0, p + k * seLoss)), latency_ms: Math.max(0, m.latency_ms + k * seLat) };
}

/** The criterion's value of a family's metrics (lower is better). */
export function score(policy: Policy, m: FamilyMetrics): number {
  switch (policy.criterion) {
    case 'lowest-latency':
      return m.latency_ms;
    case 'lowest-loss':
      return m.packet_loss;
    case 'weighted': {
      const w = policy.weights ?? DEFAULT_WEIGHTS;
      return w.latency * m.latency_ms + w.jitter * m.jitter_ms + w.loss * m.packet_loss * 100;
    }
  }
}

/**
 * The family that beats the other by the margin, or null when neither does. A family without
 * metrics or in a blackhole loses to one that is alive (evaluate() only asks when both have
 * metrics). The challenger is scored on its pessimistic bound, the other on its optimistic one.
 */
export function winner(policy: Policy, metrics: PairMetrics, prm: PolicyParams): FamilyName | null {
  const a = metrics.IPv4,
    b = metrics.IPv6;
  if (!alive(a) || !alive(b)) return alive(a) ? 'IPv4' : alive(b) ? 'IPv6' : null;
  const beats = (x: FamilyMetrics, y: FamilyMetrics): boolean => {
    const sx = score(policy, bounded(x, 'pessimistic')),
      sy = score(policy, bounded(y, 'optimistic'));
    const d = sy - sx;
    switch (policy.criterion) {
      case 'lowest-latency':
        return d >= Math.max(prm.latencyMarginMs, prm.marginRatio * score(policy, y));
      case 'lowest-loss':
        return d >= prm.lossMargin;
      case 'weighted':
        return d >= Math.max(prm.scoreMargin, prm.marginRatio * score(policy, y));
    }
  };
  return beats(a, b) ? 'IPv4' : beats(b, a) ? 'IPv6' : null;
}

/** Families whose wire a preference uses (native uses both). */
export function familiesUsed(p: Preference): FamilyName[] {
  return p === null ? ['IPv4', 'IPv6'] : [p];
}

function change(s: SelectionState, to: Preference, now: number, reason: string, prm: PolicyParams): SelectionState {
  // The family left behind: the old preference's, or (from native) the one not chosen.
  const left: FamilyName | undefined = s.current !== null ? s.current : to !== null ? other(to) : undefined;
  return {
    current: to,
    streak: 0,
    ...(left && to !== null && left !== to
      ? { heldDown: { family: left, until: now + prm.holdDownMs } }
      : s.heldDown && s.heldDown.until > now
        ? { heldDown: s.heldDown }
        : {}),
    lastChange: { at: now, from: s.current, to, reason },
  };
}

function fmt(m: FamilyMetrics | undefined): string {
  return m ? `${m.latency_ms}ms/${m.jitter_ms}ms/${(m.packet_loss * 100).toFixed(1)}%` : 'no data';
}

/** One evaluation of a pair's selection. */
export function evaluate(s: SelectionState, metrics: PairMetrics, policy: Policy, now: number, prm: PolicyParams): SelectionState {
  // A family seen dead that the pair does not use stays held down until holdDownMs after it
  // was last seen dead (not merely after it was left): a path that just came back is not trusted yet.
  for (const f of ['IPv4', 'IPv6'] as FamilyName[]) {
    if (metrics[f]?.blackhole && !familiesUsed(s.current).includes(f)) s = { ...s, heldDown: { family: f, until: now + prm.holdDownMs } };
  }
  // Blackhole fast path: a family in use went dark and the other is alive — move now.
  for (const f of familiesUsed(s.current)) {
    if (metrics[f]?.blackhole && alive(metrics[other(f)])) {
      const to = other(f);
      if (s.current === to) break;
      return change(s, to, now, `blackhole on ${f}`, prm);
    }
  }
  // Without metrics for both families (a fresh path, a restarted daemon) nothing else is decided:
  // missing data never moves a pair.
  if (!metrics.IPv4 || !metrics.IPv6) return { ...s, streak: 0, candidate: undefined };
  const held = s.heldDown && s.heldDown.until > now ? s.heldDown.family : undefined;
  let target: Preference = winner(policy, metrics, prm);
  // A held-down family is not chosen, and native (which uses it) waits for the hold-down too.
  if (held && (target === held || target === null)) target = s.current;
  if (target === s.current) return { ...s, streak: 0, candidate: undefined, ...(held ? {} : { heldDown: undefined }) };
  const streak = s.candidate === target ? s.streak + 1 : 1;
  if (streak < prm.intervals) return { ...s, candidate: target, streak };
  const reason =
    target === null
      ? `${policy.criterion}: neither family better by the margin (IPv4 ${fmt(metrics.IPv4)}, IPv6 ${fmt(metrics.IPv6)})`
      : `${policy.criterion}: ${target} better by the margin (IPv4 ${fmt(metrics.IPv4)}, IPv6 ${fmt(metrics.IPv6)})`;
  return change(s, target, now, reason, prm);
}
