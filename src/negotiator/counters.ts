/** afsteerd's own counters: datagrams sent and received by type, dropped by reason, notable events, refusals on its local surfaces. */

/** Counts by name. */
export type Tally = Record<string, number>;

/** The daemon's counters (shown by status). */
export interface DaemonCounters {
  rx: Tally;
  tx: Tally;
  drops: Tally;
  events: Tally;
  /** Datagrams and bytes by "tx|rx", type and family: "tx|probe|4" (metrics; bounded by types × families). */
  packets: Tally;
  bytes: Tally;
  /** Requests and connections refused on the metrics address and the control socket, by reason (REFUSAL_REASONS). */
  refused: Tally;
}

/** Every reason afsteerd counts a refusal on its local surfaces for (metrics: afsteer_daemon_refusals_total). */
export const REFUSAL_REASONS = [
  'http-bad-target',
  'http-host',
  'http-method',
  'http-malformed',
  'http-timeout',
  'http-too-large',
  'http-connection-cap',
  'control-too-large',
] as const;

/** Fresh, empty counters. */
export function newCounters(): DaemonCounters {
  return { rx: {}, tx: {}, drops: {}, events: {}, packets: {}, bytes: {}, refused: {} };
}

/** Counts one datagram of n bytes, sent (tx) or accepted (rx), by type and family. */
export function countTraffic(c: DaemonCounters, dir: 'tx' | 'rx', type: string, family: 4 | 6, n: number): void {
  const k = `${dir}|${type}|${family}`;
  c.packets[k] = (c.packets[k] ?? 0) + 1;
  c.bytes[k] = (c.bytes[k] ?? 0) + n;
}

/** Adds one to where[k]. */
export function count(where: Tally, k: string): void {
  where[k] = (where[k] ?? 0) + 1;
}
