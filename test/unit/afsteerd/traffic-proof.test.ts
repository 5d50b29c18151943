/**
 * Demand-style probing's rules (src/negotiator/probing/traffic-proof.ts), pure with an injected
 * clock: when a pair's traffic proves a path, when it stops proving it, and that a blackhole of
 * a path whose traffic proved it is still called as fast as with steady fast probing.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PROBE,
  expireProbes,
  newPath,
  type PathState,
  probeDue,
  probeSentEvery,
  probeSoon,
  probeTimeout,
  replyReceived,
} from '../../../src/negotiator/probing/probe-path';
import {
  DEFAULT_DEMAND,
  type DemandParams,
  demandProbeSent,
  demandStep,
  newDemandState,
  observeTraffic,
  type PathSigns,
  unansweredFor,
  unansweredLimit,
} from '../../../src/negotiator/probing/traffic-proof';

const PRM: DemandParams = {
  demandIntervalMs: DEFAULT_DEMAND.demandIntervalMs,
  activeIntervalMs: 20,
  burstIntervalMs: 10,
  burstProbes: 3,
  minUnansweredMs: DEFAULT_DEMAND.minUnansweredMs,
  holdMs: DEFAULT_DEMAND.holdMs,
};
const signs = (over: Partial<PathSigns> = {}): PathSigns => ({
  traffic: { sentAt: 0, receivedAt: 0 },
  blackhole: false,
  samples: 200,
  minSamples: 50,
  lost: false,
  timeoutMs: 40,
  ...over,
});

describe('observeTraffic: when the traffic over a path goes unanswered', () => {
  it('nothing is unanswered while the last arrival is no older than the last send, or nothing was sent', () => {
    const s = newDemandState();
    observeTraffic(s, {}, 0);
    expect(s.unansweredSince).toBeUndefined();
    observeTraffic(s, { sentAt: 5, receivedAt: 6 }, 10);
    expect(s.unansweredSince).toBeUndefined();
    observeTraffic(s, { receivedAt: 12 }, 20);
    expect(s.unansweredSince).toBeUndefined();
  });

  it('a send after a quiet spell is unanswered from the observation before it, not from the old arrival', () => {
    const s = newDemandState();
    observeTraffic(s, { sentAt: 1000, receivedAt: 1000 }, 1000);
    // The pair was quiet for 9 s, then sent at 10,003; seen at the 10,010 tick (the tick before was at 10,000).
    observeTraffic(s, { sentAt: 1000, receivedAt: 1000 }, 10_000);
    observeTraffic(s, { sentAt: 10_003, receivedAt: 1000 }, 10_010);
    expect(s.unansweredSince).toBe(10_000);
    expect(unansweredFor(s, 10_010)).toBe(10);
    // The answer comes: nothing unanswered.
    observeTraffic(s, { sentAt: 10_003, receivedAt: 10_004 }, 10_020);
    expect(s.unansweredSince).toBeUndefined();
  });

  it('while sends keep going unanswered the start stays; an arrival after it moves the start to that arrival', () => {
    const s = newDemandState();
    observeTraffic(s, { sentAt: 100, receivedAt: 100 }, 100);
    observeTraffic(s, { sentAt: 105, receivedAt: 100 }, 110);
    expect(s.unansweredSince).toBe(110 - 10);
    observeTraffic(s, { sentAt: 118, receivedAt: 100 }, 120);
    expect(s.unansweredSince).toBe(100);
    // An arrival at 121 answers what went before it; a send at 125 is still open.
    observeTraffic(s, { sentAt: 125, receivedAt: 121 }, 130);
    expect(s.unansweredSince).toBe(121);
  });

  it('one-way traffic (never answered) is unanswered from its first observation', () => {
    const s = newDemandState();
    observeTraffic(s, { sentAt: 50 }, 60);
    observeTraffic(s, { sentAt: 70 }, 200);
    expect(unansweredFor(s, 200)).toBe(150);
  });
});

describe('demandStep: how a path toward a peer with pairs is probed', () => {
  it('without data-plane evidence, or with demand probing off, it is probed fast as before', () => {
    expect(demandStep(newDemandState(), signs({ traffic: undefined }), 1000, PRM)).toEqual({
      mode: 'fast',
      intervalMs: 20,
      probeNow: false,
    });
    expect(demandStep(newDemandState(), signs(), 1000, { ...PRM, demandIntervalMs: 0 }).mode).toBe('fast');
  });

  it('answered traffic, or none at all, proves the path: probed at the demand interval', () => {
    expect(demandStep(newDemandState(), signs({ traffic: { sentAt: 990, receivedAt: 991 } }), 1000, PRM)).toEqual({
      mode: 'demand',
      intervalMs: 250,
      probeNow: false,
    });
    expect(demandStep(newDemandState(), signs({ traffic: {} }), 1000, PRM).mode).toBe('demand');
  });

  it('a blackhole, or a window too young for an evaluation, keeps it fast (and for the hold after)', () => {
    const s = newDemandState();
    expect(demandStep(s, signs({ blackhole: true }), 1000, PRM).mode).toBe('fast');
    expect(demandStep(s, signs(), 1000 + PRM.holdMs - 1, PRM).mode).toBe('fast');
    expect(demandStep(s, signs(), 1000 + PRM.holdMs, PRM).mode).toBe('demand');
    expect(demandStep(newDemandState(), signs({ samples: 49 }), 1000, PRM).mode).toBe('fast');
  });

  it('traffic unanswered past the limit starts fast probing at once: a burst at tick spacing, then fast until the hold ends', () => {
    const s = newDemandState();
    expect(demandStep(s, signs({ traffic: { sentAt: 1000, receivedAt: 1000 } }), 1000, PRM).mode).toBe('demand');
    // Sent at 1,005, nothing back (the observation at 1,000 saw everything answered, so it is open
    // since then at the earliest); the limit is 20 ms (half the 40 ms timeout).
    expect(demandStep(s, signs({ traffic: { sentAt: 1005, receivedAt: 1000 } }), 1010, PRM).mode).toBe('demand');
    expect(demandStep(s, signs({ traffic: { sentAt: 1015, receivedAt: 1000 } }), 1020, PRM).mode).toBe('demand');
    const d = demandStep(s, signs({ traffic: { sentAt: 1025, receivedAt: 1000 } }), 1030, PRM);
    expect(d).toEqual({ mode: 'fast', intervalMs: 10, probeNow: true });
    expect(s.triggers.unanswered).toBe(1);
    demandProbeSent(s);
    expect(demandStep(s, signs({ traffic: { sentAt: 1045, receivedAt: 1000 } }), 1040, PRM).intervalMs).toBe(10);
    demandProbeSent(s);
    demandProbeSent(s);
    // The burst is spent: fast at the active interval while it stays unanswered, no second trigger.
    expect(demandStep(s, signs({ traffic: { sentAt: 1065, receivedAt: 1000 } }), 1070, PRM)).toEqual({
      mode: 'fast',
      intervalMs: 20,
      probeNow: false,
    });
    expect(s.triggers.unanswered).toBe(1);
    // Answered again at 1,075: fast until the hold after the last unanswered sign (1,070 + 500), then demand.
    expect(demandStep(s, signs({ traffic: { sentAt: 1065, receivedAt: 1075 } }), 1080, PRM).mode).toBe('fast');
    expect(demandStep(s, signs({ traffic: { sentAt: 1600, receivedAt: 1600 } }), 1570, PRM).mode).toBe('demand');
  });

  it('a lost probe starts fast probing too', () => {
    const s = newDemandState();
    demandStep(s, signs(), 1000, PRM);
    expect(demandStep(s, signs({ lost: true }), 1010, PRM)).toEqual({ mode: 'fast', intervalMs: 10, probeNow: true });
    expect(s.triggers.lost).toBe(1);
  });

  it('the limit is half the probe timeout, at least minUnansweredMs: a slow path is not taken for a broken one', () => {
    expect(unansweredLimit(40, PRM)).toBe(20);
    expect(unansweredLimit(130, PRM)).toBe(65);
    const s = newDemandState();
    demandStep(s, signs({ timeoutMs: 130, traffic: { sentAt: 1000, receivedAt: 1000 } }), 1000, PRM);
    expect(demandStep(s, signs({ timeoutMs: 130, traffic: { sentAt: 1005, receivedAt: 1000 } }), 1050, PRM).mode).toBe('demand');
  });
});

/**
 * The prober's tick over one path (as prober.ts runs it: expire, decide, send), driven by a
 * simulated clock: a stream sends every 5 ms and is answered 0.2 ms later until the blackhole at
 * t0, after which neither the stream's packets nor the probes come back.
 */
