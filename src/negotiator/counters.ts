/** afsteerd's own counters: datagrams sent and received by type, dropped by reason, notable events. */

/** Counts by name. */
export type Tally = Record<string, number>;

/** The daemon's counters (shown by status). */
export interface DaemonCounters {
  rx: Tally;
  tx: Tally;
  drops: Tally;
  events: Tally;
}

/** Fresh, empty counters. */
export function newCounters(): DaemonCounters {
  return { rx: {}, tx: {}, drops: {}, events: {} };
}

/** Adds one to where[k]. */
export function count(where: Tally, k: string): void {
  where[k] = (where[k] ?? 0) + 1;
}
