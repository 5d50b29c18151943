// Unit tests of policy.ts: score(), winner() margins per criterion, and evaluate() hysteresis, hold-down and blackhole fast path.
import { describe, expect, it } from 'vitest';
import {
  bounded,
  DEFAULT_POLICY_PARAMS,
  evaluate,
  familiesUsed,
  initialSelection,
  type PairMetrics,
  type PolicyParams,
  type Preference,
  type SelectionState,
  score,
  winner,
} from '../../../src/negotiator/pairs/selection';
import type { FamilyMetrics } from '../../../src/negotiator/protocol/messages';
import type { Policy } from '../../../src/policy/schema';

const PRM: PolicyParams = { ...DEFAULT_POLICY_PARAMS };
const LAT: Policy = { criterion: 'lowest-latency' };
const LOSS: Policy = { criterion: 'lowest-loss' };
const WEIGHTED: Policy = { criterion: 'weighted' };
const EVAL = 100; // ms between evaluations

/** Many samples (the most the protocol allows): confidence bounds negligible, and zero with jitter 0 for latency. */
const N = 1_000_000;
const m = (latency_ms: number, packet_loss = 0, jitter_ms = 0, blackhole = false, samples = N): FamilyMetrics => ({
  latency_ms,
  jitter_ms,
  packet_loss,
  blackhole,
  samples,
});
const BH = m(0, 1, 0, true);
const GOOD = m(5),
  BAD = m(50);

/** Runs evaluations every EVAL ms from t (inclusive) while t < until; returns the state and the time after. */
function run(
  s: SelectionState,
  metrics: PairMetrics,
  policy: Policy,
  t: number,
  until: number,
  prm = PRM,
): { s: SelectionState; t: number; changes: { at: number; to: Preference }[] } {
  const changes: { at: number; to: Preference }[] = [];
  for (; t < until; t += EVAL) {
    const n = evaluate(s, metrics, policy, t, prm);
    if (n.current !== s.current) changes.push({ at: t, to: n.current });
    s = n;
  }
  return { s, t, changes };
}

/** The time of the first evaluation (every EVAL ms from t) that moves the pair, or undefined within limit. */
function firstChange(
  s: SelectionState,
  metrics: PairMetrics,
  policy: Policy,
  t: number,
  limit = 60_000,
): { at: number; s: SelectionState } | undefined {
  for (const end = t + limit; t < end; t += EVAL) {
    const n = evaluate(s, metrics, policy, t, PRM);
    if (n.current !== s.current) return { at: t, s: n };
    s = n;
  }
  return undefined;
}

describe('score', () => {
  it('per criterion; weighted uses ms latency + ms jitter + % loss, with given or default weights', () => {
    const x = m(10, 0.02, 3);
    expect(score(LAT, x)).toBe(10);
    expect(score(LOSS, x)).toBe(0.02);
    expect(score(WEIGHTED, x)).toBeCloseTo(10 + 3 + 2, 9);
    expect(score({ criterion: 'weighted', weights: { latency: 2, jitter: 0, loss: 10 } }, x)).toBeCloseTo(20 + 0 + 20, 9);
  });
});