function blackholeDetection(demand: boolean, t0: number): number {
  const prm = { ...DEFAULT_PROBE, minSamples: 50 };
  const path: PathState = newPath(0, 1);
  const s = newDemandState();
  const inFlight: { id: number; back: number }[] = [];
  const rtt = 0.2;
  for (let now = 0; now < t0 + 2000; now += 10) {
    for (const p of inFlight.splice(0)) {
      if (p.back <= now) replyReceived(path, p.id, p.back, prm);
      else inFlight.push(p);
    }
    const before = path.consecutiveLost;
    if (expireProbes(path, now, prm)) return now - t0;
    let interval = prm.activeIntervalMs;
    if (demand) {
      const lastSend = Math.floor(now / 5) * 5;
      const traffic = lastSend < t0 ? { sentAt: lastSend, receivedAt: lastSend + rtt } : { sentAt: lastSend, receivedAt: t0 - 5 + rtt };
      const d = demandStep(
        s,
        {
          traffic,
          blackhole: path.blackhole,
          samples: path.outcomes.length,
          minSamples: 50,
          lost: path.consecutiveLost > before,
          timeoutMs: probeTimeout(path, prm, now),
        },
        now,
        { ...PRM, burstProbes: prm.blackholeAfter },
      );
      if (d.probeNow) probeSoon(path, now);
      interval = d.intervalMs;
    }
    if (probeDue(path, now)) {
      const id = probeSentEvery(path, now, interval);
      demandProbeSent(s);
      if (now < t0) inFlight.push({ id, back: now + rtt });
    }
  }
  return Infinity;
}

