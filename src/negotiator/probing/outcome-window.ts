/**
 * A path's window of probe outcomes in typed arrays: a ring of the last `capacity` outcomes (an
 * RTT in ms, NaN for a loss) and the window's RTTs kept sorted, so the median is read in O(1) and
 * a new outcome costs a binary search and one memmove — no per-sample object, no sort, no garbage
 * (the window was an array of numbers and nulls, spliced and re-sorted for each new outcome). Pure.
 */

/** The outcomes of one path, oldest first. */
export class OutcomeWindow {
  private ring = new Float64Array(0);
  private sorted = new Float64Array(0);
  private head = 0;
  private count = 0;
  private rtts = 0;
  private losses = 0;

  /** Outcomes in the window. */
  get length(): number {
    return this.count;
  }

  /** Losses in the window. */
  get lost(): number {
    return this.losses;
  }

  /** Appends an outcome (RTT ms, or null for a loss), dropping the oldest beyond capacity (the window size; it may change between calls). */
  push(v: number | null, capacity: number): void {
    if (capacity !== this.ring.length) this.resize(capacity);
    if (this.count === this.ring.length) this.evictOldest();
    const slot = (this.head + this.count) % this.ring.length;
    if (v === null) {
      this.ring[slot] = Number.NaN;
      this.losses++;
    } else {
      this.ring[slot] = v;
      this.insertSorted(v);
    }
    this.count++;
  }

  /** Outcome i (0: oldest): an RTT, or null for a loss. */
  at(i: number): number | null {
    const v = this.ring[(this.head + i) % this.ring.length]!;
    return Number.isNaN(v) ? null : v;
  }

  /** The outcomes, oldest first (for tests and snapshots). */
  toArray(): (number | null)[] {
    return Array.from({ length: this.count }, (_, i) => this.at(i));
  }

  /** Median RTT of the window (0 without one). */
  median(): number {
    const n = this.rtts;
    if (n === 0) return 0;
    const m = n >> 1;
    return n % 2 ? this.sorted[m]! : (this.sorted[m - 1]! + this.sorted[m]!) / 2;
  }

  /** RTTs in the window. */
  get rttCount(): number {
    return this.rtts;
  }

  /** Mean absolute difference of successive RTTs in the window (losses skipped); 0 with fewer than two. */
  jitter(): number {
    let sum = 0;
    let prev = Number.NaN;
    for (let i = 0; i < this.count; i++) {
      const v = this.ring[(this.head + i) % this.ring.length]!;
      if (Number.isNaN(v)) continue;
      if (!Number.isNaN(prev)) sum += Math.abs(v - prev);
      prev = v;
    }
    return this.rtts > 1 ? sum / (this.rtts - 1) : 0;
  }

  /** Losses among the first n outcomes (oldest first). */
  lostAmongFirst(n: number): number {
    let lost = 0;
    for (let i = 0; i < n && i < this.count; i++) if (Number.isNaN(this.ring[(this.head + i) % this.ring.length]!)) lost++;
    return lost;
  }

  /** Up to max RTTs, newest first. */
  recentRtts(max: number): number[] {
    const out: number[] = [];
    for (let i = this.count - 1; i >= 0 && out.length < max; i--) {
      const v = this.ring[(this.head + i) % this.ring.length]!;
      if (!Number.isNaN(v)) out.push(v);
    }
    return out;
  }

  private evictOldest(): void {
    const v = this.ring[this.head]!;
    if (Number.isNaN(v)) this.losses--;
    else this.removeSorted(v);
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
  }

  private resize(capacity: number): void {
    const keep = this.toArray().slice(-capacity);
    this.ring = new Float64Array(capacity);
    this.sorted = new Float64Array(capacity);
    this.head = 0;
    this.count = 0;
    this.rtts = 0;
    this.losses = 0;
    for (const v of keep) this.push(v, capacity);
  }

  /** First index in sorted[0, rtts) whose value is ≥ v. */
  private lowerBound(v: number): number {
    let lo = 0;
    let hi = this.rtts;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insertSorted(v: number): void {
    const at = this.lowerBound(v);
    this.sorted.copyWithin(at + 1, at, this.rtts);
    this.sorted[at] = v;
    this.rtts++;
  }

  private removeSorted(v: number): void {
    const at = this.lowerBound(v);
    this.sorted.copyWithin(at, at + 1, this.rtts);
    this.rtts--;
  }
}