describe('winner: margins', () => {
  it('lowest-latency: better by max(5 ms, 20% of the worse value), inclusive', () => {
    expect(winner(LAT, { IPv4: m(10), IPv6: m(15) }, PRM)).toBe('IPv4'); // 5 ≥ max(5, 3)
    expect(winner(LAT, { IPv4: m(10), IPv6: m(14.9) }, PRM)).toBeNull();
    expect(winner(LAT, { IPv4: m(16), IPv6: m(10) }, PRM)).toBe('IPv6');
    expect(winner(LAT, { IPv4: m(100), IPv6: m(124) }, PRM)).toBeNull(); // 24 < 20% of 124
    expect(winner(LAT, { IPv4: m(100), IPv6: m(125) }, PRM)).toBe('IPv4'); // 25 ≥ 25
    expect(winner(LAT, { IPv4: m(125), IPv6: m(100) }, PRM)).toBe('IPv6');
    // Loss and jitter do not count.
    expect(winner(LAT, { IPv4: m(10, 0.5, 50), IPv6: m(20) }, PRM)).toBe('IPv4');
  });

  it('lowest-loss: better by at least 5 percentage points', () => {
    expect(winner(LOSS, { IPv4: m(100, 0), IPv6: m(1, 0.051) }, PRM)).toBe('IPv4');
    expect(winner(LOSS, { IPv4: m(100, 0.01), IPv6: m(1, 0.059) }, PRM)).toBeNull();
    expect(winner(LOSS, { IPv4: m(1, 0.5), IPv6: m(100, 0.25) }, PRM)).toBe('IPv6');
    expect(winner(LOSS, { IPv4: m(1, 0.3), IPv6: m(100, 0.27) }, PRM)).toBeNull();
  });

  it('weighted: better by max(5 points, 20% of the worse score), with the weights given', () => {
    // Default weights: 10 + 1 + 0 = 11 vs 10 + 1 + 5.5 (5.5% loss) = 16.5 → 5.5 ≥ max(5, 3.3).
    expect(winner(WEIGHTED, { IPv4: m(10, 0, 1), IPv6: m(10, 0.055, 1) }, PRM)).toBe('IPv4');
    expect(winner(WEIGHTED, { IPv4: m(10, 0, 1), IPv6: m(10, 0.04, 1) }, PRM)).toBeNull();
    // Jitter alone: 10 + 2 vs 10 + 9.
    expect(winner(WEIGHTED, { IPv4: m(10, 0, 9), IPv6: m(10, 0, 2) }, PRM)).toBe('IPv6');
    // Large scores: the 20% term dominates (100 vs 124 → null, vs 126 → IPv4).
    expect(winner(WEIGHTED, { IPv4: m(100), IPv6: m(124) }, PRM)).toBeNull();
    expect(winner(WEIGHTED, { IPv4: m(100), IPv6: m(126) }, PRM)).toBe('IPv4');
    // Weights change the answer: loss-only weights ignore a large latency gap.
    const lossOnly: Policy = { criterion: 'weighted', weights: { latency: 0, jitter: 0, loss: 1 } };
    expect(winner(lossOnly, { IPv4: m(10), IPv6: m(500) }, PRM)).toBeNull();
    expect(winner(lossOnly, { IPv4: m(500, 0.2), IPv6: m(10, 0.1) }, PRM)).toBe('IPv6'); // 20 vs 10 points
    const jitterHeavy: Policy = { criterion: 'weighted', weights: { latency: 1, jitter: 10, loss: 0 } };
    expect(winner(jitterHeavy, { IPv4: m(10, 0, 0), IPv6: m(8, 0, 1) }, PRM)).toBe('IPv4'); // 10 vs 18
    expect(winner(WEIGHTED, { IPv4: m(10, 0, 0), IPv6: m(8, 0, 1) }, PRM)).toBeNull(); // 10 vs 9
  });

  it('few samples widen the bounds: a difference beyond the margin wins only when enough outcomes back it', () => {
    // 0% vs 8% loss: a winner over 1000 outcomes, not over 20.
    expect(winner(LOSS, { IPv4: m(1, 0, 0, false, 1000), IPv6: m(1, 0.08, 0, false, 1000) }, PRM)).toBe('IPv4');
    expect(winner(LOSS, { IPv4: m(1, 0, 0, false, 20), IPv6: m(1, 0.08, 0, false, 20) }, PRM)).toBeNull();
    // 10 vs 20 ms with 10 ms jitter: a winner over 10 000 outcomes, not over 4.
    expect(winner(LAT, { IPv4: m(10, 0, 10, false, 10_000), IPv6: m(20, 0, 10, false, 10_000) }, PRM)).toBe('IPv4');
    expect(winner(LAT, { IPv4: m(10, 0, 10, false, 4), IPv6: m(20, 0, 10, false, 4) }, PRM)).toBeNull();
    // No samples at all: nothing wins on figures alone.
    expect(winner(WEIGHTED, { IPv4: m(1, 0, 1, false, 0), IPv6: m(30, 0.2, 30, false, 0) }, PRM)).toBeNull();
  });

  it('bounded: pessimistic ≥ measured ≥ optimistic, loss within [0, 1], latency ≥ 0', () => {
    for (const x of [m(0), m(10, 0.5, 3, false, 1), m(1, 1, 100, false, 0), m(5, 0.001, 0.5, false, 200), m(60000, 0, 60000, false, 50)]) {
      const hi = bounded(x, 'pessimistic'),
        lo = bounded(x, 'optimistic');
      expect(hi.latency_ms).toBeGreaterThanOrEqual(x.latency_ms);
      expect(lo.latency_ms).toBeLessThanOrEqual(x.latency_ms);
      expect(hi.packet_loss).toBeGreaterThanOrEqual(x.packet_loss);
      expect(lo.packet_loss).toBeLessThanOrEqual(x.packet_loss);
      for (const y of [hi, lo]) {
        expect(y.packet_loss).toBeGreaterThanOrEqual(0);
        expect(y.packet_loss).toBeLessThanOrEqual(1);
        expect(y.latency_ms).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(y.latency_ms)).toBe(true);
        expect(y.blackhole).toBe(x.blackhole);
      }
    }
  });

  it('exact ties never win', () => {
    for (const policy of [LAT, LOSS, WEIGHTED]) {
      for (const x of [m(0), m(10, 0.1, 2), m(60000, 1, 60000)]) expect(winner(policy, { IPv4: x, IPv6: { ...x } }, PRM)).toBeNull();
    }
  });

  it('a blackholed family never wins', () => {
    for (const policy of [LAT, LOSS, WEIGHTED]) {
      expect(winner(policy, { IPv4: BH, IPv6: BAD }, PRM)).toBe('IPv6');
      expect(winner(policy, { IPv4: GOOD, IPv6: { ...GOOD, blackhole: true } }, PRM)).toBe('IPv4');
      expect(winner(policy, { IPv4: BH, IPv6: BH }, PRM)).toBeNull();
    }
  });

  it('a family without metrics is never the winner', () => {
    for (const policy of [LAT, LOSS, WEIGHTED]) {
      expect(winner(policy, {}, PRM)).toBeNull();
      expect(winner(policy, { IPv4: GOOD }, PRM)).not.toBe('IPv6');
      expect(winner(policy, { IPv6: GOOD }, PRM)).not.toBe('IPv4');
    }
  });
});

