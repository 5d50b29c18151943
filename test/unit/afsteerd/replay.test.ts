// Unit and property tests of protocol/replay.ts: per-sender boot epoch and the 4096-wide anti-replay window.
import { describe, expect, it } from 'vitest';
import { checkReplay, REPLAY_WINDOW, type ReplayState } from '../../../src/negotiator/protocol/replay';
import { rng, seedFrom } from '../../support/prng';

const W = BigInt(REPLAY_WINDOW);

/** Feeds (epoch, seq) into a state holder; returns whether it was accepted. */
function feeder() {
  let s: ReplayState | undefined;
  return {
    get state() {
      return s;
    },
    feed(epoch: bigint, seq: bigint): boolean {
      const before = s && { epoch: s.epoch, top: s.top, seen: Buffer.from(s.seen).toString('hex') };
      const r = checkReplay(s, epoch, seq);
      // The input state is never mutated (the daemon keeps it when it drops the frame).
      if (s && before) expect({ epoch: s.epoch, top: s.top, seen: Buffer.from(s.seen).toString('hex') }).toEqual(before);
      if (r) s = r;
      return r !== undefined;
    },
  };
}

describe('replay window', () => {
  it('accepts the first message of a sender, whatever its counter', () => {
    for (const seq of [0n, 1n, 12345n, 2n ** 64n - 1n]) {
      const s = checkReplay(undefined, 5n, seq);
      expect(s).toBeDefined();
      expect(s!.epoch).toBe(5n);
      expect(s!.top).toBe(seq);
      expect(s!.seen.length).toBe(REPLAY_WINDOW / 8);
    }
  });

  it('rejects an exact duplicate, also of the newest and after later messages', () => {
    const f = feeder();
    expect(f.feed(1n, 10n)).toBe(true);
    expect(f.feed(1n, 10n)).toBe(false);
    expect(f.feed(1n, 11n)).toBe(true);
    expect(f.feed(1n, 11n)).toBe(false);
    expect(f.feed(1n, 10n)).toBe(false);
    expect(f.feed(1n, 500n)).toBe(true);
    expect(f.feed(1n, 10n)).toBe(false);
    expect(f.feed(1n, 11n)).toBe(false);
    expect(f.feed(1n, 500n)).toBe(false);
  });

  it('accepts out-of-order messages within the window exactly once', () => {
    const f = feeder();
    expect(f.feed(1n, 100n)).toBe(true);
    for (const seq of [99n, 50n, 1n, 98n]) {
      expect(f.feed(1n, seq), String(seq)).toBe(true);
      expect(f.feed(1n, seq), `${seq} again`).toBe(false);
    }
    expect(f.feed(1n, 100n + W - 1n)).toBe(true); // 100 now at the far edge of the window
    expect(f.feed(1n, 101n)).toBe(true);
    expect(f.feed(1n, 101n)).toBe(false);
    expect(f.feed(1n, 100n)).toBe(false);
  });

  it('window edge: top − (W−1) is accepted, top − W is rejected', () => {
    const f = feeder();
    const top = 10n * W;
    expect(f.feed(1n, top)).toBe(true);
    expect(f.feed(1n, top - W)).toBe(false);
    expect(f.feed(1n, top - W - 1n)).toBe(false);
    expect(f.feed(1n, 0n)).toBe(false);
    expect(f.feed(1n, top - W + 1n)).toBe(true);
    expect(f.feed(1n, top - W + 1n)).toBe(false);
  });

  it('a newer epoch resets the window; the old epoch is rejected afterwards', () => {
    const f = feeder();
    expect(f.feed(1n, 1000n)).toBe(true);
    expect(f.feed(2n, 5n)).toBe(true); // sender rebooted, counter restarted
    expect(f.state!.epoch).toBe(2n);
    expect(f.state!.top).toBe(5n);
    expect(f.feed(2n, 4n)).toBe(true); // fresh window: nothing seen below 5 yet
    expect(f.feed(2n, 5n)).toBe(false);
    expect(f.feed(1n, 1001n)).toBe(false); // the old boot's messages are dead
    expect(f.feed(1n, 999n)).toBe(false);
    expect(f.feed(0n, 1n)).toBe(false); // lower epoch
    expect(f.feed(3n, 1n)).toBe(true);
    expect(f.feed(2n, 6n)).toBe(false);
  });

  it('rejects a lower epoch even with a higher counter', () => {
    const s = checkReplay(undefined, 100n, 1n);
    expect(checkReplay(s, 99n, 1_000_000n)).toBeUndefined();
    expect(checkReplay(s, 0n, 2n)).toBeUndefined();
  });

  it('a jump larger than the window forgets everything before it', () => {
    const f = feeder();
    for (let i = 1n; i <= 10n; i++) expect(f.feed(1n, i)).toBe(true);
    const jump = 10n + W + 123n;
    expect(f.feed(1n, jump)).toBe(true);
    expect(f.state!.top).toBe(jump);
    for (let i = 1n; i <= 10n; i++) expect(f.feed(1n, i)).toBe(false); // out of the window
    expect(f.feed(1n, jump - W + 1n)).toBe(true); // never seen, inside the window
    expect(f.feed(1n, jump - 1n)).toBe(true);
    expect(f.feed(1n, jump)).toBe(false);
    // A jump of exactly W: the old top falls out of the window.
    expect(f.feed(1n, jump + W)).toBe(true);
    expect(f.feed(1n, jump)).toBe(false);
    expect(f.feed(1n, jump + 1n)).toBe(true);
    // A jump of W − 1: the old top stays (seen) at the far edge.
    expect(f.feed(1n, jump + 2n * W - 1n)).toBe(true);
    expect(f.feed(1n, jump + W)).toBe(false);
    expect(f.feed(1n, jump + W + 1n)).toBe(true);
  });

  it('handles counters near 2^64', () => {
    const f = feeder();
    const max = 2n ** 64n - 1n;
    expect(f.feed(1n, max - 5n)).toBe(true);
    expect(f.feed(1n, max)).toBe(true);
    expect(f.feed(1n, max - 5n)).toBe(false);
    expect(f.feed(1n, max - 4n)).toBe(true);
    expect(f.feed(1n, max)).toBe(false);
  });

  it('property: matches a Set-based reference model over 100k random operations', () => {
    const seed = seedFrom(0x5eed_0001);
    const r = rng(seed);
    let s: ReplayState | undefined;
    // Reference: the epoch, the highest counter, and the set of accepted counters of that epoch.
    let refEpoch: bigint | undefined;
    let refTop = 0n;
    let refSeen = new Set<bigint>();
    let accepted = 0;
    const recent: bigint[] = []; // accepted counters, for exact replays
    try {
      for (let op = 0; op < 100_000; op++) {
        const epoch = refEpoch === undefined ? 10n : refEpoch + BigInt(r.next() < 0.0005 ? 1 : r.next() < 0.0005 ? -1 : 0);
        const top = refTop;
        const x = r.next();
        let seq: bigint;
        if (x < 0.35)
          seq = top + BigInt(r.int(1, 8)); // in order, small gaps
        else if (x < 0.75)
          seq = top - BigInt(r.int(0, REPLAY_WINDOW + 16)); // reordered / replayed around the edge
        else if (x < 0.85)
          seq = top + BigInt(r.int(1, 3 * REPLAY_WINDOW)); // big jumps
        else if (x < 0.95)
          seq = recent.length ? recent[r.int(0, recent.length - 1)]! : top; // exact replays
        else seq = BigInt(r.int(0, 2 ** 31)); // anywhere
        if (seq < 0n) seq = 0n;
        // Reference decision.
        let want: boolean;
        if (refEpoch === undefined || epoch > refEpoch) want = true;
        else if (epoch < refEpoch) want = false;
        else if (seq > refTop) want = true;
        else want = refTop - seq < W && !refSeen.has(seq);
        const next = checkReplay(s, epoch, seq);
        if ((next !== undefined) !== want) expect(next !== undefined, `op ${op}: epoch ${epoch} seq ${seq} top ${refTop}`).toBe(want);
        if (want) {
          accepted++;
          if (recent.length < 256) recent.push(seq);
          else recent[r.int(0, 255)] = seq;
          s = next;
          if (refEpoch === undefined || epoch > refEpoch) {
            refEpoch = epoch;
            refTop = seq;
            refSeen = new Set([seq]);
          } else {
            refSeen.add(seq);
            if (seq > refTop) refTop = seq;
          }
          // Keep the reference set small: forget what fell out of the window.
          if (refSeen.size > 2 * REPLAY_WINDOW) for (const v of refSeen) if (refTop - v >= W) refSeen.delete(v);
          if (s!.top !== refTop || s!.epoch !== refEpoch)
            expect({ top: s!.top, epoch: s!.epoch }).toEqual({ top: refTop, epoch: refEpoch });
        }
      }
    } catch (err) {
      console.error(`replay property test failed with seed ${seed} (AFSTEER_TEST_SEED=${seed} to reproduce)`);
      throw err;
    }
    expect(accepted).toBeGreaterThan(30_000);
  }, 30_000);
});
