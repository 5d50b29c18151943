/** The typed-array window of probe outcomes (src/negotiator/probing/outcome-window.ts) against a plain array and sort, over random sequences. */
import { describe, expect, it } from 'vitest';
import { OutcomeWindow } from '../../../src/negotiator/probing/outcome-window';
import { rng } from '../../support/prng';

/** What the window computed before it was typed arrays: filter, sort, successive differences. */
function naive(xs: (number | null)[]) {
  const rtts = xs.filter((x): x is number => x !== null);
  const s = [...rtts].sort((a, b) => a - b);
  const m = s.length >> 1;
  let j = 0;
  for (let i = 1; i < rtts.length; i++) j += Math.abs(rtts[i]! - rtts[i - 1]!);
  return {
    median: s.length === 0 ? 0 : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2,
    jitter: rtts.length > 1 ? j / (rtts.length - 1) : 0,
    lost: xs.length - rtts.length,
  };
}

describe('OutcomeWindow', () => {
  it('median, jitter, losses and order agree with a plain array over 5,000 random outcomes (ties, losses, eviction)', () => {
    const r = rng(26);
    const w = new OutcomeWindow();
    const all: (number | null)[] = [];
    for (let k = 0; k < 5000; k++) {
      const v = r.next() < 0.1 ? null : r.next() < 0.2 ? 1.5 : Math.round(r.next() * 1000) / 100;
      w.push(v, 200);
      all.push(v);
      const last = all.slice(-200);
      if (k % 97 === 0 || k > 4990) {
        const n = naive(last);
        expect(w.length).toBe(last.length);
        expect(w.median()).toBe(n.median);
        expect(w.jitter()).toBeCloseTo(n.jitter, 9);
        expect(w.lost).toBe(n.lost);
        expect(w.toArray()).toEqual(last);
        expect(w.lostAmongFirst(50)).toBe(last.slice(0, 50).filter((x) => x === null).length);
        expect(w.recentRtts(5)).toEqual(
          last
            .filter((x): x is number => x !== null)
            .slice(-5)
            .reverse(),
        );
      }
    }
  });

  it('an empty window: median and jitter 0; a window that shrinks keeps its newest outcomes', () => {
    const w = new OutcomeWindow();
    expect(w.median()).toBe(0);
    expect(w.jitter()).toBe(0);
    for (const v of [1, 2, null, 4, 5]) w.push(v, 5);
    w.push(6, 3);
    expect(w.toArray()).toEqual([4, 5, 6]);
    expect(w.median()).toBe(5);
    expect(w.lost).toBe(0);
  });
});