describe('a blackhole of a path proven by traffic is called as fast as with steady fast probing', () => {
  it('over 40 phases of the blackhole against the probe and tick cadence: demand ≤ fast probing, both ≤ 100 ms', () => {
    const fast: number[] = [];
    const dem: number[] = [];
    for (let k = 0; k < 40; k++) {
      const t0 = 3000 + k * 7.3;
      fast.push(blackholeDetection(false, t0));
      dem.push(blackholeDetection(true, t0));
    }
    expect(Math.max(...fast)).toBeLessThanOrEqual(100);
    expect(Math.max(...dem)).toBeLessThanOrEqual(100);
    expect(Math.max(...dem)).toBeLessThanOrEqual(Math.max(...fast));
  });

  it('before the blackhole the proven path is probed at the demand interval: ~4 probes a second instead of 50', () => {
    const prm = { ...DEFAULT_PROBE, minSamples: 50 };
    const path = newPath(0, 1);
    const s = newDemandState();
    let sent = 0;
    for (let now = 0; now < 10_000; now += 10) {
      const d = demandStep(
        s,
        {
          traffic: { sentAt: now, receivedAt: now },
          blackhole: false,
          samples: path.outcomes.length,
          minSamples: 50,
          lost: false,
          timeoutMs: 40,
        },
        now,
        PRM,
      );
      if (probeDue(path, now)) {
        const id = probeSentEvery(path, now, d.intervalMs);
        replyReceived(path, id, now + 0.2, prm);
        sent++;
      }
    }
    // 50 fast probes for the first evaluation's samples (and the hold after), then 4 a second.
    expect(sent).toBeLessThan(50 + 25 + 40);
    expect(s.mode).toBe('demand');
  });
});