describe('evaluate: consecutive intervals', () => {
  it.each([
    ['lowest-latency', LAT, { IPv4: m(30), IPv6: m(10) }],
    ['lowest-loss', LOSS, { IPv4: m(10, 0.2), IPv6: m(10, 0.01) }],
    ['weighted', WEIGHTED, { IPv4: m(10, 0, 20), IPv6: m(10, 0, 1) }],
  ] as const)('%s: a clear winner takes exactly `intervals` evaluations', (_n, policy, metrics) => {
    let s = initialSelection();
    for (let i = 1; i < PRM.intervals; i++) {
      s = evaluate(s, metrics, policy, i * EVAL, PRM);
      expect(s.current).toBeNull();
      expect(s.candidate).toBe('IPv6');
      expect(s.streak).toBe(i);
    }
    s = evaluate(s, metrics, policy, PRM.intervals * EVAL, PRM);
    expect(s.current).toBe('IPv6');
    expect(s.streak).toBe(0);
    expect(s.lastChange).toMatchObject({ at: PRM.intervals * EVAL, from: null, to: 'IPv6' });
    expect(s.lastChange!.reason).toContain(policy.criterion);
    // Moving native → IPv6 leaves IPv4: held down.
    expect(s.heldDown).toEqual({ family: 'IPv4', until: PRM.intervals * EVAL + PRM.holdDownMs });
  });

  it('within the margin: native stays native however long; a family goes back to native after `intervals`', () => {
    for (const [policy, metrics] of [
      [LAT, { IPv4: m(10), IPv6: m(14.99) }],
      [LOSS, { IPv4: m(1, 0.0), IPv6: m(1, 0.0499) }],
      [WEIGHTED, { IPv4: m(10, 0, 0), IPv6: m(10, 0.02, 2.9) }],
    ] as const) {
      expect(run(initialSelection(), metrics, policy, 0, 60_000).changes, policy.criterion).toEqual([]);
      // No hold-down: neither wins → native after `intervals` evaluations, then stays.
      expect(run(initialSelection('IPv4'), metrics, policy, 0, 60_000).changes, policy.criterion).toEqual([
        { at: (PRM.intervals - 1) * EVAL, to: null },
      ]);
    }
  });

  it('a broken streak restarts (by a tie or by the other family winning)', () => {
    const v6 = { IPv4: m(30), IPv6: m(10) },
      tie = { IPv4: m(10), IPv6: m(10) },
      v4 = { IPv4: m(10), IPv6: m(30) };
    const seq = [v6, v6, tie, v6, v6, v4, v6, v6];
    let s = initialSelection('IPv4');
    // From IPv4: v6 twice, a tie (target native, a different candidate), v6 twice, v4 (current: reset), v6 twice: never 3 in a row.
    seq.forEach((x, i) => {
      s = evaluate(s, x, LAT, i * EVAL, PRM);
      expect(s.current, `step ${i}`).toBe('IPv4');
    });
    s = evaluate(s, v6, LAT, seq.length * EVAL, PRM);
    expect(s.current).toBe('IPv6');
    // From native: v6, v6, v4 (a new candidate, streak 1), v4, v6 → still native.
    let n = initialSelection();
    for (const [i, x] of [v6, v6, v4, v4, v6].entries()) n = evaluate(n, x, LAT, i * EVAL, PRM);
    expect(n.current).toBeNull();
    expect(n).toMatchObject({ candidate: 'IPv6', streak: 1 });
  });

  it('intervals = 1 moves at once', () => {
    const s = evaluate(initialSelection(), { IPv4: m(30), IPv6: m(10) }, LAT, 0, { ...PRM, intervals: 1 });
    expect(s.current).toBe('IPv6');
  });
});

