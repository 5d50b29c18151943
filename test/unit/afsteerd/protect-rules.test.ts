/** The pure rules of pair protection: agreed mode, signs of trouble, on-suspicion's stop, what a node writes. */
import { describe, expect, it } from 'vitest';
import { OutcomeWindow } from '../../../src/negotiator/probing/outcome-window';
import { newPath, type PathState } from '../../../src/negotiator/probing/probe-path';
import {
  agreedProtect,
  familiesInUse,
  familyTrouble,
  localProtection,
  peerStartedTrouble,
  stepSuspicion,
} from '../../../src/negotiator/protection/protect-rules';

const path = (rtts: (number | null)[], extra: Partial<PathState> = {}): PathState => {
  const outcomes = new OutcomeWindow();
  for (const r of rtts) outcomes.push(r, Math.max(200, rtts.length));
  return { ...newPath(0, 1), outcomes, ...extra };
};

describe('agreedProtect', () => {
  it('off when the peer cannot deduplicate, whatever was asked', () => {
    expect(agreedProtect({ leader: true, own: 'always', peerPolicy: 'always', capable: false })).toBe('off');
    expect(agreedProtect({ leader: false, own: 'always', leaderSays: 'always', capable: false })).toBe('off');
  });
  it('the leader merges both ends (stronger wins)', () => {
    expect(agreedProtect({ leader: true, own: 'off', peerPolicy: 'on-suspicion', capable: true })).toBe('on-suspicion');
    expect(agreedProtect({ leader: true, own: 'always', peerPolicy: 'on-suspicion', capable: true })).toBe('always');
    expect(agreedProtect({ leader: true, capable: true })).toBe('off');
  });
  it('a follower takes the leader’s decision, the merge before it has one', () => {
    expect(agreedProtect({ leader: false, own: 'always', leaderSays: 'on-suspicion', capable: true })).toBe('on-suspicion');
    expect(agreedProtect({ leader: false, own: 'off', peerPolicy: 'always', capable: true })).toBe('always');
  });
});

describe('familiesInUse', () => {
  it.each([
    ['native', ['IPv4', 'IPv6']],
    ['ipv4', ['IPv4']],
    ['ipv6', ['IPv6']],
  ] as const)('%s', (w, want) => expect(familiesInUse(w)).toEqual(want));
});

describe('familyTrouble', () => {
  const steady = Array<number>(40).fill(1);
  it('healthy: nothing', () => expect(familyTrouble(path(steady), undefined, 100, 2000)).toBeUndefined());
  it('no path: nothing (unless the peer says blackhole)', () => {
    expect(familyTrouble(undefined, undefined, 0, 2000)).toBeUndefined();
    expect(familyTrouble(undefined, { latency_ms: 1, jitter_ms: 0, packet_loss: 1, blackhole: true, samples: 9 }, 0, 2000)).toMatch(/peer/);
  });
  it('two probes lost in a row and not answered since; one is not enough', () => {
    expect(familyTrouble(path([...steady, null, null], { consecutiveLost: 2 }), undefined, 100, 2000)).toMatch(/2 probes lost/);
    expect(familyTrouble(path([...steady, null], { consecutiveLost: 1 }), undefined, 100, 2000)).toBeUndefined();
  });
  it('a blackhole', () =>
    expect(familyTrouble(path(steady, { blackhole: true, consecutiveLost: 3 }), undefined, 100, 2000)).toMatch(/blackhole/));
  it('a late reply alone is not trouble', () =>
    expect(familyTrouble(path(steady, { lateAt: 50, late: 1 }), undefined, 100, 2000)).toBeUndefined());
  it('a latency rise over three replies in a row, not one spike, not a small rise', () => {
    expect(familyTrouble(path([...steady, 30, 31, 32]), undefined, 0, 2000)).toMatch(/latency rise/);
    expect(familyTrouble(path([...steady, 30, 1, 1]), undefined, 0, 2000)).toBeUndefined();
    expect(familyTrouble(path([...steady, 1, 30, 30]), undefined, 0, 2000)).toBeUndefined();
    expect(familyTrouble(path([...Array<number>(40).fill(20), 30, 30, 30]), undefined, 0, 2000)).toBeUndefined();
  });
});

describe('peerStartedTrouble', () => {
  it('the peer starting to duplicate is trouble', () => {
    expect(peerStartedTrouble(false, true)).toBe('the peer started duplicating');
    expect(peerStartedTrouble(undefined, true)).toBe('the peer started duplicating');
  });
  it('only the edge: a peer still duplicating, stopping or never duplicating is not', () => {
    expect(peerStartedTrouble(true, true)).toBeUndefined();
    expect(peerStartedTrouble(true, false)).toBeUndefined();
    expect(peerStartedTrouble(false, false)).toBeUndefined();
    expect(peerStartedTrouble(undefined, false)).toBeUndefined();
  });
});

describe('stepSuspicion', () => {
  it('trouble: suspect at once, remembered', () =>
    expect(stepSuspicion({}, 'x', undefined, 10, 2000)).toEqual({ state: { lastTroubleAt: 10, reason: 'x' }, suspect: true }));
  it('healthy and never troubled: not suspect', () => expect(stepSuspicion({}, undefined, 5, 10, 2000).suspect).toBe(false));
  it('stays suspect until healthy for settleMs', () => {
    const s = { lastTroubleAt: 1000, reason: 'x' };
    expect(stepSuspicion(s, undefined, undefined, 2999, 2000).suspect).toBe(true);
    expect(stepSuspicion(s, undefined, undefined, 3000, 2000)).toEqual({ state: {}, suspect: false });
  });
  it('and until the last switch is settleMs old', () => {
    const s = { lastTroubleAt: 1000, reason: 'x' };
    expect(stepSuspicion(s, undefined, 1500, 3200, 2000).suspect).toBe(true);
    expect(stepSuspicion(s, undefined, 1500, 3500, 2000).suspect).toBe(false);
  });
});

describe('localProtection', () => {
  const ok = { dedup: true, dup: false, decap: true };
  it.each([
    ['off', false, ok, 'off'],
    ['off', false, { ...ok, dup: true }, 'dedup'],
    ['off', false, undefined, 'off'],
    ['always', false, ok, 'send'],
    ['always', false, { ...ok, dedup: false }, 'dedup'],
    ['always', false, { ...ok, decap: false }, 'dedup'],
    ['always', false, undefined, 'dedup'],
    ['on-suspicion', false, ok, 'dedup'],
    ['on-suspicion', true, ok, 'send'],
    ['on-suspicion', true, { ...ok, dedup: false }, 'dedup'],
  ] as const)('%s suspect=%s peer=%j → %s', (mode, suspect, peer, want) => expect(localProtection(mode, suspect, peer)).toBe(want));
});
