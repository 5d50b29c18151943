/** A clock a test drives by hand: timers and scheduled events run in time order as the test advances it. */
import type { Clock } from '../../src/negotiator/clock';

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  period?: number;
  cancelled?: boolean;
}

/** Simulated time in ms, starting at 0. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private events: Event[] = [];

  now(): number {
    return this.t;
  }

  wallIso(): string {
    return new Date(Date.UTC(2026, 0, 1) + this.t).toISOString();
  }

  every(ms: number, fn: () => void): () => void {
    const ev: Event = { at: this.t + ms, seq: this.seq++, fn, period: ms };
    this.events.push(ev);
    return () => {
      ev.cancelled = true;
    };
  }

  /** Runs fn once, delayMs from now. */
  after(delayMs: number, fn: () => void): void {
    this.events.push({ at: this.t + delayMs, seq: this.seq++, fn });
  }

  /** Advances time by ms, running every event due on the way in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.events = this.events.filter((e) => !e.cancelled);
      let next: Event | undefined;
      for (const e of this.events) if (e.at <= end && (!next || e.at < next.at || (e.at === next.at && e.seq < next.seq))) next = e;
      if (!next) break;
      this.t = next.at;
      if (next.period !== undefined) {
        next.at += next.period;
        next.seq = this.seq++;
      } else {
        next.cancelled = true;
      }
      next.fn();
    }
    this.t = end;
  }

  /** Advances in steps of stepMs until cond() holds or maxMs passed; returns the time it took, or undefined. */
  advanceUntil(cond: () => boolean, maxMs: number, stepMs = 5): number | undefined {
    const start = this.t;
    while (this.t - start < maxMs) {
      if (cond()) return this.t - start;
      this.advance(stepMs);
    }
    return cond() ? this.t - start : undefined;
  }
}
