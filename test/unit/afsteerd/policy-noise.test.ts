// Noise test of policy.ts fed by probe/path.ts windows: two families with the same latency/loss distribution never cause a switch.
import { describe, expect, it } from 'vitest';
import {
  bounded,
  DEFAULT_POLICY_PARAMS,
  evaluate,
  initialSelection,
  type PairMetrics,
  type SelectionState,
  score,
} from '../../../src/negotiator/pairs/selection';
import {
  DEFAULT_PROBE,
  expireProbes,
  newPath,
  type PathState,
  pathMetrics,
  probeSent,
  replyReceived,
} from '../../../src/negotiator/probing/probe-path';
import type { FamilyName } from '../../../src/negotiator/protocol/messages';
import type { Policy } from '../../../src/policy/schema';
import { type Rng, rng, seedFrom } from '../../support/prng';

const PRM = DEFAULT_POLICY_PARAMS;
const PROBE = DEFAULT_PROBE;
const POLICIES: Policy[] = [{ criterion: 'lowest-latency' }, { criterion: 'lowest-loss' }, { criterion: 'weighted' }];
const EVAL_MS = 100;
const SIM_MS = 30 * 60 * 1000;
const PROBES_PER_EVAL = EVAL_MS / PROBE.activeIntervalMs; // 5
const LOSS = 0.01;

/** One family's path: probes answered after 10 ± 10 ms (uniform), 1% lost. Returns true when it just became a blackhole. */
function probeOnce(p: PathState, clock: { t: number }, r: Rng): boolean {
  const id = probeSent(p, clock.t, true, PROBE);
  let became = false;
  if (r.next() < LOSS) {
    clock.t += 2000; // well past the timeout
    became = expireProbes(p, clock.t, PROBE);
  } else {
    const rtt = r.next() * 20;
    replyReceived(p, id, clock.t + rtt, PROBE);
    clock.t += rtt;
  }
  clock.t += PROBE.activeIntervalMs;
  return became;
}

function marginOf(policy: Policy, worse: number): number {
  switch (policy.criterion) {
    case 'lowest-latency':
      return Math.max(PRM.latencyMarginMs, PRM.marginRatio * worse);
    case 'lowest-loss':
      return PRM.lossMargin;
    case 'weighted':
      return Math.max(PRM.scoreMargin, PRM.marginRatio * worse);
  }
}

/** How far apart the measured scores are, as a fraction of the margin the criterion requires. */
function rawFraction(policy: Policy, metrics: PairMetrics): number {
  const a = score(policy, metrics.IPv4!),
    b = score(policy, metrics.IPv6!);
  return Math.abs(a - b) / marginOf(policy, Math.max(a, b));
}

/** The same as winner() judges it (challenger pessimistic, incumbent optimistic): ≥ 1 is a winning evaluation. */
function effectiveFraction(policy: Policy, metrics: PairMetrics): number {
  const f = (x: typeof metrics.IPv4 & {}, y: typeof metrics.IPv4 & {}): number =>
    (score(policy, bounded(y, 'optimistic')) - score(policy, bounded(x, 'pessimistic'))) / marginOf(policy, score(policy, y));
  return Math.max(f(metrics.IPv4!, metrics.IPv6!), f(metrics.IPv6!, metrics.IPv4!));
}

describe('policy under noise', () => {
  it('identical distributions (10 ± 10 ms, 1% loss), 30 simulated minutes, evaluation every 100 ms: no switch under any criterion', () => {
    const seed = seedFrom(0x0015_e001);
    const r = rng(seed);
    const fams: FamilyName[] = ['IPv4', 'IPv6'];
    const paths: Record<FamilyName, PathState> = { IPv4: newPath(0), IPv6: newPath(0) };
    const clocks: Record<FamilyName, { t: number }> = { IPv4: { t: 0 }, IPv6: { t: 0 } };
    // Warm up: full windows.
    for (const f of fams) for (let i = 0; i < PROBE.window; i++) probeOnce(paths[f], clocks[f], r);
    const sel: SelectionState[] = POLICIES.map(() => initialSelection());
    const switches = POLICIES.map(() => 0);
    const maxFrac = POLICIES.map(() => -Infinity);
    const maxRaw = POLICIES.map(() => 0);
    const maxDiff = POLICIES.map(() => 0);
    let blackholes = 0;
    let evaluations = 0;
    const metrics = (): PairMetrics => ({ IPv4: pathMetrics(paths.IPv4)!, IPv6: pathMetrics(paths.IPv6)! });
    const evalAll = (now: number): void => {
      const mt = metrics();
      evaluations++;
      POLICIES.forEach((policy, i) => {
        if (!mt.IPv4!.blackhole && !mt.IPv6!.blackhole) {
          maxFrac[i] = Math.max(maxFrac[i]!, effectiveFraction(policy, mt));
          maxRaw[i] = Math.max(maxRaw[i]!, rawFraction(policy, mt));
          maxDiff[i] = Math.max(maxDiff[i]!, Math.abs(score(policy, mt.IPv4!) - score(policy, mt.IPv6!)));
        }
        const n = evaluate(sel[i]!, mt, policy, now, PRM);
        if (n.current !== sel[i]!.current) {
          switches[i]!++;
          console.log(`switch (${policy.criterion}) at ${now} ms: ${n.lastChange?.reason}`);
        }
        sel[i] = n;
      });
    };
    for (let now = 0; now < SIM_MS; now += EVAL_MS) {
      for (let k = 0; k < PROBES_PER_EVAL; k++) {
        for (const f of fams) {
          // As the daemon's probe tick: a path that just became a blackhole is evaluated at once.
          if (probeOnce(paths[f], clocks[f], r)) {
            blackholes++;
            evalAll(now + k * PROBE.activeIntervalMs);
          }
        }
      }
      evalAll(now);
    }
    const report = POLICIES.map(
      (p, i) =>
        `${p.criterion}: switches ${switches[i]}, max measured |Δscore| ${maxDiff[i]!.toFixed(3)} = ${(100 * maxRaw[i]!).toFixed(1)}% of the margin, max as judged (confidence-bounded) ${(100 * maxFrac[i]!).toFixed(1)}% of the margin`,
    );
    console.log(
      `noise (seed ${seed}, ${evaluations} evaluations, ${SIM_MS / PROBE.activeIntervalMs} probes per family, false blackholes ${blackholes}):\n  ${report.join('\n  ')}`,
    );
    expect(switches, `seed ${seed}`).toEqual([0, 0, 0]);
    for (const f of maxFrac) expect(f).toBeLessThan(1);
  }, 60_000);
});
