/** The one seeded PRNG of the tests and benches (mulberry32), with helpers: unit, property and fuzz tests, the interleaving checks, the failover bench. */

/** A deterministic PRNG: next() in [0, 1). */
export interface Rng {
  seed: number;
  next(): number;
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number;
  bytes(n: number): Buffer;
  pick<T>(xs: readonly T[]): T;
}

/** mulberry32 seeded with seed (any 32-bit integer). */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    seed,
    next,
    int,
    bytes(n) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 255);
      return b;
    },
    pick(xs) {
      return xs[int(0, xs.length - 1)]!;
    },
  };
}

/** The seed to use: AFSTEER_TEST_SEED when set (to reproduce a failure), otherwise def. */
export function seedFrom(def: number): number {
  const s = process.env.AFSTEER_TEST_SEED;
  return s !== undefined && s !== '' ? Number(s) >>> 0 : def;
}
