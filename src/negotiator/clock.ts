/** Time for afsteerd's parts: a monotonic clock and repeating timers, injected so tests can drive time themselves. */
import { log } from '../util/log';

/** Cancels a repeating timer. */
export type Cancel = () => void;

/** The daemon's notion of time. */
export interface Clock {
  /** Monotonic milliseconds (from an arbitrary origin). */
  now(): number;
  /** Wall-clock time as ISO 8601 text (for status and logs only, never for decisions). */
  wallIso(): string;
  /** Runs fn every ms milliseconds until cancelled. */
  every(ms: number, fn: () => void): Cancel;
}

/** The real clock: performance.now() from start-up, setInterval timers. */
export function systemClock(): Clock {
  const t0 = performance.now();
  return {
    now: () => performance.now() - t0,
    wallIso: () => new Date().toISOString(),
    every: (ms, fn) => {
      const t = setInterval(fn, ms);
      return () => clearInterval(t);
    },
  };
}

/** Runs fn every ms milliseconds on clock; an error it throws is logged and the timer goes on (a daemon's timers never die of one round). */
export function everyGuarded(clock: Clock, ms: number, fn: () => void): Cancel {
  return clock.every(ms, () => {
    try {
      fn();
    } catch (err) {
      log.error('internal error', { error: String((err as Error).stack ?? err) });
    }
  });
}