describe('evaluate: hold-down', () => {
  it('blocks moving to the family just left until it expires', () => {
    // native → IPv6 at t=200 (IPv4 held until 10 200); then IPv4 is far better.
    const { s, t, changes } = run(initialSelection(), { IPv4: m(30), IPv6: m(10) }, LAT, 0, 3 * EVAL);
    expect(changes).toEqual([{ at: 200, to: 'IPv6' }]);
    const leftAt = 200;
    const r = firstChange(s, { IPv4: m(1), IPv6: m(50) }, LAT, t);
    // Not held at until (until > now is false), then `intervals` wins.
    expect(r).toMatchObject({ at: leftAt + PRM.holdDownMs + (PRM.intervals - 1) * EVAL, s: { current: 'IPv4' } });
    // IPv4 → … the pair left IPv6: now IPv6 is held.
    expect(r!.s.heldDown).toEqual({ family: 'IPv6', until: r!.at + PRM.holdDownMs });
  });

  it('blocks returning to native (which uses the held family) until it expires', () => {
    const { s, t } = run(initialSelection(), { IPv4: m(30), IPv6: m(10) }, LAT, 0, 3 * EVAL);
    expect(s.current).toBe('IPv6');
    const r = firstChange(s, { IPv4: m(10), IPv6: m(10) }, LAT, t);
    expect(r).toMatchObject({ at: 200 + PRM.holdDownMs + (PRM.intervals - 1) * EVAL, s: { current: null } });
    expect(r!.s.heldDown).toBeUndefined(); // expired and left behind; native holds nothing
  });

  it('a pair that keeps winning stays put through the hold-down; the expired hold-down is then cleared', () => {
    const { s, t } = run(initialSelection('IPv4'), { IPv4: m(30), IPv6: m(10) }, LAT, 0, 3 * EVAL);
    expect(s.current).toBe('IPv6');
    expect(s.heldDown).toEqual({ family: 'IPv4', until: 200 + PRM.holdDownMs });
    const r = run(s, { IPv4: m(30), IPv6: m(10) }, LAT, t, 200 + PRM.holdDownMs + 5 * EVAL);
    expect(r.changes).toEqual([]);
    expect(r.s.heldDown).toBeUndefined();
    expect(r.s.streak).toBe(0);
  });

  it('a family blackholed while unused stays held down until holdDownMs after it was last seen blackholed', () => {
    const { s: s0, t: t0 } = run(initialSelection(), { IPv4: m(30), IPv6: m(10) }, LAT, 0, 3 * EVAL); // → IPv6 at 200
    expect(s0.current).toBe('IPv6');
    // IPv4 (unused) stays dark until 5 s after the original hold-down would have expired.
    const darkUntil = 200 + PRM.holdDownMs + 5000;
    const { s, t, changes } = run(s0, { IPv4: BH, IPv6: m(10) }, LAT, t0, darkUntil);
    expect(changes).toEqual([]);
    const lastSeenDark = t - EVAL;
    expect(s.heldDown).toEqual({ family: 'IPv4', until: lastSeenDark + PRM.holdDownMs });
    // IPv4 is back, and far better: not trusted before lastSeenDark + holdDownMs.
    const r = firstChange(s, { IPv4: m(1), IPv6: m(50) }, LAT, t);
    expect(r).toMatchObject({ at: lastSeenDark + PRM.holdDownMs + (PRM.intervals - 1) * EVAL, s: { current: 'IPv4' } });
  });

  it('a family blackholed while the pair is on the other one is held down even without a previous move', () => {
    let s = initialSelection('IPv6');
    s = evaluate(s, { IPv4: BH, IPv6: m(10) }, LAT, 1000, PRM);
    expect(s.current).toBe('IPv6');
    expect(s.heldDown).toEqual({ family: 'IPv4', until: 1000 + PRM.holdDownMs });
    const r = firstChange(s, { IPv4: m(1), IPv6: m(50) }, LAT, 1100);
    expect(r?.at).toBe(1000 + PRM.holdDownMs + (PRM.intervals - 1) * EVAL);
  });
});

