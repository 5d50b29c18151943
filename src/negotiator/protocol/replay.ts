/**
 * Replay protection per sender node: a boot epoch and a sliding window over the sender's
 * message counter (as IPsec's anti-replay window, RFC 4303 §3.4.3, but wider, because one
 * sender's counter is shared by every peer and family it talks to, so reordering between
 * a fast and a slow family can span many numbers). Pure.
 */

/** Width of the window: counters this far behind the newest are still accepted once. */
export const REPLAY_WINDOW = 4096;

/** One sender's replay state. */
export interface ReplayState {
  epoch: bigint;
  /** Highest counter accepted in this epoch. */
  top: bigint;
  /** Bit i set: counter top − i was seen. */
  seen: Uint8Array;
}

/** Accepts (epoch, seq) at most once; returns the new state, or undefined for a replay / old epoch. */
export function checkReplay(s: ReplayState | undefined, epoch: bigint, seq: bigint): ReplayState | undefined {
  if (!s || epoch > s.epoch) {
    // A new boot of the sender (or the first message): a fresh window.
    const seen = new Uint8Array(REPLAY_WINDOW / 8);
    seen[0] = 1;
    return { epoch, top: seq, seen };
  }
  if (epoch < s.epoch) return undefined; // an earlier boot's message
  if (seq > s.top) {
    const shift = seq - s.top;
    const seen = shift >= BigInt(REPLAY_WINDOW) ? new Uint8Array(REPLAY_WINDOW / 8) : shiftWindow(s.seen, Number(shift));
    seen[0]! |= 1;
    return { epoch, top: seq, seen };
  }
  const back = s.top - seq;
  if (back >= BigInt(REPLAY_WINDOW)) return undefined;
  const i = Number(back);
  if (s.seen[i >> 3]! & (1 << (i & 7))) return undefined;
  const seen = s.seen.slice();
  seen[i >> 3]! |= 1 << (i & 7);
  return { epoch, top: s.top, seen };
}

/** The window moved up by n: bit i becomes bit i + n. */
function shiftWindow(w: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(w.length);
  for (let i = 0; i + n < REPLAY_WINDOW; i++) {
    if (w[i >> 3]! & (1 << (i & 7))) out[(i + n) >> 3]! |= 1 << ((i + n) & 7);
  }
  return out;
}
