/** Table tests of afsteerd's small rules (each beside its subject: discovery/peers.ts, pairs/pair.ts, probing/prober.ts). */
import { describe, expect, it } from 'vitest';
import { peerAlive } from '../../../src/negotiator/discovery/peers';
import { adoptionHolds, isIdle, isStaleRound, orphansExpired, type PeerView, peerSaysActive } from '../../../src/negotiator/pairs/pair';
import { probeExpiry, probeTickMs } from '../../../src/negotiator/probing/prober';

const view = (o: Partial<PeerView>): PeerView => ({
  preferred: null,
  round: 0,
  epoch: 1n,
  decap: true,
  active: false,
  metrics: {},
  policy: { criterion: 'lowest-latency' },
  at: 0,
  ...o,
});

describe('rules', () => {
  it.each([
    [undefined, 100, 50, false],
    [60, 100, 50, true],
    [50, 100, 50, false],
    [0, 4999, 5000, true],
  ])('peerAlive(lastHeard %s, now %s, timeout %s) = %s', (last, now, t, want) => {
    expect(peerAlive(last, now, t)).toBe(want);
  });

  it.each([
    ['follower, same epoch, older round', { leader: false, peer: view({ round: 5, epoch: 7n }) }, 4, 7n, true],
    ['follower, same epoch, same round', { leader: false, peer: view({ round: 5, epoch: 7n }) }, 5, 7n, false],
    ['follower, same epoch, newer round', { leader: false, peer: view({ round: 5, epoch: 7n }) }, 6, 7n, false],
    ['follower, restarted leader (new epoch) at round 0', { leader: false, peer: view({ round: 5, epoch: 7n }) }, 0, 8n, false],
    ["leader: the peer's rounds never gate it", { leader: true, peer: view({ round: 5, epoch: 7n }) }, 1, 7n, false],
    ['nothing heard yet', { leader: false, peer: undefined }, 0, 7n, false],
  ])('isStaleRound: %s', (_n, p, round, epoch, want) => {
    expect(isStaleRound(p, round, epoch)).toBe(want);
  });

  it.each([
    ['peer alive, young', 0, true, 1000, 5000, true],
    ['peer alive, past one peer timeout', 0, true, 5000, 5000, false],
    ['peer silent', 0, false, 10, 5000, false],
  ])('adoptionHolds: %s', (_n, createdAt, alive, now, t, want) => {
    expect(adoptionHolds({ createdAt }, alive, now, t)).toBe(want);
  });

  it.each([
    ['recent traffic', 50_000, undefined, 60_000, false],
    ['idle, no peer view', 0, undefined, 60_001, true],
    ['idle here, peer says active recently', 0, view({ active: true, at: 59_000 }), 60_001, false],
    ['idle here, peer said active long ago', 0, view({ active: true, at: 1000 }), 60_001, true],
    ['idle here, peer says inactive', 0, view({ active: false, at: 59_000 }), 60_001, true],
  ])('isIdle: %s', (_n, lastActiveAt, peer, now, want) => {
    expect(isIdle({ lastActiveAt, peer }, now, 60_000, 5000)).toBe(want);
    if (peer) expect(peerSaysActive({ peer }, now, 5000)).toBe(Boolean(peer.active && now - peer.at < 5000));
  });

  it.each([
    ['first tick', 0, false, 10, { expire: true, stalled: false }],
    ['on time', 100, false, 110, { expire: true, stalled: false }],
    ['stalled: expiry waits one tick', 100, false, 200, { expire: false, stalled: true }],
    ['stalled again right after a skip: expires (never two in a row)', 100, true, 200, { expire: true, stalled: true }],
  ])('probeExpiry: %s', (_n, last, skipped, now, want) => {
    expect(probeExpiry(last, skipped, now, 10, 40)).toEqual(want);
  });

  it('orphansExpired and probeTickMs', () => {
    expect(orphansExpired(5000, 0, 5000)).toBe(false);
    expect(orphansExpired(5001, 0, 5000)).toBe(true);
    expect([1, 4, 20, 100].map(probeTickMs)).toEqual([2, 2, 10, 10]);
  });
});