describe('evaluate: blackhole fast path', () => {
  it.each([LAT, LOSS, WEIGHTED])('a used family going dark moves at once to the other ($criterion)', (policy) => {
    // native uses both: IPv4 dark → IPv6.
    let s = evaluate(initialSelection(), { IPv4: BH, IPv6: m(50, 0.04, 10) }, policy, 500, PRM);
    expect(s.current).toBe('IPv6');
    expect(s.lastChange).toMatchObject({ at: 500, from: null, to: 'IPv6', reason: 'blackhole on IPv4' });
    expect(s.heldDown).toEqual({ family: 'IPv4', until: 500 + PRM.holdDownMs });
    // native: IPv6 dark → IPv4.
    s = evaluate(initialSelection(), { IPv4: m(50), IPv6: BH }, policy, 500, PRM);
    expect(s.current).toBe('IPv4');
    // On IPv4: IPv4 dark → IPv6.
    s = evaluate(initialSelection('IPv4'), { IPv4: BH, IPv6: m(50) }, policy, 500, PRM);
    expect(s.current).toBe('IPv6');
    expect(s.heldDown).toEqual({ family: 'IPv4', until: 500 + PRM.holdDownMs });
  });

  it('even against a hold-down on the other family, and even mid-streak', () => {
    // → IPv4 at 200 (IPv6 held until 10 200).
    let { s, t } = run(initialSelection(), { IPv4: m(10), IPv6: m(30) }, LAT, 0, 3 * EVAL);
    expect(s.current).toBe('IPv4');
    expect(s.heldDown?.family).toBe('IPv6');
    s = evaluate(s, { IPv4: BH, IPv6: m(30) }, LAT, t, PRM);
    expect(s.current).toBe('IPv6');
    expect(s.lastChange?.reason).toBe('blackhole on IPv4');
    expect(s.heldDown).toEqual({ family: 'IPv4', until: t + PRM.holdDownMs });
  });

  it('does not move when the other family is dark too, or has no metrics', () => {
    for (const cur of [null, 'IPv4', 'IPv6'] as Preference[]) {
      for (const metrics of [{ IPv4: BH, IPv6: BH }, { IPv4: BH }, { IPv6: BH }] as PairMetrics[]) {
        const r = run(initialSelection(cur), metrics, LAT, 0, 30_000);
        expect(r.changes, `${cur} ${JSON.stringify(metrics)}`).toEqual([]);
      }
    }
  });

  it('an unused family going dark changes nothing', () => {
    for (const policy of [LAT, LOSS, WEIGHTED]) {
      expect(run(initialSelection('IPv6'), { IPv4: BH, IPv6: m(100, 0.3, 50) }, policy, 0, 30_000).changes).toEqual([]);
      expect(run(initialSelection('IPv4'), { IPv4: m(100, 0.3, 50), IPv6: BH }, policy, 0, 30_000).changes).toEqual([]);
    }
  });
});

describe('evaluate: missing metrics', () => {
  it('a family without metrics is never chosen', () => {
    for (const policy of [LAT, LOSS, WEIGHTED]) {
      for (const cur of [null, 'IPv4'] as Preference[]) {
        const r = run(initialSelection(cur), { IPv4: m(100, 0.5, 50) }, policy, 0, 30_000);
        expect(r.s.current, `${policy.criterion} from ${cur}`).not.toBe('IPv6');
        expect(r.changes.some((c) => c.to === 'IPv6')).toBe(false);
      }
      const r = run(initialSelection(), {}, policy, 0, 30_000);
      expect(r.changes).toEqual([]);
    }
  });

  it('as documented ("a family without metrics cannot be chosen" / winner null when one has none): a pair does not leave native on one family\'s metrics alone', () => {
    for (const policy of [LAT, LOSS, WEIGHTED]) {
      expect(run(initialSelection(), { IPv4: m(1) }, policy, 0, 30_000).changes, policy.criterion).toEqual([]);
      expect(run(initialSelection(), { IPv6: m(1) }, policy, 0, 30_000).changes, policy.criterion).toEqual([]);
    }
  });
});

describe('familiesUsed', () => {
  it('native uses both, a family itself', () => {
    expect(familiesUsed(null)).toEqual(['IPv4', 'IPv6']);
    expect(familiesUsed('IPv4')).toEqual(['IPv4']);
    expect(familiesUsed('IPv6')).toEqual(['IPv6']);
  });
});
