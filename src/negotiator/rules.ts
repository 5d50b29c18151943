/**
 * Small decisions of afsteerd that used to sit inline in the daemon, as pure functions (table
 * tests in test/unit/afsteerd/rules.test.ts). Times are the daemon's monotonic ms.
 */
import type { PairState } from './pairs/pair';

/** A peer is alive while it was heard within the peer timeout. */
export function peerAlive(lastHeardAny: number | undefined, now: number, timeoutMs: number): boolean {
  return lastHeardAny !== undefined && now - lastHeardAny < timeoutMs;
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

/**
 * Whether this probe tick may expire probes. After the event loop stalled (GC, a starved CPU),
 * the replies that came in meanwhile are still queued on the sockets: the timers run before
 * them. Expiring now would count this daemon's own stall as loss, so expiry waits one tick for
 * them — never two in a row.
 */
export function probeExpiry(
  lastTickAt: number,
  skippedLast: boolean,
  now: number,
  tickMs: number,
  minTimeoutMs: number,
): { expire: boolean; stalled: boolean } {
  const stalled = lastTickAt > 0 && now - lastTickAt > tickMs + minTimeoutMs / 2;
  return { expire: !stalled || skippedLast, stalled };
}

/** Routes a previous run left, whose peer never came back, are reverted once a peer timeout has passed since start-up. */
export function orphansExpired(now: number, startedAt: number, peerTimeoutMs: number): boolean {
  return now - startedAt > peerTimeoutMs;
}

/** The probe tick: half the active probe interval, between 2 and 10 ms. */
export function probeTickMs(activeIntervalMs: number): number {
  return Math.max(2, Math.min(10, Math.floor(activeIntervalMs / 2)));
}

/** An unchanged announcement is sent again to every target once refreshMs have passed since the last full one. */
export function announceRefreshDue(lastFullAt: number, now: number, refreshMs: number): boolean {
  return now - lastFullAt >= refreshMs;
}
